package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/internal/testutil/browsertest"
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
	if st := e.mustRun("", "status").stdout; !strings.Contains(st, "dashboard: "+base) {
		t.Errorf("slipway status does not name the dashboard:\n%s", st)
	}
	vars := e.vars
	e.vars = append(e.vars, "DISPLAY=", "WAYLAND_DISPLAY=")
	if open := e.run("", "open"); open.code != 0 || open.stdout != base+"\n" || !strings.Contains(open.stderr, "no display here") {
		t.Errorf("slipway open without a display: exit %d, %q, %q", open.code, open.stdout, open.stderr)
	}
	e.vars = vars
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
	if code, _ := get(dev1, "api/ops"); code != http.StatusForbidden {
		t.Errorf("dev1 reading the ops view: %d", code)
	}
	ops := signIn("admin", strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password"))))
	if code, body := get(ops, "api/ops"); code != http.StatusOK || !strings.Contains(body, `"tenants"`) {
		t.Errorf("ops reading the ops view: %d %s", code, body)
	}
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

// dashboardFollowsAPush: dev1, signed in to the dashboard in Chromium,
// pushes a version of hello and follows it: its row comes on the Line
// page, its run's page streams the run to its end, and the row then
// shows it Ready and tested in staging and promoted to, and running in,
// prod. A run of dev2's is refused. No console errors on the way (the
// refusal's 403 aside); screenshots are kept as the test's artifacts.
func dashboardFollowsAPush(t *testing.T, e *env, clone, gitAddr, password string) {
	t.Helper()
	base := "https://" + gitAddr + "/-/ui/"
	conn, err := tls.Dial("tcp", gitAddr, e.transport().TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	ctx, consoleErrors := browsertest.Start(t, 1280, 800, browsertest.TrustKey(leaf))
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"line"),
		chromedp.SendKeys(chromedp.ID("user"), "dev1"),
		chromedp.SendKeys(chromedp.ID("password"), password+"\r"),
		chromedp.WaitVisible(chromedp.ID("apps")),
		chromedp.WaitVisible(chromedp.Search(`//span[@id="live" and text()="Live."]`)),
	); err != nil {
		t.Fatalf("dev1 signing in to the dashboard: %v", err)
	}
	if page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#apps"))); err != nil || !strings.Contains(page, "dev1/hello") || strings.Contains(page, "dev2/quotes") {
		t.Errorf("dev1's Line page (%v):\n%s", err, page)
	}

	if err := os.Remove(filepath.Join(clone, "crash.go")); err != nil {
		t.Fatal(err)
	}
	commit := gitPush(t, clone, "a version dev1 follows in the dashboard")
	row := fmt.Sprintf(`tr[data-commit=%q]`, commit)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatalf("the pushed commit's row on the Line page: %v", err)
	}
	runPage, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('%s a').href`, row)))
	if err != nil {
		t.Fatalf("the row's run: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(runPage), chromedp.WaitVisible(chromedp.ID("run-status"))); err != nil {
		t.Fatal(err)
	}
	firstSeen, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("run-status")))
	t.Logf("dashboard: %s opened while the run was %s", runPage, firstSeen)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.Search(`//span[@id="live" and contains(., "finished")]`))); err != nil {
		t.Fatalf("following the run to its end: %v", err)
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("run-status")))
	logs, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("pre.log")).map(p => p.textContent).join("\n")`))
	if status != "succeeded" || !strings.Contains(logs, "ok ") {
		t.Errorf("the run's page at its end: %s; logs:\n%s", status, logs)
	}
	browsertest.Screenshot(t, ctx, "run-dev1")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"line"),
		chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//tr[@data-commit=%q][.//span[@class="badge" and text()="running in prod"]]`, commit))),
	); err != nil {
		t.Fatalf("the version running in prod on the Line page: %v", err)
	}
	rowText, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row)))
	for _, want := range []string{"running in staging", "running in prod", "tests passed", "promoted by", "a version dev1 follows"} {
		if !strings.Contains(rowText, want) {
			t.Errorf("the version's row lacks %q: %s", want, rowText)
		}
	}
	browsertest.Screenshot(t, ctx, "line-dev1")

	// The release's page: Ready in both environments, Helm's history,
	// Flux's events about it.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"releases/dev1/hello"), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatal(err)
	}
	releasePage, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"Release dev1/hello", "staging (dev1-staging)", "prod (dev1-prod)", "Ready", "deployed", "superseded"} {
		if !strings.Contains(releasePage, want) {
			t.Errorf("the release page lacks %q:\n%s", want, releasePage)
		}
	}
	browsertest.Screenshot(t, ctx, "release-dev1")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"releases/dev2/quotes")); err != nil {
		t.Fatal(err)
	}
	if h, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1"))); h != "Not yours" {
		t.Errorf("dev1 opening dev2's release sees %q", h)
	}

	for _, r := range e.runs(t) {
		if r.Pipeline != "dev2/quotes" {
			continue
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("%sruns/%d", base, r.ID))); err != nil {
			t.Fatal(err)
		}
		if h, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1"))); h != "Not yours" {
			t.Errorf("dev1 opening dev2's run %d sees %q", r.ID, h)
		}
		break
	}
	// Ops signs in and sees the platform: both teams, Flux's controllers
	// ready, the fleet's commits, the cluster's version.
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/-/ui/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.Navigate(base+"login?next=/-/ui/ops"),
		chromedp.SendKeys(chromedp.ID("user"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), admin+"\r"),
		chromedp.WaitVisible(chromedp.Search(`//h1[text()="Ops"]`)),
	); err != nil {
		t.Fatalf("ops opening the Ops page: %v", err)
	}
	opsPage, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"dev1", "dev2", "helm-controller", "source-controller", "Kubernetes ", "GitRepository", "Kustomization"} {
		if !strings.Contains(opsPage, want) {
			t.Errorf("the Ops page lacks %q:\n%s", want, opsPage)
		}
	}
	if strings.Contains(opsPage, "not ready") || strings.Contains(opsPage, "could not be read") {
		t.Errorf("the Ops page reports trouble:\n%s", opsPage)
	}
	browsertest.Screenshot(t, ctx, "ops")
	for _, e := range browsertest.Unexpected(consoleErrors()) {
		t.Errorf("console error: %s", e)
	}
}
