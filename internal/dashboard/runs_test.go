package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/lineview"
	"github.com/slipway-dev/slipway/internal/opsview"
	"github.com/slipway-dev/slipway/internal/release"
)

// runsFixture is a dashboard whose run store (a real one, on disk)
// holds a finished run of dev2's quotes and a running one of dev1's
// hello, with logs as the runner writes them.
type runsFixture struct {
	*fixture
	store      *runner.Store
	dev1, dev2 *runner.Run
	reruns     []string
}

func newRunsFixture(t *testing.T) *runsFixture {
	t.Helper()
	rf := &runsFixture{store: &runner.Store{Dir: t.TempDir()}}
	step := func(name, log, status string, outputs map[string]string) runner.StepResult {
		return runner.StepResult{DisplayName: name, Status: status, Log: log, Outputs: outputs}
	}
	rf.dev2 = &runner.Run{Pipeline: "dev2/quotes", Reason: "IndividualCI", Ref: "refs/heads/main", Commit: strings.Repeat("b", 40), RequestedBy: "dev2",
		Status: runner.Succeeded, QueuedAt: time.Now().Add(-time.Minute), FinishedAt: time.Now(),
		Stages: []runner.StageResult{{Name: "Build", Status: runner.Succeeded, Jobs: []runner.JobResult{{Name: "build", Status: runner.Succeeded,
			Steps: []runner.StepResult{step("Package and push the chart", "logs/1.log", runner.Succeeded, map[string]string{"version": "0.3.0"})}}}}}}
	rf.dev1 = &runner.Run{Pipeline: "dev1/hello", Reason: "IndividualCI", Ref: "refs/heads/main", Commit: strings.Repeat("a", 40), RequestedBy: "dev1",
		Status: runner.Running, QueuedAt: time.Now(),
		Stages: []runner.StageResult{{Name: "Build", Status: runner.Running, Jobs: []runner.JobResult{{Name: "build", Status: runner.Running,
			Steps: []runner.StepResult{step("Unit tests", "logs/1.log", runner.Running, nil), step("Build and push the image", "", runner.NotStarted, nil)}}}}}}
	for _, r := range []*runner.Run{rf.dev2, rf.dev1} {
		if err := rf.store.New(r); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(rf.store.RunDir(r.ID), "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rf.writeLog(t, rf.dev2, "logs/1.log", "dev2's secret sauce\n")
	rf.writeLog(t, rf.dev1, "logs/1.log", "=== RUN TestHello\n")
	rf.fixture = newFixture(t, func(s *Server) {
		s.Runs = rf.store
		s.Line = func(ctx context.Context) ([]lineview.App, error) {
			return lineview.Gather(ctx, lineview.Sources{Runs: rf.store}, nil)
		}
		s.Release = func(ctx context.Context, team, app string) ([]release.Detail, error) {
			return []release.Detail{{Env: "staging", Namespace: team + "-staging", Exists: true, Running: "0.3.0", Ready: false, Reason: "UpgradeFailed",
				Message: "team " + team + "'s upgrade failed", Explanation: release.Explain("UpgradeFailed", false),
				History: []release.HelmRecord{{Revision: 2, ChartVersion: "0.3.1", Status: "failed"}, {Revision: 1, ChartVersion: "0.3.0", Status: "superseded"}}}}, nil
		}
		s.Ops = func(context.Context) *opsview.View {
			return &opsview.View{Tenants: []string{"dev1", "dev2"}, Errors: []string{"the alerts: connection refused"}}
		}
		s.Rerun = func(run *runner.Run, by string) error {
			rf.reruns = append(rf.reruns, run.Pipeline+" by "+by)
			return nil
		}
	})
	return rf
}

func (rf *runsFixture) writeLog(t *testing.T, r *runner.Run, name, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(rf.store.RunDir(r.ID), name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, c *http.Client, u string, header bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, nil)
	if header {
		req.Header.Set("X-Slipway-Dashboard", "1")
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body["error"] + body["message"]
}

// dev1 sees its own line and runs; another team's app, run, log, stream,
// cancel and re-run are refused on the page and in the API alike.
func TestLineAndRunsAreScopedToTheTeam(t *testing.T) {
	rf := newRunsFixture(t)
	anon := rf.browser(t)
	for _, p := range []string{"line/apps", "api/line", "api/runs/1", "api/runs/1/stream", "api/releases/dev1/hello", "api/ops"} {
		if code, body := get(t, anon, rf.srv.URL+Path+p); code != http.StatusUnauthorized || strings.Contains(body, "hello") {
			t.Errorf("%s signed out: %d %s", p, code, body)
		}
	}
	dev1 := rf.browser(t)
	rf.signIn(t, dev1, "dev1", "dev1-password")

	code, body := get(t, dev1, rf.srv.URL+Path+"api/line")
	var apps []lineview.App
	if err := json.Unmarshal([]byte(body), &apps); code != http.StatusOK || err != nil || len(apps) != 1 || apps[0].Name != "hello" {
		t.Fatalf("dev1's line (%d): %s", code, body)
	}
	for _, p := range []string{"line", "line/apps"} {
		code, page := get(t, dev1, rf.srv.URL+Path+p)
		if code != http.StatusOK || !strings.Contains(page, "dev1/hello") || strings.Contains(page, "quotes") {
			t.Errorf("dev1's %s (%d):\n%s", p, code, page)
		}
	}
	if code, page := get(t, dev1, rf.srv.URL+Path+"line?team=dev2"); code != http.StatusForbidden || strings.Contains(page, "quotes") {
		t.Errorf("dev1 asking for dev2's line: %d", code)
	}

	other := rf.srv.URL + Path + "runs/" + itoa(rf.dev2.ID)
	otherAPI := rf.srv.URL + Path + "api/runs/" + itoa(rf.dev2.ID)
	for _, u := range []string{other, otherAPI, otherAPI + "/stream"} {
		if code, body := get(t, dev1, u); code != http.StatusForbidden || strings.Contains(body, "secret sauce") || strings.Contains(body, "0.3.0") {
			t.Errorf("dev1 reading %s: %d %s", u, code, body)
		}
	}
	for _, action := range []string{"cancel", "rerun"} {
		if code, _ := post(t, dev1, otherAPI+"/"+action, true); code != http.StatusForbidden {
			t.Errorf("dev1 asking to %s dev2's run: %d", action, code)
		}
	}
	if code, _ := get(t, dev1, rf.srv.URL+Path+"runs/999"); code != http.StatusNotFound {
		t.Errorf("a run that does not exist: %d", code)
	}
	if len(rf.reruns) != 0 || rf.store.CancelRequested(rf.dev2.ID) {
		t.Fatalf("dev2's run was acted on: reruns %v, cancel %v", rf.reruns, rf.store.CancelRequested(rf.dev2.ID))
	}

	// Its own run: the page, and the actions — only with the dashboard's
	// header, which another site's page cannot send.
	mine := rf.srv.URL + Path + "api/runs/" + itoa(rf.dev1.ID)
	if code, page := get(t, dev1, rf.srv.URL+Path+"runs/"+itoa(rf.dev1.ID)); code != http.StatusOK || !strings.Contains(page, "Unit tests") || !strings.Contains(page, "Cancel run") {
		t.Errorf("dev1's run page (%d):\n%s", code, page)
	}
	if code, _ := post(t, dev1, mine+"/cancel", false); code != http.StatusForbidden || rf.store.CancelRequested(rf.dev1.ID) {
		t.Errorf("a cancel without the dashboard's header: %d", code)
	}
	if code, msg := post(t, dev1, mine+"/cancel", true); code != http.StatusAccepted || !rf.store.CancelRequested(rf.dev1.ID) {
		t.Errorf("dev1 canceling its run: %d %s", code, msg)
	}
	if code, msg := post(t, dev1, mine+"/rerun", true); code != http.StatusAccepted || len(rf.reruns) != 1 || rf.reruns[0] != "dev1/hello by dev1" {
		t.Errorf("dev1 running its run again: %d %s %v", code, msg, rf.reruns)
	}

	// Releases: its own, explained; another team's refused.
	if code, page := get(t, dev1, rf.srv.URL+Path+"releases/dev1/hello"); code != http.StatusOK || !strings.Contains(page, "previous one keeps serving") || !strings.Contains(page, "0.3.1") {
		t.Errorf("dev1's release page (%d):\n%s", code, page)
	}
	for _, u := range []string{"releases/dev2/quotes", "api/releases/dev2/quotes"} {
		if code, body := get(t, dev1, rf.srv.URL+Path+u); code != http.StatusForbidden || strings.Contains(body, "team dev2") {
			t.Errorf("dev1 reading %s: %d %s", u, code, body)
		}
	}
	if code, _ := get(t, dev1, rf.srv.URL+Path+"releases/dev1/..%2Fx"); code != http.StatusNotFound {
		t.Errorf("a release name that is no name: %d", code)
	}

	// The Ops page is ops's alone.
	for _, u := range []string{"ops", "api/ops"} {
		if code, body := get(t, dev1, rf.srv.URL+Path+u); code != http.StatusForbidden || strings.Contains(body, "dev2") {
			t.Errorf("dev1 reading %s: %d %s", u, code, body)
		}
	}

	// Ops sees both teams.
	ops := rf.browser(t)
	rf.signIn(t, ops, "admin", "admin-password")
	if code, body := get(t, ops, rf.srv.URL+Path+"api/line"); code != http.StatusOK || !strings.Contains(body, `"hello"`) || !strings.Contains(body, `"quotes"`) {
		t.Errorf("ops's line (%d): %s", code, body)
	}
	if code, body := get(t, ops, otherAPI); code != http.StatusOK || !strings.Contains(body, "dev2/quotes") {
		t.Errorf("ops reading dev2's run: %d %s", code, body)
	}
	if code, page := get(t, ops, rf.srv.URL+Path+"ops"); code != http.StatusOK || !strings.Contains(page, "dev2") || !strings.Contains(page, "the alerts: connection refused") {
		t.Errorf("ops's Ops page (%d):\n%s", code, page)
	}
}

// The run's stream brings its log as it is written and ends when the run
// does.
func TestRunLogStreamsLive(t *testing.T) {
	rf := newRunsFixture(t)
	dev1 := rf.browser(t)
	rf.signIn(t, dev1, "dev1", "dev1-password")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rf.srv.URL+Path+"api/runs/"+itoa(rf.dev1.ID)+"/stream", nil)
	res, err := dev1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	next := func() (string, string) {
		t.Helper()
		var event string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				return event, strings.TrimPrefix(line, "data: ")
			}
		}
	}
	logText := func() string {
		t.Helper()
		for {
			event, data := next()
			if event == "log" {
				var chunk map[string]string
				if err := json.Unmarshal([]byte(data), &chunk); err != nil {
					t.Fatal(err)
				}
				return chunk["text"]
			}
		}
	}
	if event, data := next(); event != "run" || !strings.Contains(data, `"status":"running"`) {
		t.Fatalf("first event: %s %s", event, data)
	}
	if text := logText(); text != "=== RUN TestHello\n" {
		t.Errorf("the log so far: %q", text)
	}
	// A line half written is sent once it is whole.
	rf.writeLog(t, rf.dev1, "logs/1.log", "--- PASS: Test")
	rf.writeLog(t, rf.dev1, "logs/1.log", "Hello (0.00s)\n")
	if text := logText(); text != "--- PASS: TestHello (0.00s)\n" {
		t.Errorf("the next line: %q", text)
	}
	rf.dev1.Status = runner.Succeeded
	rf.dev1.FinishedAt = time.Now()
	if err := rf.store.Save(rf.dev1); err != nil {
		t.Fatal(err)
	}
	for {
		event, data := next()
		if event == "end" {
			if !strings.Contains(data, "succeeded") {
				t.Errorf("end: %s", data)
			}
			return
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
