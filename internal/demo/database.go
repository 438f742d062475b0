package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// quoteCount is how many quotes dev2 stores before the engine upgrade.
const quoteCount = 20

// giveQuotesADatabase is ops's first database step: dev2's quotes gets
// PostgreSQL 15 in staging and prod before its first release, and keeps
// its quotes there (its chart reads the Secret the platform writes).
func (d *Demo) giveQuotesADatabase(ctx context.Context) error {
	return d.step("ops", "gives dev2 a database for quotes: slipway db create dev2/quotes --version 15", func() error {
		_, err := d.slipway(ctx, "db", "create", "dev2/quotes", "--version", "15")
		if err != nil && strings.Contains(err.Error(), "database exists") {
			fmt.Fprintln(d.Out, indent("dev2/quotes exists from an earlier play: kept"))
			return nil
		}
		return err
	})
}

// quotesMajor is the PostgreSQL major version quotes's database serves
// in staging.
func (d *Demo) quotesMajor(ctx context.Context) (string, error) {
	out, err := d.slipway(ctx, "db", "status", "dev2", "-o", "json")
	if err != nil {
		return "", err
	}
	var list []struct{ Name, Env, Role, Version string }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return "", err
	}
	for _, s := range list {
		if s.Name == "quotes" && s.Env == "staging" && s.Role == "serving" {
			major, _, _ := strings.Cut(s.Version, ".")
			return major, nil
		}
	}
	return "", fmt.Errorf("dev2/quotes serves nothing in staging:\n%s", out)
}

// upgradeTheDatabase plays the database part of the ops track: dev2
// stores quotes in both environments; ops upgrades the engine from
// PostgreSQL 15 to 17 in staging while quotes is read in both; dev2's
// tests run against the upgraded staging; then prod; every quote is
// still there; ops confirms, and dev2 ships a version through the line
// against the upgraded database.
func (d *Demo) upgradeTheDatabase(ctx context.Context, res *Result) error {
	a := apps[1]
	if major, err := d.quotesMajor(ctx); err != nil {
		return err
	} else if major != "15" {
		fmt.Fprintln(d.Out, indent("dev2/quotes runs PostgreSQL "+major+" from an earlier play: no engine upgrade to show"))
		return nil
	}
	var targets []probeTarget
	if err := d.step(a.team, fmt.Sprintf("stores %d quotes in staging and prod (PUT /quotes/NAME)", quoteCount), func() error {
		all, err := d.probeTargets(ctx)
		if err != nil {
			return err
		}
		for _, t := range all {
			if t.app != a.name {
				continue
			}
			t.url = strings.TrimSuffix(t.url, "/healthz") + "/quotes"
			targets = append(targets, t)
			for i := range quoteCount {
				if err := putQuote(ctx, t.url, fmt.Sprintf("q%02d", i), fmt.Sprintf("Quote %d, stored in %s before the engine upgrade.", i, t.namespace)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	counts := map[string]int{}
	for _, t := range targets {
		n, err := countQuotes(ctx, t.url)
		if err != nil {
			return err
		}
		counts[t.namespace] = n
	}

	stopProbes := startProbes(ctx, targets)
	err := d.step("ops", "upgrades dev2/quotes in staging to PostgreSQL 17: slipway db upgrade dev2/quotes --to 17 --env staging", func() error {
		out, err := d.slipway(ctx, "db", "upgrade", "dev2/quotes", "--to", "17", "--env", "staging")
		fmt.Fprintln(d.Out, indent(out))
		return err
	})
	if err == nil {
		err = d.step(a.team, "tests quotes against the upgraded database: slipway test quotes --env staging", func() error {
			_, err := d.slipwayAs(ctx, a.team, "test", a.name, "--env", "staging", "--file", filepath.Join(d.Examples, a.example, "slipway.yaml"))
			return err
		})
	}
	if err == nil {
		err = d.step("ops", "upgrades prod: slipway db upgrade dev2/quotes --to 17 --env prod", func() error {
			out, err := d.slipway(ctx, "db", "upgrade", "dev2/quotes", "--to", "17", "--env", "prod")
			fmt.Fprintln(d.Out, indent(out))
			return err
		})
	}
	outages := stopProbes()
	res.DatabaseOutages = outages
	var lines []string
	for _, o := range outages {
		lines = append(lines, fmt.Sprintf("%s/%s: reads unanswered for %s at most (%d of %d probes failed)", o.Namespace, o.App, o.Longest.Round(100*time.Millisecond), o.Failed, o.Probes))
	}
	fmt.Fprintln(d.Out, indent(strings.Join(lines, "\n")))
	if err != nil {
		return err
	}
	if err := d.step(a.team, "finds every quote in staging and prod on PostgreSQL 17 (GET /quotes)", func() error {
		for _, t := range targets {
			n, err := countQuotes(ctx, t.url)
			if err != nil {
				return err
			}
			if n != counts[t.namespace] {
				return fmt.Errorf("%s holds %d quotes after the upgrade, %d before", t.namespace, n, counts[t.namespace])
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := d.step("ops", "keeps the upgrade (the PostgreSQL 15 Clusters go): slipway db confirm dev2/quotes", func() error {
		if _, err := d.slipway(ctx, "db", "confirm", "dev2/quotes"); err != nil {
			return err
		}
		out, err := d.slipway(ctx, "db", "status", "dev2")
		fmt.Fprintln(d.Out, indent(out))
		return err
	}); err != nil {
		return err
	}
	return d.ship(ctx, a, "1.4", res)
}

// putQuote stores a quote through the app.
func putQuote(ctx context.Context, base, slug, text string) error {
	body, _ := json.Marshal(map[string]string{"text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/"+slug, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s/%s: %s", base, slug, res.Status)
	}
	return nil
}

// countQuotes reads how many quotes the app holds, and checks they are
// in PostgreSQL.
func countQuotes(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var got struct {
		Quotes []json.RawMessage
		Store  string
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s %v", url, res.Status, err)
	}
	if got.Store != "postgres" {
		return 0, fmt.Errorf("GET %s: quotes are kept in %q, not PostgreSQL", url, got.Store)
	}
	return len(got.Quotes), nil
}
