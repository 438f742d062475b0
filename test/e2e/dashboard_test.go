package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDashboardTimeline: `slipway up` serves the dashboard on the
// platform's HTTPS address; a team's user signs in and sees its own
// team's pushes on the Timeline, live, and nothing of another team's;
// ops sees both.
func TestDashboardTimeline(t *testing.T) {
	e := newEnv(t)
	regAddr, gitAddr := freeAddr(t), freeAddr(t)
	e.vars = append(e.vars, "SLIPWAY_GIT_ADDR="+gitAddr, "SLIPWAY_REGISTRY_ADDR="+regAddr)
	up := e.startUp()
	base := "https://" + gitAddr + "/-/ui/"
	if !strings.Contains(up.stdout.String(), "dashboard: "+base) {
		t.Errorf("up does not say where the dashboard is:\n%s", up.stdout)
	}
	passwords := map[string]string{}
	for _, team := range []string{"dev1", "dev2"} {
		passwords[team] = strings.TrimSpace(e.mustRun("", "user", "set", team, "--push", team+"/").stdout)
		e.mustRun("", "repo", "create", team+"/app")
	}
	push := func(team, message string) {
		t.Helper()
		clone := filepath.Join(t.TempDir(), "app")
		gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://%s:%s@%s/%s/app.git", team, passwords[team], gitAddr, team), clone)
		writeFile(t, filepath.Join(clone, "README.md"), message+"\n")
		gitPush(t, clone, message)
	}
	push("dev1", "dev1's first")
	push("dev2", "dev2's first")

	signIn := func(user, password string) *http.Client {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Transport: e.transport(), Jar: jar, Timeout: 30 * time.Second}
		res, err := c.PostForm(base+"login", url.Values{"user": {user}, "password": {password}, "next": {"/-/ui/timeline"}})
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "Timeline") {
			t.Fatalf("signing in as %s: %d\n%s", user, res.StatusCode, page)
		}
		return c
	}
	get := func(c *http.Client, path string) (int, string) {
		t.Helper()
		res, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	teamsOf := func(body string) map[string]int {
		var list []struct{ Team, Source string }
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		seen := map[string]int{}
		for _, ev := range list {
			seen[ev.Team]++
		}
		return seen
	}

	dev1 := signIn("dev1", passwords["dev1"])
	code, body := get(dev1, "api/events")
	if seen := teamsOf(body); code != http.StatusOK || seen["dev1"] == 0 || len(seen) != 1 {
		t.Errorf("dev1's events (%d): %v", code, seen)
	}
	for _, p := range []string{"timeline?team=dev2", "api/events?team=dev2"} {
		if code, body := get(dev1, p); code != http.StatusForbidden || strings.Contains(body, "dev2's first") {
			t.Errorf("dev1 asking for %s: %d", p, code)
		}
	}
	if code, _ := get(&http.Client{Transport: e.transport()}, "api/events"); code != http.StatusUnauthorized {
		t.Errorf("the events without signing in: %d", code)
	}
	ops := signIn("admin", strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password"))))
	if _, body := get(ops, "api/events"); teamsOf(body)["dev2"] == 0 || teamsOf(body)["dev1"] == 0 {
		t.Errorf("ops's events: %s", body)
	}

	// Live: dev1's stream brings dev1's next push, not dev2's.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"api/events/stream", nil)
	res, err := dev1.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("dev1's stream: %v %v", err, res)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	push("dev2", "dev2's second")
	push("dev1", "dev1's second")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended: %v", err)
		}
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var ev struct{ Team, Source, Message string }
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Team != "dev1" || ev.Source != "git" {
			t.Fatalf("dev1's stream brought %+v", ev)
		}
		t.Logf("live: %+v", ev)
		return
	}
}
