package runner

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/procfs"
	"github.com/slipway-dev/slipway/internal/testutil"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/gitserver"
)

// line is a git server, a runner fed by its push events, and a clone of
// dev1/app to push from, as a developer would.
type line struct {
	t      testing.TB
	url    string
	runner *Runner
	store  *Store
	clone  string
	cancel context.CancelFunc
	done   chan struct{}
}

// stop stops the line's runner and waits until it has stopped.
func (l *line) stop() {
	l.cancel()
	<-l.done
}

const secretValue = "pa55-w0rd-that-must-not-leak"

func newLine(t testing.TB) *line {
	t.Helper()
	dir := t.TempDir()
	users := auth.Open(filepath.Join(dir, "users.yaml"))
	if err := users.Set("dev1", "dev1-pw", false, []string{"dev1/"}); err != nil {
		t.Fatal(err)
	}
	srv, err := gitserver.New(filepath.Join(dir, "repos"), users)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Create("dev1/app"); err != nil {
		t.Fatal(err)
	}
	store := &Store{Dir: filepath.Join(dir, "pipelines")}
	r := &Runner{
		Store:   store,
		RepoDir: func(repo string) string { return filepath.Join(dir, "repos", repo+".git") },
		Inputs: func(repo string) (Inputs, error) {
			return Inputs{Env: os.Environ(), Variables: map[string]string{"slipway.registry.addr": "127.0.0.1:5000"},
				Secrets: map[string]string{"slipway.registry.password": secretValue}}, nil
		},
	}
	srv.OnPush = func(ev gitserver.Event) {
		r.OnPush(Push{Repo: ev.Repo, Ref: ev.Ref, Before: ev.Old, After: ev.New, Pusher: ev.Pusher})
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	l := &line{t: t, url: strings.Replace(hs.URL, "http://", "http://dev1:dev1-pw@", 1) + "/dev1/app.git", runner: r, store: store, cancel: cancel, done: done}
	l.clone = filepath.Join(dir, "clone")
	l.git("", "clone", "--quiet", l.url, l.clone)
	return l
}

func (l *line) git(dir string, args ...string) string {
	l.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=dev1", "GIT_AUTHOR_EMAIL=dev1@example.com", "GIT_COMMITTER_NAME=dev1", "GIT_COMMITTER_EMAIL=dev1@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// push commits files and pushes; it returns the commit.
func (l *line) push(files map[string]string, message string) string {
	l.t.Helper()
	commit := l.commit(files, message)
	l.pushed()
	return commit
}

// commit commits files in the clone without pushing.
func (l *line) commit(files map[string]string, message string) string {
	l.t.Helper()
	for name, content := range files {
		p := filepath.Join(l.clone, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o755)
	}
	l.git(l.clone, "add", "--all")
	l.git(l.clone, "commit", "--quiet", "-m", message)
	return l.git(l.clone, "rev-parse", "HEAD")
}

// pushed pushes the clone's commits and returns when git push returned.
func (l *line) pushed() time.Time {
	l.t.Helper()
	l.git(l.clone, "push", "--quiet", "origin", "HEAD:main")
	return time.Now().UTC()
}

// waitRun waits for the run of a commit to finish.
func (l *line) waitRun(commit string) *Run {
	l.t.Helper()
	return l.waitRunAfter(commit, 0)
}

// waitRunAfter waits for a finished run of a commit numbered after id.
func (l *line) waitRunAfter(commit string, id int) *Run {
	l.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		runs, _ := l.store.List("dev1/app")
		for _, r := range runs {
			if r.Commit == commit && r.ID > id && Finished(r.Status) {
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("no finished run for %s after run %d", commit, id)
	return nil
}

func (l *line) log(r *Run, step StepResult) string {
	data, _ := os.ReadFile(filepath.Join(l.store.RunDir(r.ID), step.Log))
	return string(data)
}

// stored is every file the run stored (run.json, logs, artifacts).
func (l *line) stored(r *Run) string {
	var all strings.Builder
	filepath.WalkDir(l.store.RunDir(r.ID), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			all.Write(data)
		}
		return nil
	})
	return all.String()
}

func steps(r *Run) map[string]StepResult {
	out := map[string]StepResult{}
	for _, s := range r.Stages {
		for _, j := range s.Jobs {
			for _, st := range j.Steps {
				if _, seen := out[st.DisplayName]; !seen {
					out[st.DisplayName] = st
				}
			}
		}
	}
	return out
}

func TestPushRunsThePipeline(t *testing.T) {
	l := newLine(t)
	commit := l.push(map[string]string{
		"hello.txt": "hi\n",
		"azure-pipelines.yml": `trigger: [main]
variables:
  greeting: hello
stages:
- stage: Build
  jobs:
  - job: build
    steps:
    - script: |
        cat hello.txt
        echo "greeting=$GREETING commit=$(Build.SourceVersion) branch=$(Build.SourceBranchName) reason=$BUILD_REASON tf=$TF_BUILD"
        echo "registry=$SLIPWAY_REGISTRY_ADDR"
        echo "##vso[task.setvariable variable=tag;isOutput=true]v-$(Build.BuildId)"
      name: meta
      displayName: Show
    - script: echo "tag is $(meta.tag)" && mkdir -p $(Build.ArtifactStagingDirectory)/out && echo x > $(Build.ArtifactStagingDirectory)/out/f
      displayName: Use output
    - publish: $(Build.ArtifactStagingDirectory)/out
      artifact: drop
      displayName: Publish
  - job: after
    dependsOn: build
    condition: and(succeeded(), eq(dependencies.build.outputs['meta.tag'], format('v-{0}', variables['Build.BuildId'])))
    steps:
    - checkout: none
    - script: echo second job
      displayName: Second
- stage: Later
  jobs:
  - job: uses
    variables:
      tag: $[ stageDependencies.Build.build.outputs['meta.tag'] ]
    steps:
    - checkout: none
    - script: echo "from the build stage $(tag)"
      displayName: Stage output
- stage: Never
  condition: eq(variables['Build.SourceBranch'], 'refs/heads/other')
  jobs:
  - job: x
    steps:
    - script: echo never
`}, "add a pipeline")
	r := l.waitRun(commit)
	if r.Status != Succeeded || r.Reason != "IndividualCI" || r.Ref != "refs/heads/main" || r.RequestedBy != "dev1" {
		t.Fatalf("run %+v", r)
	}
	s := steps(r)
	if s["Checkout self"].Status != Succeeded {
		t.Errorf("the implicit checkout: %+v", s["Checkout self"])
	}
	show := l.log(r, s["Show"])
	for _, want := range []string{"hi", "greeting=hello commit=" + commit + " branch=main reason=IndividualCI tf=True", "registry=127.0.0.1:5000"} {
		if !strings.Contains(show, want) {
			t.Errorf("log lacks %q:\n%s", want, show)
		}
	}
	if got, want := s["Show"].Outputs["tag"], fmt.Sprintf("v-%d", r.ID); got != want {
		t.Errorf("the run's record keeps output tag=%q, want %q", got, want)
	}
	if use := l.log(r, s["Use output"]); !strings.Contains(use, fmt.Sprintf("tag is v-%d", r.ID)) {
		t.Errorf("output variable not passed on:\n%s", use)
	}
	if _, err := os.Stat(filepath.Join(l.store.RunDir(r.ID), "artifacts", "drop", "f")); err != nil {
		t.Errorf("artifact not published: %v", err)
	}
	if s["Second"].Status != Succeeded {
		t.Errorf("second job: %+v", s["Second"])
	}
	if log := l.log(r, s["Stage output"]); !strings.Contains(log, fmt.Sprintf("from the build stage v-%d", r.ID)) {
		t.Errorf("stageDependencies output:\n%s", log)
	}
	if r.Stages[2].Status != Skipped {
		t.Errorf("stage Never: %s", r.Stages[2].Status)
	}
}

func TestFailuresConditionsAndSecrets(t *testing.T) {
	l := newLine(t)
	commit := l.push(map[string]string{"azure-pipelines.yml": `steps:
- script: |
    echo "pw=$PW"
    echo "direct $(slipway.registry.password)"
    echo "env has: $(env | grep -c pa55)"
  displayName: Secret
  env:
    PW: $(slipway.registry.password)
- script: echo "##vso[task.setvariable variable=token;issecret=true;isOutput=true]tok-123456" && echo "later tok-123456"
  name: setter
  displayName: Set secret
- script: echo "token is $(token)"
  displayName: Use secret
- script: exit 3
  displayName: Soft fail
  continueOnError: true
- script: echo "##vso[task.logissue type=warning]careful" ; exit 4
  displayName: Hard fail
- script: echo should not run
  displayName: Skipped
- script: echo cleanup
  displayName: Always
  condition: always()
- script: echo on failure
  displayName: On failure
  condition: failed()
`}, "secrets and failures")
	r := l.waitRun(commit)
	if r.Status != Failed || r.Error != "" {
		t.Fatalf("status %s %s", r.Status, r.Error)
	}
	s := steps(r)
	for name, want := range map[string]string{"Secret": Succeeded, "Soft fail": SucceededWithIssues, "Hard fail": Failed,
		"Skipped": Skipped, "Always": Succeeded, "On failure": Succeeded} {
		if s[name].Status != want {
			t.Errorf("%s: %s, want %s", name, s[name].Status, want)
		}
	}
	if s["Hard fail"].ExitCode != 4 || len(s["Hard fail"].Issues) == 0 || s["Hard fail"].Issues[0].Message != "careful" {
		t.Errorf("hard fail: %+v", s["Hard fail"])
	}
	// No stored log or record shows a secret, whether given by the runner
	// or set by a step (a secret output too); the secret was not in the
	// environment unless mapped.
	all := l.stored(r)
	for _, secret := range []string{secretValue, "tok-123456"} {
		if strings.Contains(all, secret) {
			t.Errorf("a stored log or record shows the secret %q", secret)
		}
	}
	secretLog := l.log(r, s["Secret"])
	if !strings.Contains(secretLog, "pw=***") || !strings.Contains(secretLog, "direct ***") || !strings.Contains(secretLog, "env has: 1") {
		t.Errorf("secret log:\n%s", secretLog)
	}
	if !strings.Contains(l.log(r, s["Use secret"]), "token is ***") {
		t.Errorf("use secret log:\n%s", l.log(r, s["Use secret"]))
	}
}

func TestBrokenPipelineRunsNothing(t *testing.T) {
	testutil.Slow(t)
	l := newLine(t)
	for name, tc := range map[string]struct{ file, want string }{
		"malformed":   {"steps:\n- script: echo one\n  bad: [\n", "azure-pipelines.yml:3: not valid YAML"},
		"unknown key": {"steps:\n- script: touch /tmp/should-not-exist\n- script: x\n  retry: 2\n", `azure-pipelines.yml:4: unknown keyword "retry"`},
		"task":        {"steps:\n- script: echo one\n- task: Docker@2\n", "azure-pipelines.yml:3: task Docker@2 is not supported"},
	} {
		commit := l.push(map[string]string{"azure-pipelines.yml": tc.file}, name)
		r := l.waitRun(commit)
		if r.Status != Failed || !strings.Contains(r.Error, tc.want) || len(r.Stages) != 0 {
			t.Errorf("%s: status %s, stages %d, error %q", name, r.Status, len(r.Stages), r.Error)
		}
	}
}

func TestTriggerFilters(t *testing.T) {
	testutil.Slow(t)
	l := newLine(t)
	first := l.push(map[string]string{"azure-pipelines.yml": "trigger:\n  paths:\n    include: [src]\nsteps:\n- script: echo built\n", "src/a": "1"}, "first")
	l.waitRun(first)
	docs := l.push(map[string]string{"docs/readme": "x"}, "docs only")
	src := l.push(map[string]string{"src/a": "2"}, "source change")
	l.waitRun(src)
	runs, _ := l.store.List("dev1/app")
	for _, r := range runs {
		if r.Commit == docs {
			t.Fatalf("a push outside the path filter ran: %+v", r)
		}
	}
}

func TestQueueAndCancel(t *testing.T) {
	testutil.Slow(t)
	l := newLine(t)
	slow := l.push(map[string]string{"azure-pipelines.yml": "steps:\n- script: sleep 30 & echo $! > $(Agent.TempDirectory)/../../pid; wait\n  displayName: Sleep\n"}, "slow")
	// A second push queues behind the first.
	next := l.push(map[string]string{"azure-pipelines.yml": "steps:\n- script: echo quick\n"}, "next")
	var running *Run
	deadline := time.Now().Add(time.Minute)
	for running == nil && time.Now().Before(deadline) {
		runs, _ := l.store.List("dev1/app")
		for _, r := range runs {
			if r.Commit == slow && r.Status == Running && len(r.Stages) > 0 && r.Stages[0].Jobs[0].Steps[1].Status == Running {
				running = r
			}
			if r.Commit == next && r.Status != Queued {
				t.Fatalf("second run started while the first runs: %s", r.Status)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if running == nil {
		t.Fatal("the first run never started its step")
	}
	if err := l.store.RequestCancel(running.ID); err != nil {
		t.Fatal(err)
	}
	r := l.waitRun(slow)
	if r.Status != Canceled || steps(r)["Sleep"].Status != Canceled {
		t.Fatalf("canceled run: %s, step %s", r.Status, steps(r)["Sleep"].Status)
	}
	if r.Duration() > 20*time.Second {
		t.Fatalf("cancel did not stop the step (run took %s)", r.Duration())
	}
	if n := l.waitRun(next); n.Status != Succeeded || n.StartedAt.Before(r.FinishedAt) {
		t.Fatalf("the queued run: %s, started %s, the first finished %s", n.Status, n.StartedAt, r.FinishedAt)
	}
}

func TestBatchFoldsWaitingPushes(t *testing.T) {
	testutil.Slow(t)
	l := newLine(t)
	first := l.push(map[string]string{"azure-pipelines.yml": "trigger:\n  batch: true\nsteps:\n- script: sleep 2\n"}, "first")
	second := l.push(map[string]string{"a": "1"}, "second")
	third := l.push(map[string]string{"a": "2"}, "third")
	l.waitRun(first)
	r3 := l.waitRun(third)
	r2 := l.waitRun(second)
	if r2.Status != Skipped || !strings.Contains(r2.Error, fmt.Sprintf("run %d", r3.ID)) {
		t.Errorf("second push: %s %s", r2.Status, r2.Error)
	}
	if r3.Status != Succeeded || r3.Reason != "BatchedCI" {
		t.Errorf("third push: %s %s", r3.Status, r3.Reason)
	}
}

func TestRecoverMarksInterruptedRunsFailed(t *testing.T) {
	store := &Store{Dir: t.TempDir()}
	// A process that has exited stands for a runner that crashed.
	cmd := exec.Command("true")
	cmd.Run()
	r := &Run{Pipeline: "dev1/app", Status: Running, PID: cmd.Process.Pid, Stages: []StageResult{{Name: "s", Status: Running,
		Jobs: []JobResult{{Name: "j", Status: Running, Steps: []StepResult{{DisplayName: "a", Status: Running}, {DisplayName: "b", Status: NotStarted}}}}}}}
	if err := store.New(r); err != nil {
		t.Fatal(err)
	}
	fixed, err := store.Recover()
	if err != nil || len(fixed) != 1 {
		t.Fatalf("recover: %v %d", err, len(fixed))
	}
	got, _ := store.Get(r.ID)
	if got.Status != Failed || !strings.Contains(got.Error, "interrupted") || got.Stages[0].Jobs[0].Steps[0].Status != Failed || got.Stages[0].Jobs[0].Steps[1].Status != Skipped {
		t.Fatalf("after recover: %+v", got)
	}
}

func TestTimeouts(t *testing.T) {
	testutil.Slow(t)
	l := newLine(t)
	// Step and job limits are whole minutes, long for a test; the
	// runner-wide limit is checked here, and shares their mechanism.
	l.runner.RunTimeout = 2 * time.Second
	commit := l.push(map[string]string{"azure-pipelines.yml": "steps:\n- script: sleep 60\n  displayName: Slow\n- script: echo cleanup\n  displayName: Cleanup\n  condition: always()\n"}, "slow run")
	r := l.waitRun(commit)
	if r.Status != Failed || !strings.Contains(r.Error, "time limit") {
		t.Fatalf("run over its time limit: %s %q", r.Status, r.Error)
	}
	// A run over its own limit runs nothing more, not even always().
	if st := steps(r)["Cleanup"].Status; st != Skipped {
		t.Fatalf("an always() step after the run's time limit: %s", st)
	}
}

// An artifact's name is one folder of the run: a name that climbs out is
// refused and writes nothing.
func TestPublishRefusesArtifactNamesOutsideTheRun(t *testing.T) {
	l := newLine(t)
	commit := l.push(map[string]string{"azure-pipelines.yml": `steps:
- script: mkdir -p out && echo x > out/f
- publish: out
  artifact: ../../escape
  displayName: Escape
`}, "climb")
	r := l.waitRun(commit)
	s := steps(r)
	if s["Escape"].Status != Failed || r.Status != Failed {
		t.Fatalf("publish with ../: step %s, run %s", s["Escape"].Status, r.Status)
	}
	if !strings.Contains(l.log(r, s["Escape"]), "names a folder of the run") {
		t.Errorf("the log does not say why:\n%s", l.log(r, s["Escape"]))
	}
	if _, err := os.Stat(filepath.Join(l.store.RunDir(r.ID), "..", "escape")); err == nil {
		t.Error("written outside the run's artifacts")
	}
}

// Every place a secret could slip out through: a step's displayName, the
// run number, a secret set with ; and % (the logging command carries it
// escaped), arguments: (which would show in ps), and publish's issues.
func TestSecretsStayMaskedEverywhere(t *testing.T) {
	l := newLine(t)
	commit := l.push(map[string]string{"azure-pipelines.yml": `steps:
- script: echo hi
  displayName: Show $(slipway.registry.password)
- script: echo "##vso[build.updatebuildnumber]build-$(slipway.registry.password)"
  displayName: Number
- script: echo "##vso[task.setvariable variable=odd;issecret=true]semi%3Bcolon%AZP25pct"
  displayName: Set odd secret
- script: echo "odd=$(odd)"
  displayName: Odd secret
- task: Bash@3
  inputs:
    targetType: filePath
    filePath: args.sh
    arguments: $(slipway.registry.password) two
  displayName: Args
- publish: $(slipway.registry.password)/nothing-here
  artifact: x
  displayName: Publish
`, "args.sh": "echo \"first=$1 second=$2\"\nps -o args= -p $$ -p $PPID\n"}, "masking")
	r := l.waitRun(commit)
	s := steps(r)
	if r.Error != "" {
		t.Fatalf("run: %s", r.Error)
	}
	if s["Args"].Status != Succeeded {
		t.Fatalf("arguments step: %+v\n%s", s["Args"], l.log(r, s["Args"]))
	}
	all := l.stored(r)
	for _, leak := range []string{secretValue, "semi;colon%pct", "semi%3Bcolon%AZP25pct"} {
		if strings.Contains(all, leak) {
			t.Errorf("a stored log or record shows %q:\n%s", leak, all)
		}
	}
	if r.Number != "build-***" {
		t.Errorf("run number %q", r.Number)
	}
	argsLog := l.log(r, s["Args"])
	if !strings.Contains(argsLog, "first=*** second=two") || strings.Contains(argsLog, "args.sh ***") {
		t.Errorf("arguments log (the script gets them; ps must not show them):\n%s", argsLog)
	}
	if !strings.Contains(l.log(r, s["Odd secret"]), "odd=***") {
		t.Errorf("odd secret log:\n%s", l.log(r, s["Odd secret"]))
	}
}

// A step's output is bounded: a line without a newline is cut into
// pieces that never split a secret, and the log stops growing past its
// cap while the step runs on.
func TestStepOutputIsBounded(t *testing.T) {
	var log strings.Builder
	sec := &secrets{}
	sec.add(secretValue)
	o := &output{log: &log, secrets: sec}
	st := o.stream(false)
	// 200 KiB without a newline, a secret placed across every 64 KiB mark.
	chunk := strings.Repeat("x", maxLineBytes-10) + secretValue
	for range 3 {
		st.Write([]byte(chunk))
	}
	st.Close()
	if strings.Contains(log.String(), secretValue[:10]) {
		t.Fatalf("a cut split the secret: part of it is in the log")
	}
	for _, l := range strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n") {
		if len(l) > maxLineBytes {
			t.Fatalf("a line of %d bytes was kept whole", len(l))
		}
	}
	if got := strings.Count(log.String(), "***"); got != 3 {
		t.Fatalf("%d masked secrets, want 3", got)
	}

	log.Reset()
	o = &output{log: &log, secrets: &secrets{}}
	st = o.stream(false)
	line := []byte(strings.Repeat("y", 1023) + "\n")
	for range (maxStepLogBytes >> 10) + 100 {
		st.Write(line)
	}
	st.Write([]byte("##vso[task.setvariable variable=late]still acts\n"))
	if log.Len() > maxStepLogBytes+1024 || !strings.Contains(log.String(), "the rest of its output is not kept") {
		t.Fatalf("log of %d bytes, or no word of the cut", log.Len())
	}
}

// A run whose recorded process is gone counts as interrupted even when its
// PID now belongs to another process (here: this very test, as after a
// restart that drew the same PID); a run of a live process does not.
func TestRecoverIsNotFooledByAReusedPID(t *testing.T) {
	store := &Store{Dir: t.TempDir()}
	self := os.Getpid()
	stale := &Run{Pipeline: "dev1/app", Status: Running, PID: self, PIDStart: procfs.StartTime(self) - 1}
	live := &Run{Pipeline: "dev1/other", Status: Running, PID: self, PIDStart: procfs.StartTime(self)}
	for _, r := range []*Run{stale, live} {
		if err := store.New(r); err != nil {
			t.Fatal(err)
		}
	}
	fixed, err := store.Recover()
	if err != nil || len(fixed) != 1 || fixed[0].ID != stale.ID {
		t.Fatalf("recover: %v, fixed %+v", err, fixed)
	}
	if procfs.StartTime(self) == 0 {
		t.Fatal("no start time read for this process")
	}
}

// A push whose run was still queued when the runner stopped runs after
// the restart, as a new run; the old one says so.
func TestQueuedRunsRunAfterARestart(t *testing.T) {
	l := newLine(t)
	// The runner stops; the push reaches the server, not a run.
	l.stop()
	commit := l.push(map[string]string{"azure-pipelines.yml": "steps:\n- script: echo ran\n  displayName: Run\n"}, "queued")
	// What a crash leaves: the push's run recorded as queued by a process
	// that is gone.
	gone := exec.Command("true")
	gone.Run()
	entries, _ := l.store.intake()
	if len(entries) != 1 {
		t.Fatalf("intake: %+v", entries)
	}
	queued := &Run{Pipeline: "dev1/app", Reason: "IndividualCI", Ref: "refs/heads/main", Commit: commit, RequestedBy: "dev1",
		File: "azure-pipelines.yml", Status: Queued, PID: gone.Process.Pid, QueuedAt: time.Now().UTC(), Push: entries[0].push.ID}
	if err := l.store.New(queued); err != nil {
		t.Fatal(err)
	}
	// A second runner on the same store stands for the restarted one.
	r2 := &Runner{Store: l.store, RepoDir: l.runner.RepoDir, Inputs: l.runner.Inputs}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r2.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	rerun := l.waitRunAfter(commit, queued.ID)
	if rerun.Status != Succeeded {
		t.Fatalf("the push's new run: %s %s", rerun.Status, rerun.Error)
	}
	old, _ := l.store.Get(queued.ID)
	if old.Status != Failed || !strings.Contains(old.Error, "its push runs again as a new run") {
		t.Fatalf("the queued run after the restart: %s %q", old.Status, old.Error)
	}
	// Once: the push's intake entry, still there, names the queued run.
	runs, _ := l.store.List("dev1/app")
	n := 0
	for _, r := range runs {
		if r.Commit == commit && r.ID != queued.ID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d new runs of the push, want 1", n)
	}
}

// Host jobs work inside the store (their scripts hold expanded secrets),
// not in the shared temporary directory; a workspace a crash left behind
// is swept when the runner starts again, one of a run still going is not.
func TestJobWorkspacesStayInTheStoreAndAreSwept(t *testing.T) {
	l := newLine(t)
	commit := l.push(map[string]string{"azure-pipelines.yml": "steps:\n- script: pwd\n  displayName: Where\n"}, "where")
	r := l.waitRun(commit)
	if where := l.log(r, steps(r)["Where"]); !strings.HasPrefix(where, l.store.WorkDir()+"/slipway-run-") {
		t.Fatalf("the job ran in %q, not under %s", where, l.store.WorkDir())
	}
	l.stop()
	// What a crash leaves: the workspace of a finished run, with a step
	// script; and one of a run some other process still runs.
	running := &Run{Pipeline: "dev1/app", Status: Running, PID: os.Getpid(), PIDStart: procfs.StartTime(os.Getpid())}
	if err := l.store.New(running); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(l.store.WorkDir(), fmt.Sprintf("slipway-run-%d-0-0-123", r.ID))
	kept := filepath.Join(l.store.WorkDir(), fmt.Sprintf("slipway-run-%d-0-0-456", running.ID))
	look := filepath.Join(l.store.WorkDir(), lookPrefix+"789")
	for _, d := range []string{left, kept, look} {
		os.MkdirAll(filepath.Join(d, "tmp"), 0o700)
		os.WriteFile(filepath.Join(d, "tmp", "step-1.sh"), []byte("echo "+secretValue+"\n"), 0o700)
	}
	r2 := &Runner{Store: l.store, RepoDir: l.runner.RepoDir, Inputs: l.runner.Inputs}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r2.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 0; ; i++ {
		_, errLeft := os.Stat(left)
		_, errLook := os.Stat(look)
		if os.IsNotExist(errLeft) && os.IsNotExist(errLook) {
			break
		}
		if i == 600 {
			t.Fatalf("the finished run's workspace %s or the pipeline checkout %s is still there", left, look)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("the workspace of a run still going was removed: %v", err)
	}
}

// A push is kept in the store's intake before the git server answers it:
// one that arrives while no runner runs (or as one crashes) gets its run
// when a runner starts again, once; an entry whose run was already made
// (a crash between the two) runs nothing more.
func TestPushesSurviveARunnerThatIsNotRunning(t *testing.T) {
	l := newLine(t)
	l.stop()
	commit := l.push(map[string]string{"azure-pipelines.yml": "steps:\n- script: echo ran\n  displayName: Run\n"}, "while stopped")
	entries, _ := l.store.intake()
	if len(entries) != 1 || entries[0].push.After != commit {
		t.Fatalf("intake after the push: %+v", entries)
	}
	// A second entry for a push whose run exists already.
	done := &Run{Pipeline: "dev1/app", Reason: "IndividualCI", Commit: "feedface", Status: Succeeded, Push: "00000000000000000001-000001-1.json"}
	if err := l.store.New(done); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(l.store.intakeDir(), done.Push), []byte(`{"Repo":"dev1/app","Ref":"refs/heads/main","After":"`+commit+`"}`), 0o600)

	r2 := &Runner{Store: l.store, RepoDir: l.runner.RepoDir, Inputs: l.runner.Inputs}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = r2.Start(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	if r := l.waitRun(commit); r.Status != Succeeded {
		t.Fatalf("the kept push's run: %s %s", r.Status, r.Error)
	}
	for i := 0; ; i++ {
		if left, _ := l.store.intake(); len(left) == 0 {
			break
		}
		if i == 600 {
			t.Fatal("the intake was not emptied")
		}
		time.Sleep(50 * time.Millisecond)
	}
	runs, _ := l.store.List("dev1/app")
	n := 0
	for _, r := range runs {
		if r.Commit == commit {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d runs of the kept push, want 1", n)
	}
}

// What a step started lives on when slipway dies (bash goes with it, its
// children do not); the next start ends it before sweeping the workspace.
func TestStepsOfACrashedRunDoNotOutliveIt(t *testing.T) {
	store := &Store{Dir: t.TempDir()}
	run := &Run{Pipeline: "dev1/app", Status: Running}
	if err := store.New(run); err != nil {
		t.Fatal(err)
	}
	job, err := HostExecutor{Dir: store.WorkDir()}.StartJob(context.Background(), JobSpec{Run: run, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ws := job.Workspace()
	child := filepath.Join(ws, "child.pid")
	stepDone := make(chan struct{})
	// Output to a file, so bash's end is the step's end (a pipe would be
	// held open by the child).
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	go func() {
		defer close(stepDone)
		_, _ = job.Run(context.Background(), Command{Script: "sleep 300 & echo $! > " + child + "; wait", Dir: ws, Env: os.Environ(), Stdout: out, Stderr: out})
	}()
	var groups []string
	var childPid int
	for i := 0; childPid == 0 || len(groups) == 0; i++ {
		if i == 600 {
			t.Fatal("the step did not start")
		}
		time.Sleep(10 * time.Millisecond)
		groups, _ = filepath.Glob(filepath.Join(ws, groupPrefix+"*"))
		data, _ := os.ReadFile(child)
		childPid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	// What a crash leaves: the step's bash is gone (killed with slipway),
	// its record of the group stays, the run is marked finished.
	record, _ := os.ReadFile(groups[0])
	leader, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(groups[0]), groupPrefix))
	syscall.Kill(leader, syscall.SIGKILL)
	<-stepDone
	os.WriteFile(groups[0], record, 0o600) // the step's own cleanup would not have run
	if procfs.StartTime(childPid) == 0 {
		t.Fatal("the step's child died with bash; nothing to test")
	}
	run.Status = Failed
	store.Save(run)

	store.SweepWorkDir()
	for i := 0; procfs.StartTime(childPid) != 0; i++ {
		if state, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", childPid)); strings.Contains(string(state), ") Z ") {
			break // killed, not yet reaped by its new parent
		}
		if i == 600 {
			t.Fatalf("the crashed step's child %d still runs after the sweep", childPid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(ws); !os.IsNotExist(err) {
		t.Fatalf("the workspace is still there: %v", err)
	}
}

// Variable values name other variables, as Azure Pipelines expands them:
// in any order, through blocks, with predefined names; unknown names and
// cycles stay as written; a value that takes in a secret is secret.
func TestVariableValuesNameOtherVariables(t *testing.T) {
	l := newLine(t)
	commit := l.push(map[string]string{"azure-pipelines.yml": `variables:
  imageName: $(team)/web
  team: dev1
  tag: $(Build.BuildId)-$(imageName)
  loopA: $(loopB)
  loopB: $(loopA)
  unknown: $(nope)/x
  login: user:$(slipway.registry.password)
  fromStage: $(stageVar)
stages:
- stage: Build
  variables:
    stageVar: $(jobVar)-stage
  jobs:
  - job: One
    variables:
      jobVar: $(team)-job
    steps:
    - script: |
        echo "image=$(imageName) env=$IMAGENAME tag=$TAG"
        echo "unknown=$UNKNOWN loop=$LOOPA/$LOOPB"
        echo "fromStage=$FROMSTAGE"
        echo "login-env=${LOGIN:-absent} login=$(login)"
        echo '##vso[task.setvariable variable=later]$''(team)'

    - script: echo "later=$LATER"
      env:
        LATER: $(later)
`}, "variables naming variables")
	r := l.waitRun(commit)
	if r.Status != Succeeded {
		t.Fatalf("run: %s %s", r.Status, r.Error)
	}
	first := l.log(r, r.Stages[0].Jobs[0].Steps[1])
	for _, want := range []string{
		"image=dev1/web env=dev1/web tag=" + fmt.Sprint(r.ID) + "-dev1/web",
		"unknown=$(nope)/x loop=$(loopB)/$(loopA)",
		"fromStage=dev1-job-stage",
		"login-env=absent login=user:***",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("log lacks %q:\n%s", want, first)
		}
	}
	if strings.Contains(l.stored(r), secretValue) {
		t.Error("the secret taken into another variable is stored unmasked")
	}
	// A value set at run time is data: "$(team)" in it is not expanded.
	if second := l.log(r, r.Stages[0].Jobs[0].Steps[2]); !strings.Contains(second, "later=$(team)") {
		t.Errorf("a variable set by a step: %s", second)
	}
}

// twoJobsMeeting is a stage whose two jobs can succeed only side by side:
// each leaves a mark in dir, then waits for the other's (a minute at
// most). A third job depends on both.
func twoJobsMeeting(dir string) string {
	wait := func(mine, theirs string) string {
		return fmt.Sprintf("touch %s/%s; for i in $(seq 600); do [ -e %s/%s ] && exit 0; sleep 0.1; done; exit 1", dir, mine, dir, theirs)
	}
	return fmt.Sprintf(`jobs:
- job: A
  steps:
  - script: %s
    displayName: A
- job: B
  steps:
  - script: %s
    displayName: B
- job: C
  dependsOn: [A, B]
  steps:
  - script: echo after both
    displayName: C
`, wait("a", "b"), wait("b", "a"))
}

// The jobs of a stage that do not depend on each other run side by side;
// one that depends on them starts when both are done.
func TestJobsOfAStageRunSideBySide(t *testing.T) {
	l := newLine(t)
	r := l.waitRun(l.push(map[string]string{"azure-pipelines.yml": twoJobsMeeting(t.TempDir())}, "side by side"))
	if r.Status != Succeeded {
		t.Fatalf("run: %s %s %+v", r.Status, r.Error, r.Stages)
	}
	jobs := map[string]JobResult{}
	for _, j := range r.Stages[0].Jobs {
		jobs[j.Name] = j
	}
	if c := jobs["C"]; c.StartedAt.Before(jobs["A"].FinishedAt) || c.StartedAt.Before(jobs["B"].FinishedAt) {
		t.Fatalf("C started at %s, before A (%s) or B (%s) finished", c.StartedAt, jobs["A"].FinishedAt, jobs["B"].FinishedAt)
	}
}

// A team's jobs run at most ParallelJobs at a time.
func TestParallelJobsBoundATeam(t *testing.T) {
	l := newLine(t)
	l.runner.ParallelJobs = 1
	r := l.waitRun(l.push(map[string]string{"azure-pipelines.yml": `jobs:
- job: A
  steps:
  - script: sleep 0.5
- job: B
  steps:
  - script: sleep 0.5
`}, "one at a time"))
	if r.Status != Succeeded {
		t.Fatalf("run: %s %s", r.Status, r.Error)
	}
	a, b := r.Stages[0].Jobs[0], r.Stages[0].Jobs[1]
	if a.StartedAt.Before(b.FinishedAt) && b.StartedAt.Before(a.FinishedAt) {
		t.Fatalf("with one place, jobs overlapped: A %s-%s, B %s-%s", a.StartedAt, a.FinishedAt, b.StartedAt, b.FinishedAt)
	}
}

// After a cancel, Azure still runs what asks for it: always() and
// canceled() steps, jobs and stages, for the cancel timeout; the rest is
// skipped, and the run is canceled.
func TestAlwaysRunsAfterACancel(t *testing.T) {
	l := newLine(t)
	commit := l.push(map[string]string{"azure-pipelines.yml": `stages:
- stage: One
  jobs:
  - job: Work
    steps:
    - script: sleep 60
      displayName: Long
    - script: echo default-ran
      displayName: Default
    - script: echo cleanup-ran
      displayName: Cleanup
      condition: always()
    - script: echo canceled-ran
      displayName: OnCancel
      condition: canceled()
  - job: Later
    dependsOn: Work
    steps:
    - script: echo later
  - job: Report
    dependsOn: Work
    condition: always()
    steps:
    - script: echo report-ran
      displayName: Report
- stage: Two
  jobs:
  - job: X
    steps:
    - script: echo two
- stage: Notify
  condition: always()
  jobs:
  - job: N
    steps:
    - script: echo notify-ran
      displayName: Notify
`}, "cancel me")
	var running *Run
	for i := 0; running == nil; i++ {
		if i == 1200 {
			t.Fatal("the long step never started")
		}
		time.Sleep(50 * time.Millisecond)
		runs, _ := l.store.List("dev1/app")
		for _, r := range runs {
			if r.Commit == commit && len(r.Stages) > 0 && r.Stages[0].Jobs[0].Steps[1].Status == Running {
				running = r
			}
		}
	}
	if err := l.store.RequestCancel(running.ID); err != nil {
		t.Fatal(err)
	}
	r := l.waitRun(commit)
	if r.Status != Canceled {
		t.Fatalf("run: %s %s", r.Status, r.Error)
	}
	got := steps(r)
	for name, want := range map[string]string{"Long": Canceled, "Default": Skipped, "Cleanup": Succeeded, "OnCancel": Succeeded, "Report": Succeeded, "Notify": Succeeded} {
		if got[name].Status != want {
			t.Errorf("step %s: %s, want %s", name, got[name].Status, want)
		}
	}
	for _, name := range []string{"Cleanup", "Report", "Notify"} {
		if log := l.log(r, got[name]); !strings.Contains(log, strings.ToLower(name)+"-ran") {
			t.Errorf("step %s's log: %s", name, log)
		}
	}
	if later := r.Stages[0].Jobs[1]; later.Name != "Later" || later.Status != Skipped {
		t.Errorf("job Later: %+v", later)
	}
	if two := r.Stages[1]; two.Status != Skipped {
		t.Errorf("stage Two: %s", two.Status)
	}
}

// counter(prefix, seed): seed at a prefix's first run, one more at each
// run after; a new prefix starts again at its seed; one number per run.
func TestCounterCountsRunsPerPrefix(t *testing.T) {
	l := newLine(t)
	pipelineFile := func(major string) string {
		return `variables:
  major: ` + major + `
  minor: $[counter(variables['major'], 100)]
  again: $[counter(variables['major'], 5)]
steps:
- script: echo "version=$(major).$(minor) again=$(again)"
  displayName: Version
`
	}
	var got []string
	for i, major := range []string{"1", "1", "1", "2", "1"} {
		r := l.waitRun(l.push(map[string]string{"azure-pipelines.yml": pipelineFile(major), "n": fmt.Sprint(i)}, "run "+fmt.Sprint(i)))
		if r.Status != Succeeded {
			t.Fatalf("run %d: %s %s", i, r.Status, r.Error)
		}
		log := l.log(r, steps(r)["Version"])
		i := strings.Index(log, "version=")
		got = append(got, strings.Fields(log[i:])[0]+" "+strings.Fields(log[i:])[1])
	}
	want := []string{"version=1.100 again=100", "version=1.101 again=101", "version=1.102 again=102", "version=2.100 again=100", "version=1.103 again=103"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("counter gave\n  %s\nwant\n  %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
}
