package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/gitrepo"
)

// bakeTime is how long ops has every version serve traffic in staging.
const bakeTime = "60s"

// bakeCatchesAFault plays the monitoring part of the ops track: ops makes
// the 5xx alert act within a minute and has every version bake in staging
// under traffic before prod; dev2 ships a version that fails under
// traffic: it passes its tests, fails its bake and is not promoted, not
// even by hand; its fix bakes clean and reaches prod. A platform without
// monitoring skips it.
func (d *Demo) bakeCatchesAFault(ctx context.Context, res *Result) error {
	if _, err := d.slipway(ctx, "alerts", "-o", "json"); err != nil {
		if strings.Contains(err.Error(), "without monitoring") {
			d.logf("%-8s %s", "ops", "the platform runs without monitoring: no bake in staging")
			return nil
		}
		return err
	}
	if err := d.step("ops", "makes the 5xx alert act within a minute: commits monitoring/rules/slipway.yaml to the fleet", func() error {
		_, err := d.Fleet.Change(ctx, gitrepo.Author{Name: "ops", Email: "ops@example.com"}, "monitoring: a 5xx ratio over 5 % is critical after 15 s over 1 minute", func(dir string) error {
			return stricterErrorRatio(filepath.Join(dir, "monitoring", "rules", "slipway.yaml"))
		})
		if errors.Is(err, gitrepo.ErrNoChange) {
			return nil // a play before this one made it so
		}
		return err
	}); err != nil {
		return err
	}
	if err := d.step("ops", "has every version bake "+bakeTime+" in staging under traffic: commits line.yml to ops/pipeline-templates", func() error {
		_, err := d.commitTo(ctx, lineTemplates, "the line: bake each version "+bakeTime+" in staging before prod", func(dir string, _ bool) error {
			return replaceIn(filepath.Join(dir, "line.yml"), "bake: 0s", "bake: "+bakeTime)
		})
		return err
	}); err != nil {
		return err
	}

	a := apps[1]
	var commit string
	if err := d.step(a.team, "pushes "+a.name+" 1.2, which fails every other request after its first 10", func() error {
		var err error
		commit, err = d.pushApp(ctx, a, "1.2", a.name+" 1.2: quotes in turn", FailEveryOther)
		return err
	}); err != nil {
		return err
	}
	_, logs, err := d.followFailingRun(ctx, a, commit, "SlipwayHighErrorRatio")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "passed") && strings.Contains(l, "check(s)") || strings.Contains(l, "the bake of") || strings.Contains(l, "requests for") {
			fmt.Fprintln(d.Out, indent(strings.TrimSpace(l)))
		}
	}
	if err := d.step(a.team, "promotes "+a.name+" 1.2 by hand: refused while its critical alert fires", func() error {
		out, err := d.slipwayAs(ctx, a.team, "promote", a.name, "--from", "staging", "--to", "prod")
		if err == nil {
			return fmt.Errorf("the platform promoted %s 1.2 with its error-ratio alert firing: %s", a.name, out)
		}
		if !strings.Contains(err.Error(), "not promoted while a critical alert fires") {
			return fmt.Errorf("promoting %s 1.2 failed, but not for its alert: %w", a.name, err)
		}
		fmt.Fprintln(d.Out, indent(lastLine(err.Error())))
		return nil
	}); err != nil {
		return err
	}
	if err := d.step(a.team, "reads its alerts: slipway alerts", func() error {
		out, err := d.slipwayAs(ctx, a.team, "alerts", "-o", "json", "--recent", "0")
		if err != nil {
			return err
		}
		var list struct {
			Alerts []struct {
				Labels      map[string]string
				Annotations map[string]string
			}
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		for _, al := range list.Alerts {
			if al.Labels["team"] != a.team {
				return fmt.Errorf("%s sees another team's alert: %v", a.team, al.Labels)
			}
			fmt.Fprintln(d.Out, indent(fmt.Sprintf("%s %s: %s", al.Labels["severity"], al.Labels["alertname"], al.Annotations["summary"])))
		}
		return nil
	}); err != nil {
		return err
	}
	// The fix: the example as it was. Its bake waits for 1.2's alert to
	// resolve once the fixed pods serve.
	return d.ship(ctx, a, "1.3", res)
}

// stricterErrorRatio makes the default 5xx rule look at the last minute
// and fire after 15 s; a fleet whose rule says so already is left as is.
func stricterErrorRatio(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := strings.NewReplacer(`{code=~"5.."}[5m]`, `{code=~"5.."}[1m]`, `(http_requests_total[5m])`, `(http_requests_total[1m])`,
		"failed over 5 minutes", "failed over 1 minute", "for: 5m", "for: 15s").Replace(string(data))
	if !strings.Contains(text, `(http_requests_total[1m])`) || !strings.Contains(text, "for: 15s") {
		return errors.New("the fleet's rule SlipwayHighErrorRatio is not the default one any more: the demo leaves it to ops")
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// replaceIn replaces old with new in a file, which must hold one or the
// other.
func replaceIn(path, old, new string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(data)
	if !strings.Contains(text, old) && !strings.Contains(text, new) {
		return fmt.Errorf("%s holds neither %q nor %q", path, old, new)
	}
	return os.WriteFile(path, []byte(strings.Replace(text, old, new, 1)), 0o644)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
