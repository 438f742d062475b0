// Package demo plays the line's three tracks on a running platform, the
// way the people would: ops onboards two teams through the fleet
// repository; each developer pushes an app with its azure-pipelines.yml;
// the pipelines build, publish, wait for staging, test and promote to
// prod; then dev2 ships a second version. With monitoring, ops then makes
// the 5xx alert stricter and has every version bake in staging under
// traffic, and dev2 ships a version that fails under traffic: its bake
// fails, the platform will not promote it, and its fix goes through.
// Every action goes through the slipway command and git, as a person
// would type them. It prints the timeline of who did what, when and how
// long it took.
package demo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/gitcmd"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/release"
)

// Demo is one play of the scenario.
type Demo struct {
	// Bin is the slipway program to run; Env its environment (SLIPWAY_HOME...).
	Bin string
	Env []string
	// Examples holds the two example apps (hello for dev1, quotes for dev2).
	Examples string
	// Store is the pipeline history, read to follow the runs.
	Store *runner.Store
	// GitURL is the git server's base URL (https://HOST:PORT).
	GitURL string
	// Fleet is the fleet repository as ops commits to it: on the
	// platform's git server, or on a git host of its own.
	Fleet gitrepo.Remote
	// ExtraPushes: after the scenario, dev1 pushes this many more versions,
	// to measure push-to-ready in staging.
	ExtraPushes int
	// Upgrade, when set, is the Kubernetes release ops upgrades the
	// cluster to, near the end, while the apps are probed.
	Upgrade string
	// Databases: the platform runs CloudNativePG, so quotes keeps its
	// quotes in PostgreSQL 15 and ops upgrades it to 17 near the end.
	Databases bool
	Out       io.Writer

	start    time.Time
	events   []Event
	work     string
	password map[string]string
}

// Event is one line of the timeline.
type Event struct {
	Actor, What string
	Start, End  time.Time
	Err         error
}

// Result is what the play measured.
type Result struct {
	Events []Event
	// StagingReady are push-to-ready-in-staging times, one per push.
	StagingReady []time.Duration
	// Outages are the apps' longest unavailable times during an upgrade.
	Outages []Outage
	// DatabaseOutages are quotes's longest times without an answer to a
	// read during its database's engine upgrade.
	DatabaseOutages []Outage
}

func (d *Demo) logf(format string, args ...any) {
	fmt.Fprintf(d.Out, "%7s  "+format+"\n", append([]any{"+" + time.Since(d.start).Round(100*time.Millisecond).String()}, args...)...)
}

// step runs one action and records it.
func (d *Demo) step(actor, what string, f func() error) error {
	ev := Event{Actor: actor, What: what, Start: time.Now()}
	d.logf("%-8s %s", actor, what)
	err := f()
	ev.End, ev.Err = time.Now(), err
	d.events = append(d.events, ev)
	if err != nil {
		d.logf("%-8s FAILED: %v", actor, err)
	}
	return err
}

// slipway runs the slipway command and returns its standard output.
func (d *Demo) slipway(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.Bin, args...)
	cmd.Env = append(os.Environ(), d.Env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("slipway %s: %v\n%s", strings.Join(args, " "), err, indent(errb.String()))
	}
	return out.String(), nil
}

func indent(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func (d *Demo) git(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := gitcmd.Run(ctx, dir, nil, args...)
	return strings.TrimSpace(out), err
}

// app is one team's app.
type app struct {
	team, name, example string
}

var apps = []app{{"dev1", "hello", "hello"}, {"dev2", "quotes", "quotes"}}

// lineTemplates is ops's repository of the line's pipeline, which both
// teams' pipelines extend.
var lineTemplates = app{"ops", "pipeline-templates", "pipeline-templates"}

// requiredLine is the rule the platform sets for each team's pipelines.
const requiredLine = "line.yml@ops/pipeline-templates"

// setUpTheLine has ops keep the line's pipeline in a repository of its
// own, pushed as its own user.
func (d *Demo) setUpTheLine(ctx context.Context) error {
	pw := fmt.Sprintf("ops-%d", time.Now().UnixNano())
	cmd := exec.CommandContext(ctx, d.Bin, "user", "set", "ops", "--push", "ops/", "--password-stdin")
	cmd.Env = append(os.Environ(), d.Env...)
	cmd.Stdin = strings.NewReader(pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("slipway user set ops: %v: %s", err, out)
	}
	d.password["ops"] = pw
	repos, err := d.slipway(ctx, "repo", "list")
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Fields(repos), "ops/pipeline-templates") {
		if _, err := d.slipway(ctx, "repo", "create", "ops/pipeline-templates"); err != nil {
			return err
		}
	}
	_, err = d.pushApp(ctx, lineTemplates, "", "the line: build, publish, verify in staging, promote")
	return err
}

// cloneURL is the address of an app's repository with its team's
// credentials in it.
func (d *Demo) cloneURL(a app) string {
	scheme, host, _ := strings.Cut(d.GitURL, "://")
	return scheme + "://" + a.team + ":" + d.password[a.team] + "@" + host + "/" + a.team + "/" + a.name + ".git"
}

// ownPipelineIsRefused has a team push a pipeline that does not extend
// the line, to a branch of its own: it must be refused before a step runs.
func (d *Demo) ownPipelineIsRefused(ctx context.Context, a app) error {
	dir := filepath.Join(d.work, a.team+"-own")
	url := d.cloneURL(a)
	if _, err := d.git(ctx, "", "clone", "--quiet", url, dir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "azure-pipelines.yml"), []byte("steps:\n- script: slipway promote "+a.name+" --from staging --to prod\n"), 0o644); err != nil {
		return err
	}
	if _, err := d.git(ctx, dir, "add", "--all"); err != nil {
		return err
	}
	if _, err := d.git(ctx, dir, "-c", "user.name="+a.team, "-c", "user.email="+a.team+"@example.com", "commit", "--quiet", "-m", "a pipeline of our own"); err != nil {
		return err
	}
	// Forced: a demo played again on the same platform finds the branch
	// its last play left.
	if _, err := d.git(ctx, dir, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/own-pipeline"); err != nil {
		return err
	}
	commit, err := d.git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	run, err := d.waitRun(ctx, a.team+"/"+a.name, commit)
	if err != nil {
		return err
	}
	if run.Status != runner.Failed || len(run.Stages) != 0 || !strings.Contains(run.Error, "requires this team's pipelines to extend") {
		return fmt.Errorf("run %d of a pipeline that does not extend the line: %s %s", run.ID, run.Status, run.Error)
	}
	fmt.Fprintln(d.Out, indent("run "+fmt.Sprint(run.ID)+": "+run.Error))
	return nil
}

// waitRun waits for the finished run of a commit.
func (d *Demo) waitRun(ctx context.Context, pipeline, commit string) (*runner.Run, error) {
	for {
		runs, err := d.Store.List(pipeline)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			if r.Commit == commit && runner.Finished(r.Status) {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no run of %.12s: %w", commit, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Run plays the scenario. It stops at the first failure.
func (d *Demo) Run(ctx context.Context) (*Result, error) {
	d.start = time.Now()
	d.password = map[string]string{}
	work, err := os.MkdirTemp("", "slipway-demo-")
	if err != nil {
		return nil, err
	}
	d.work = work
	defer os.RemoveAll(work)
	res := &Result{}
	finish := func(err error) (*Result, error) {
		res.Events = d.events
		return res, err
	}

	// Ops keeps the line's pipeline in a repository of its own.
	if err := d.step("ops", "keeps the line's pipeline in ops/pipeline-templates (git push)", func() error {
		return d.setUpTheLine(ctx)
	}); err != nil {
		return finish(err)
	}

	// Ops onboards the teams and releases their apps in staging.
	for _, a := range apps {
		if err := d.step("ops", fmt.Sprintf("onboards %s: slipway tenant create %s --repo %s", a.team, a.team, a.name), func() error {
			out, err := d.slipway(ctx, "tenant", "create", a.team, "--repo", a.name)
			if err != nil {
				return err
			}
			if pw := strings.TrimSpace(out); pw != "" {
				d.password[a.team] = pw
				return nil
			}
			// Onboarded before (a second play on the same platform): the
			// user exists; give it a new password.
			pw := fmt.Sprintf("%s-%d", a.team, time.Now().UnixNano())
			cmd := exec.CommandContext(ctx, d.Bin, "user", "set", a.team, "--push", a.team+"/", "--password-stdin")
			cmd.Env = append(os.Environ(), d.Env...)
			cmd.Stdin = strings.NewReader(pw + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("slipway user set %s: %v: %s", a.team, err, out)
			}
			d.password[a.team] = pw
			return nil
		}); err != nil {
			return finish(err)
		}
	}
	for _, a := range apps {
		if err := d.step("ops", fmt.Sprintf("requires %s's pipelines to extend the line: slipway pipeline require %s --extends %s", a.team, a.team, requiredLine), func() error {
			_, err := d.slipway(ctx, "pipeline", "require", a.team, "--extends", requiredLine)
			return err
		}); err != nil {
			return finish(err)
		}
	}
	if err := d.step(apps[0].team, "pushes a pipeline of its own, which does not extend the line: refused", func() error {
		return d.ownPipelineIsRefused(ctx, apps[0])
	}); err != nil {
		return finish(err)
	}
	if d.Databases {
		if err := d.giveQuotesADatabase(ctx); err != nil {
			return finish(err)
		}
	}
	for _, a := range apps {
		if err := d.step("ops", fmt.Sprintf("releases %s/%s in staging: slipway release create %s/%s", a.team, a.name, a.team, a.name), func() error {
			_, err := d.slipway(ctx, "release", "create", a.team+"/"+a.name)
			return err
		}); err != nil {
			return finish(err)
		}
	}

	// Both developers push; both pipelines run side by side.
	type pushed struct {
		app    app
		commit string
		at     time.Time
	}
	var pushes []pushed
	for _, a := range apps {
		var commit string
		if err := d.step(a.team, fmt.Sprintf("pushes %s %s with its azure-pipelines.yml", a.name, "1.0"), func() error {
			var err error
			commit, err = d.pushApp(ctx, a, "", "first version of "+a.name)
			return err
		}); err != nil {
			return finish(err)
		}
		pushes = append(pushes, pushed{a, commit, time.Now()})
	}
	for _, p := range pushes {
		if _, err := d.followRun(ctx, p.app, p.commit); err != nil {
			return finish(err)
		}
		if dur, ok := d.stagingReady(ctx, p.app, p.at); ok {
			res.StagingReady = append(res.StagingReady, dur)
		}
	}

	// dev2 ships a second version, which flows through the same way.
	if err := d.ship(ctx, apps[1], "1.1", res); err != nil {
		return finish(err)
	}
	for i := 0; i < d.ExtraPushes; i++ {
		if err := d.ship(ctx, apps[0], fmt.Sprintf("1.%d", i+1), res); err != nil {
			return finish(err)
		}
	}

	// What runs where, as each team can see it.
	for _, a := range apps {
		if err := d.step(a.team, "checks the history: slipway history "+a.name, func() error {
			out, err := d.slipway(ctx, "history", a.name)
			if err != nil {
				return err
			}
			fmt.Fprintln(d.Out, indent(out))
			if !strings.Contains(out, "prod") {
				return errors.New("the history shows no prod release")
			}
			return nil
		}); err != nil {
			return finish(err)
		}
	}
	if err := d.bakeCatchesAFault(ctx, res); err != nil {
		return finish(err)
	}
	if d.Databases {
		if err := d.upgradeTheDatabase(ctx, res); err != nil {
			return finish(err)
		}
	}
	if d.Upgrade != "" {
		if err := d.upgradeTheCluster(ctx, res); err != nil {
			return finish(err)
		}
	}
	if err := d.watchTheLine(ctx); err != nil {
		return finish(err)
	}
	return finish(nil)
}

// watchTheLine has a team read its own timeline (Flux's events of its
// releases among its pushes and runs) and ops read the line's alerts.
func (d *Demo) watchTheLine(ctx context.Context) error {
	a := apps[0]
	if err := d.step(a.team, "reads its timeline: slipway events --since 30m", func() error {
		out, err := d.slipwayAs(ctx, a.team, "events", "--since", "30m", "-o", "json")
		if err != nil {
			return err
		}
		var list []struct{ Source, Team, Namespace, Kind, Name, Reason, Message string }
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		var lines []string
		fluxSaw := false
		for _, e := range list {
			if e.Team != a.team {
				return fmt.Errorf("%s's timeline shows another team's event: %+v", a.team, e)
			}
			fluxSaw = fluxSaw || (e.Source == "flux" && e.Kind == "HelmRelease" && e.Name == a.name)
			lines = append(lines, fmt.Sprintf("%-8s %-14s %s", e.Source, e.Reason, e.Message))
		}
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		fmt.Fprintln(d.Out, indent(strings.Join(lines, "\n")))
		if !fluxSaw {
			return fmt.Errorf("no event of Flux about %s on %s's timeline (%d events)", a.name, a.team, len(list))
		}
		return nil
	}); err != nil {
		return err
	}
	return d.step("ops", "watches the line's alerts: slipway alerts", func() error {
		out, err := d.slipway(ctx, "alerts", "-o", "json", "--recent", "0")
		if err != nil {
			if strings.Contains(err.Error(), "without monitoring") {
				fmt.Fprintln(d.Out, indent("the platform runs without monitoring"))
				return nil
			}
			return err
		}
		var res struct {
			Alerts []struct {
				Labels      map[string]string
				Annotations map[string]string
				Status      struct{ State string }
			}
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return err
		}
		var critical []string
		for _, al := range res.Alerts {
			fmt.Fprintln(d.Out, indent(fmt.Sprintf("%s %s %s: %s", al.Status.State, al.Labels["severity"], al.Labels["alertname"], al.Annotations["summary"])))
			if al.Status.State == "active" && al.Labels["severity"] == "critical" && al.Labels["team"] != "" {
				critical = append(critical, al.Labels["alertname"]+" "+al.Labels["namespace"])
			}
		}
		if len(res.Alerts) == 0 {
			fmt.Fprintln(d.Out, indent("no alerts fire"))
		}
		if len(critical) > 0 {
			return fmt.Errorf("critical alerts fire for the teams' apps: %s", strings.Join(critical, ", "))
		}
		return nil
	})
}

// slipwayAs runs the slipway command as a team's user.
func (d *Demo) slipwayAs(ctx context.Context, team string, args ...string) (string, error) {
	saved := d.Env
	d.Env = append(append([]string{}, d.Env...), "SLIPWAY_REGISTRY_USERNAME="+team, "SLIPWAY_REGISTRY_PASSWORD="+d.password[team])
	defer func() { d.Env = saved }()
	return d.slipway(ctx, args...)
}

// ship pushes a new version of an app and follows its pipeline, noting
// how long the version took to be ready in staging.
func (d *Demo) ship(ctx context.Context, a app, version string, res *Result) error {
	var commit string
	if err := d.step(a.team, "pushes "+a.name+" "+version, func() error {
		var err error
		commit, err = d.pushApp(ctx, a, version, a.name+" "+version)
		return err
	}); err != nil {
		return err
	}
	at := time.Now()
	if _, err := d.followRun(ctx, a, commit); err != nil {
		return err
	}
	if dur, ok := d.stagingReady(ctx, a, at); ok {
		res.StagingReady = append(res.StagingReady, dur)
	}
	return nil
}

// pushApp clones the team's repository, puts the example app in it (with
// its version constant set, and any edits of main.go made), commits and
// pushes as the team's user.
func (d *Demo) pushApp(ctx context.Context, a app, version, message string, edits ...func([]byte) ([]byte, error)) (string, error) {
	example := filepath.Join(d.Examples, a.example)
	return d.commitTo(ctx, a, message, func(dir string, cloned bool) error {
		if cloned {
			if err := fsutil.CopyTree(example, dir); err != nil {
				return err
			}
		}
		if version == "" {
			return nil
		}
		// Each version starts from the example's main.go.
		data, err := os.ReadFile(filepath.Join(example, "main.go"))
		if err != nil {
			return err
		}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "const version = ") {
				lines[i] = fmt.Sprintf("const version = %q", version)
			}
		}
		data = []byte(strings.Join(lines, "\n"))
		for _, edit := range edits {
			if data, err = edit(data); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(dir, "main.go"), data, 0o644)
	})
}

// replayFile is the file a replayed push changes (see commitTo).
const replayFile = ".demo-played"

// commitTo changes a team's repository as its user: it clones it once
// (cloned says so to edit), lets edit change the working tree, commits
// and pushes, and returns the commit.
func (d *Demo) commitTo(ctx context.Context, a app, message string, edit func(dir string, cloned bool) error) (string, error) {
	dir := filepath.Join(d.work, a.team+"-"+a.name)
	cloned := false
	if _, err := os.Stat(dir); err != nil {
		if _, err := d.git(ctx, "", "clone", "--quiet", d.cloneURL(a), dir); err != nil {
			return "", err
		}
		cloned = true
	}
	if err := edit(dir, cloned); err != nil {
		return "", err
	}
	if _, err := d.git(ctx, dir, "add", "--all"); err != nil {
		return "", err
	}
	// A demo played again on the same platform pushes what its last play
	// left in the repository: a commit that changes no file, which the
	// pipeline's trigger (paths: exclude: README.md) rightly ignores.
	// The play then says when it ran in a file of its own, so the push
	// is a change like any other and the pipeline runs.
	if staged, err := d.git(ctx, dir, "diff", "--cached", "--name-only"); err != nil {
		return "", err
	} else if staged == "" {
		if err := os.WriteFile(filepath.Join(dir, replayFile), []byte("played "+time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
			return "", err
		}
		if _, err := d.git(ctx, dir, "add", replayFile); err != nil {
			return "", err
		}
	}
	if _, err := d.git(ctx, dir, "-c", "user.name="+a.team, "-c", "user.email="+a.team+"@example.com", "commit", "--quiet", "--allow-empty", "-m", message); err != nil {
		return "", err
	}
	if _, err := d.git(ctx, dir, "push", "--quiet", "origin", "HEAD:main"); err != nil {
		return "", err
	}
	return d.git(ctx, dir, "rev-parse", "HEAD")
}

// followRun waits for the pipeline run of a commit and puts its stages
// on the timeline; a run that does not succeed is an error.
func (d *Demo) followRun(ctx context.Context, a app, commit string) (*runner.Run, error) {
	run, err := d.awaitRun(ctx, a, commit)
	if err != nil {
		return run, err
	}
	d.noteStages(a, run, false)
	if run.Status != runner.Succeeded && run.Status != runner.SucceededWithIssues {
		logs, _ := d.slipway(ctx, "pipeline", "logs", fmt.Sprint(run.ID))
		return run, fmt.Errorf("pipeline %s/%s run %d %s %s\n%s", a.team, a.name, run.ID, run.Status, run.Error, indent(tail(logs, 40)))
	}
	return run, nil
}

// followFailingRun is followRun for a run that must fail, with its log
// saying why (want).
func (d *Demo) followFailingRun(ctx context.Context, a app, commit, want string) (*runner.Run, string, error) {
	run, err := d.awaitRun(ctx, a, commit)
	if err != nil {
		return run, "", err
	}
	d.noteStages(a, run, true)
	logs, err := d.slipway(ctx, "pipeline", "logs", fmt.Sprint(run.ID))
	if err != nil {
		return run, "", err
	}
	if run.Status != runner.Failed || !strings.Contains(logs, want) {
		return run, logs, fmt.Errorf("pipeline %s/%s run %d %s; want it failed, its log saying %q\n%s", a.team, a.name, run.ID, run.Status, want, indent(tail(logs, 40)))
	}
	return run, logs, nil
}

// awaitRun waits for the run of a commit to finish.
func (d *Demo) awaitRun(ctx context.Context, a app, commit string) (*runner.Run, error) {
	pipeline := a.team + "/" + a.name
	for {
		runs, err := d.Store.List(pipeline)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			if r.Commit == commit && runner.Finished(r.Status) {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pipeline %s: no finished run for %.12s: %w", pipeline, commit, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// noteStages puts a run's stages on the timeline; a failed stage is a
// failed step unless the failure was the point.
func (d *Demo) noteStages(a app, run *runner.Run, failureWanted bool) {
	for _, s := range run.Stages {
		start, end := stageTimes(s)
		if start.IsZero() { // skipped: placed where the run ended
			start, end = run.FinishedAt, run.FinishedAt
		}
		ev := Event{Actor: "pipeline", What: fmt.Sprintf("%s/%s run %d: stage %s (%s)", a.team, a.name, run.ID, cmp.Or(s.DisplayName, s.Name), s.Status), Start: start, End: end}
		if s.Status == runner.Failed || s.Status == runner.Canceled {
			if failureWanted {
				ev.What += ", as it should"
			} else {
				ev.Err = fmt.Errorf("stage %s %s", s.Name, s.Status)
			}
		}
		d.events = append(d.events, ev)
		d.logf("%-8s %s in %s", "pipeline", ev.What, end.Sub(start).Round(100*time.Millisecond))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func stageTimes(s runner.StageResult) (time.Time, time.Time) {
	var start, end time.Time
	for _, j := range s.Jobs {
		if !j.StartedAt.IsZero() && (start.IsZero() || j.StartedAt.Before(start)) {
			start = j.StartedAt
		}
		if j.FinishedAt.After(end) {
			end = j.FinishedAt
		}
	}
	if start.IsZero() {
		start = end
	}
	return start, end
}

// stagingReady is the time from a push to the first version that became
// ready in staging after it, as the release's history records it (slipway
// wait writes the moment it saw the version ready).
func (d *Demo) stagingReady(ctx context.Context, a app, pushed time.Time) (time.Duration, bool) {
	out, err := d.slipway(ctx, "history", a.name, "--team", a.team, "-o", "json")
	if err != nil {
		return 0, false
	}
	var entries []release.Entry
	if json.Unmarshal([]byte(out), &entries) != nil {
		return 0, false
	}
	var first time.Time
	for _, e := range entries {
		if e.Env == "staging" && e.ReadyAt.After(pushed) && (first.IsZero() || e.ReadyAt.Before(first)) {
			first = e.ReadyAt
		}
	}
	return first.Sub(pushed), !first.IsZero()
}

// Median of durations.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// PrintTimeline writes the timeline, in order of start.
func PrintTimeline(w io.Writer, start time.Time, events []Event) {
	sorted := append([]Event(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Start.Before(sorted[j].Start) })
	fmt.Fprintf(w, "\n%-9s %-8s %-9s %s\n", "AT", "WHO", "TOOK", "WHAT")
	for _, e := range sorted {
		status := ""
		if e.Err != nil {
			status = "  FAILED"
		}
		fmt.Fprintf(w, "+%-8s %-8s %-9s %s%s\n", e.Start.Sub(start).Round(100*time.Millisecond), e.Actor, e.End.Sub(e.Start).Round(100*time.Millisecond), e.What, status)
	}
}

// Start is when the play began.
func (d *Demo) Start() time.Time { return d.start }
