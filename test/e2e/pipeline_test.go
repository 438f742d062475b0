package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type runRecord struct {
	ID       int    `json:"id"`
	Pipeline string `json:"pipeline"`
	Commit   string `json:"commit"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	// RequestedBy is who pushed, as the run was told.
	RequestedBy string `json:"requestedBy"`
	Stages      []struct {
		Jobs []struct {
			Steps []struct {
				DisplayName string    `json:"displayName"`
				Status      string    `json:"status"`
				StartedAt   time.Time `json:"startedAt"`
			} `json:"steps"`
		} `json:"jobs"`
	} `json:"stages"`
}

func (e *env) runs(t testing.TB) []runRecord {
	t.Helper()
	var runs []runRecord
	out := e.mustRun("", "pipeline", "list", "-o", "json").stdout
	if strings.TrimSpace(out) != "null" {
		if err := json.Unmarshal([]byte(out), &runs); err != nil {
			t.Fatalf("pipeline list -o json: %v\n%s", err, out)
		}
	}
	return runs
}

// waitRun waits until the run of commit has the wanted status (or any
// final one when want is empty).
func (e *env) waitRun(t testing.TB, commit string, done func(runRecord) bool) runRecord {
	t.Helper()
	var last []runRecord
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		last = e.runs(t)
		for _, r := range last {
			if r.Commit == commit && done(r) {
				return r
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no run of %s as wanted; runs: %+v", commit, last)
	return runRecord{}
}

func finished(r runRecord) bool {
	return r.Status != "queued" && r.Status != "running"
}

// copyDir copies an example app into a clone.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	out, err := exec.Command("cp", "-r", src+"/.", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

func gitPush(t testing.TB, dir, message string) string {
	t.Helper()
	gitCmd(t, dir, "add", "--all")
	gitCmd(t, dir, "commit", "--quiet", "-m", message)
	gitCmd(t, dir, "push", "--quiet", "origin", "HEAD:main")
	return strings.TrimSpace(gitCmd(t, dir, "rev-parse", "HEAD"))
}

// TestPipelineOnPush: a developer pushes an app with its azure-pipelines.yml
// to the git server; the runner builds and publishes the image and the
// chart with the team's CI account; the run, its steps and its logs are
// there to see, and survive a restart; a run cut off by a crash is marked
// failed.
func TestPipelineOnPush(t *testing.T) {
	e := newEnv(t)
	regAddr := freeAddr(t)
	gitAddr := freeAddr(t)
	e.vars = append(e.vars, "SLIPWAY_GIT_ADDR="+gitAddr, "SLIPWAY_REGISTRY_ADDR="+regAddr)
	up := e.startUp()
	dev1 := strings.TrimSpace(e.mustRun("", "user", "set", "dev1", "--push", "dev1/").stdout)
	e.mustRun("", "repo", "create", "dev1/hello")
	clone := filepath.Join(t.TempDir(), "hello")
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://dev1:%s@%s/dev1/hello.git", dev1, gitAddr), clone)
	copyDir(t, "../../examples/hello", clone)
	// The pipeline extends ops's line; without a cluster here, it keeps
	// only its build stage (the release stages are TestLine's).
	pushLineTemplates(t, e, gitAddr)
	file := filepath.Join(clone, "azure-pipelines.yml")
	pipeline := readFile(t, file)
	if !strings.Contains(pipeline, "    app: hello\n") {
		t.Fatal("examples/hello/azure-pipelines.yml no longer gives the line app: hello")
	}
	writeFile(t, file, strings.Replace(pipeline, "    app: hello\n", "    app: hello\n    release: false\n", 1))
	commit := gitPush(t, clone, "hello, with its pipeline")

	r := e.waitRun(t, commit, finished)
	logs := e.mustRun("", "pipeline", "logs", fmt.Sprint(r.ID)).stdout
	if r.Status != "succeeded" {
		t.Fatalf("run %d: %s %s\n%s", r.ID, r.Status, r.Error, logs)
	}
	var names []string
	for _, s := range r.Stages[0].Jobs[0].Steps {
		names = append(names, s.DisplayName+"="+s.Status)
	}
	if len(r.Stages) != 1 {
		t.Fatalf("%d stages ran", len(r.Stages))
	}
	if got := strings.Join(names, ", "); got != "Checkout self=succeeded, GoTool@0=succeeded, Unit tests=succeeded, Build and push the image=succeeded, Package and push the chart=succeeded" {
		t.Errorf("steps: %s", got)
	}
	for _, want := range []string{"ok  \texample.com/hello", "pushing " + regAddr + "/dev1/hello@sha256:", "Pushed: " + regAddr + "/dev1/charts/hello:0.1.0-build."} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	// The team's CI password never shows in a log.
	ciPassword := strings.TrimSpace(readFile(t, filepath.Join(e.home, "pipelines", "credentials", "ci-dev1")))
	if strings.Contains(logs, ciPassword) {
		t.Fatal("the CI password is in the logs")
	}
	if show := e.mustRun("", "pipeline", "show", fmt.Sprint(r.ID)).stdout; !strings.Contains(show, "succeeded") || !strings.Contains(show, "Build and push the image") {
		t.Errorf("pipeline show:\n%s", show)
	}

	// The team's CI account may publish only under the team's prefix.
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), `steps:
- script: slipway build . --image dev2/stolen
  displayName: Push into dev2
  env:
    SLIPWAY_REGISTRY_PASSWORD: $(slipway.registry.password)
`)
	refused := e.waitRun(t, gitPush(t, clone, "try dev2's prefix"), finished)
	if refused.Status != "failed" {
		t.Fatalf("a dev1 pipeline pushed under dev2/: %s", refused.Status)
	}
	if l := e.mustRun("", "pipeline", "logs", fmt.Sprint(refused.ID)).stdout; !strings.Contains(l, "dev1/") {
		t.Errorf("the refusal does not say where dev1 may push:\n%s", l)
	}

	// A pipeline file with an unknown keyword runs nothing and says where.
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), "steps:\n- script: touch /tmp/slipway-should-not-run\n  retries: 2\n")
	bad := e.waitRun(t, gitPush(t, clone, "broken pipeline"), finished)
	if bad.Status != "failed" || !strings.Contains(bad.Error, `azure-pipelines.yml:3: unknown keyword "retries"`) || len(bad.Stages) != 0 {
		t.Fatalf("broken pipeline: %+v", bad)
	}

	// The platform's metrics count the pushes, the runs by result and the
	// registry's requests; only an admin may read them.
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	metrics := scrape(t, e, gitAddr, "admin", admin, http.StatusOK)
	for _, want := range []string{
		`slipway_git_pushes_total{team="dev1"} 3`,
		`slipway_pipeline_runs_total{pipeline="dev1/hello",result="succeeded",team="dev1"} 1`,
		`slipway_pipeline_runs_total{pipeline="dev1/hello",result="failed",team="dev1"} 2`,
		`slipway_pipeline_run_duration_seconds_count{pipeline="dev1/hello",result="succeeded",team="dev1"} 1`,
		`slipway_registry_http_requests_total{code="201",method="put"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("the metrics lack %s", want)
		}
	}
	scrape(t, e, gitAddr, "dev1", dev1, http.StatusForbidden)
	scrape(t, e, gitAddr, "", "", http.StatusUnauthorized)
	scrape(t, e, gitAddr, "admin", "not-the-password", http.StatusUnauthorized)

	// A run cut off by a crash: kill slipway up mid-step; the restarted
	// runner marks the run failed, and the history is still there.
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), "steps:\n- script: sleep 300\n  displayName: Long\n")
	long := gitPush(t, clone, "a long step")
	e.waitRun(t, long, func(r runRecord) bool {
		return r.Status == "running" && len(r.Stages) > 0 && r.Stages[0].Jobs[0].Steps[1].Status == "running"
	})
	_ = up.cmd.Process.Signal(syscall.SIGKILL)
	up.wait(t)
	up = e.startUp()
	cut := e.waitRun(t, long, finished)
	if cut.Status != "failed" || !strings.Contains(cut.Error, "interrupted") {
		t.Fatalf("the run cut off by the crash: %+v", cut)
	}
	if again := e.runs(t); len(again) < 4 {
		t.Fatalf("history lost over the restart: %d runs", len(again))
	}
	if _, err := os.Stat("/tmp/slipway-should-not-run"); err == nil {
		t.Fatal("a step of the broken pipeline ran")
	}
	e.mustRun("", "down")
	up.wait(t)
}

// TestPipelineRunOnAWorkingTree: slipway pipeline run, without a push.
func TestPipelineRunOnAWorkingTree(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "azure-pipelines.yml"), `parameters:
- name: who
  type: string
  default: world
steps:
- script: echo "hello ${{ parameters.who }} from $(Build.Reason) run $(Build.BuildId)"
  displayName: Greet
`)
	r := e.mustRun("", "pipeline", "run", dir, "--param", "who=tests")
	if !strings.Contains(r.stdout, "hello tests from Manual run 1") {
		t.Fatalf("pipeline run:\n%s\n%s", r.stdout, r.stderr)
	}
	writeFile(t, filepath.Join(dir, "azure-pipelines.yml"), "steps:\n- script: exit 7\n")
	if r := e.run("", "pipeline", "run", dir); r.code != 1 || !strings.Contains(r.stderr, "failed") {
		t.Fatalf("a failing run: exit %d\n%s", r.code, r.stderr)
	}
	writeFile(t, filepath.Join(dir, "azure-pipelines.yml"), "steps:\n- task: Docker@2\n")
	if r := e.run("", "pipeline", "run", dir); r.code == 0 || !strings.Contains(r.stderr, "azure-pipelines.yml:2: task Docker@2 is not supported") {
		t.Fatalf("an unsupported task: exit %d\n%s", r.code, r.stderr)
	}
	if runs := e.runs(t); len(runs) != 2 {
		t.Fatalf("history has %d runs, want 2 (the refused file runs nothing)", len(runs))
	}
}

// pushLineTemplates puts ops's template repository, which the example
// pipelines extend, on the platform's git server.
func pushLineTemplates(t *testing.T, e *env, gitAddr string) {
	t.Helper()
	ops := strings.TrimSpace(e.mustRun("", "user", "set", "ops", "--push", "ops/").stdout)
	e.mustRun("", "repo", "create", "ops/pipeline-templates")
	dir := filepath.Join(t.TempDir(), "pipeline-templates")
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://ops:%s@%s/ops/pipeline-templates.git", ops, gitAddr), dir)
	copyDir(t, "../../examples/pipeline-templates", dir)
	gitPush(t, dir, "the line")
}

// scrape reads the platform's /metrics as user (none when empty) and
// checks the answer's status.
func scrape(t *testing.T, e *env, gitAddr, user, password string, want int) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://"+gitAddr+"/metrics", nil)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET /metrics as %q: %s, want %d\n%s", user, resp.Status, want, body)
	}
	return string(body)
}
