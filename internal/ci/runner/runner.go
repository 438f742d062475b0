package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/pipeline"
	"github.com/slipway-dev/slipway/internal/gitcmd"
	"github.com/slipway-dev/slipway/internal/syncio"
)

// Push is a push the git server reports.
type Push struct {
	Repo, Ref, Before, After, Pusher string
	// Pipeline, when set, is the only pipeline the push may start (a
	// queued run started again after a crash).
	Pipeline string `json:",omitempty"`
	// ID names the push's entry in the store's intake (see OnPush). The
	// git server gives each change one that sorts in push order and stays
	// the same when it tells the change again after a crash; empty, the
	// store names the entry.
	ID string `json:"-"`
}

const zeroCommit = "0000000000000000000000000000000000000000"

// Runner runs pipelines one at a time per pipeline, in the order their
// pushes came, and keeps their history in Store.
type Runner struct {
	Store *Store
	// RepoDir is the bare repository of a pipeline (a repository name).
	RepoDir func(repo string) string
	// Inputs are the variables and secrets a pipeline's runs get.
	Inputs func(repo string) (Inputs, error)
	// RunTimeout bounds a whole run (default one hour).
	RunTimeout time.Duration
	// Executor gives each job a place to run; nil runs jobs on this
	// machine (HostExecutor).
	Executor Executor
	// Log receives the runner's own messages (a push that starts nothing,
	// a pipeline file that does not load).
	Log io.Writer
	// Ended, when set, hears of every run of a push that ended (after it
	// is stored): the platform's metrics.
	Ended func(*Run)
	// ParallelJobs is how many jobs of one team run at once, across its
	// pipelines' runs (default 2): the jobs of a stage that do not depend
	// on each other run side by side up to it, as Azure runs them up to
	// the parallel jobs an organisation has.
	ParallelJobs int

	mu     sync.Mutex
	intake chan Push
	// wake tells the intake loop that the store's intake has a new entry.
	wake   chan struct{}
	queues map[string]*queue
	// teams holds each team's pushes between the intake and a run: a
	// team's pushes are looked at in order, one at a time, while other
	// teams' go on, so one team's slow checkout or heavy pipeline file
	// holds up no one else.
	teams map[string]*teamIntake
	// taken names the intake entries that have runs (Run.Push), and the
	// pipelines they ran, so an entry told twice runs each once.
	taken   map[string]map[string]bool
	running sync.WaitGroup
	// accepting counts the team goroutines at work.
	accepting sync.WaitGroup
	ctx       context.Context
	// slots holds each team's places for running jobs.
	slots map[string]chan struct{}
}

// teamSlots is a team's places for running jobs.
func (r *Runner) teamSlots(repo string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slots == nil {
		r.slots = map[string]chan struct{}{}
	}
	t := team(repo)
	if r.slots[t] == nil {
		r.slots[t] = make(chan struct{}, cmp.Or(max(r.ParallelJobs, 0), 2))
	}
	return r.slots[t]
}

type teamIntake struct {
	pending []Push
	inStore map[string]bool // IDs pending or being looked at
	busy    bool
}

type queue struct {
	pending []*queued
	busy    bool
}

type queued struct {
	run *Run
	p   *pipeline.Pipeline
	src Source
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

func (r *Runner) init() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.intake == nil {
		r.intake = make(chan Push, 1024)
		r.wake = make(chan struct{}, 1)
		r.queues = map[string]*queue{}
		r.teams = map[string]*teamIntake{}
		r.taken = map[string]map[string]bool{}
	}
}

// OnPush takes a push event; it never blocks the push it came from. The
// push is written to the store's intake (synced) before OnPush returns,
// that is before the git server ends the push's answer: a crash after
// that loses nothing, the runner takes it when it starts again.
func (r *Runner) OnPush(p Push) {
	r.init()
	if err := r.Store.addIntake(p); err != nil {
		r.logf("pipeline runner: keeping %s %s: %v", p.Repo, p.Ref, err)
		select {
		case r.intake <- p:
		default:
			r.logf("pipeline runner: too many pushes waiting; dropped %s %s", p.Repo, p.Ref)
		}
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start marks runs cut short by a crash as failed, then takes pushes
// until ctx ends; runs in progress are then canceled and recorded so.
func (r *Runner) Start(ctx context.Context) error {
	r.init()
	fixed, err := r.Store.Recover()
	if err != nil {
		return err
	}
	for _, run := range fixed {
		r.logf("pipeline run %d (%s) was cut short by a stop or crash: marked failed", run.ID, run.Pipeline)
	}
	r.Store.SweepWorkDir()
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
	// A push whose run was still queued ran nothing: it runs now. (A run
	// cut short mid-way is not run again: its steps may have published.)
	for _, run := range fixed {
		if run.StartedAt.IsZero() && run.Reason == "IndividualCI" {
			r.logf("pipeline run %d (%s): running its push of %.12s again", run.ID, run.Pipeline, run.Commit)
			r.accept(ctx, Push{Repo: run.Repository(), Ref: run.Ref, Before: run.Before, After: run.Commit, Pusher: run.RequestedBy, Pipeline: run.Pipeline})
		}
	}
	// Pushes a crash caught between their intake entry and their run are
	// known by the entry's name on the run.
	if runs, err := r.Store.List(""); err == nil {
		r.mu.Lock()
		for _, run := range runs {
			r.noteTaken(run)
		}
		r.mu.Unlock()
	}
	for {
		r.takeIntake(ctx)
		select {
		case <-ctx.Done():
			r.accepting.Wait()
			r.running.Wait()
			return nil
		case p := <-r.intake:
			r.hand(ctx, p, false)
		case <-r.wake:
		}
	}
}

// takeIntake hands the store's intake entries, in the order they came, to
// their teams.
func (r *Runner) takeIntake(ctx context.Context) {
	entries, err := r.Store.intake()
	if err != nil {
		r.logf("pipeline runner: reading the intake: %v", err)
		return
	}
	for _, e := range entries {
		if e.err != nil {
			r.logf("pipeline runner: intake entry %s cannot be read, removed: %v", e.push.ID, e.err)
			r.Store.removeIntake(e.push.ID)
			continue
		}
		r.hand(ctx, e.push, true)
	}
}

// team is the first segment of a repository name (dev1 of dev1/hello):
// the teams' push prefixes are made of it.
func team(repo string) string {
	t, _, _ := strings.Cut(repo, "/")
	return t
}

// hand puts a push in its team's line; inStore says it has an intake
// entry, removed once the push is looked at.
func (r *Runner) hand(ctx context.Context, p Push, inStore bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ti := r.teams[team(p.Repo)]
	if ti == nil {
		ti = &teamIntake{inStore: map[string]bool{}}
		r.teams[team(p.Repo)] = ti
	}
	if inStore {
		if ti.inStore[p.ID] {
			return // read again before its turn came
		}
		ti.inStore[p.ID] = true
	} else {
		p.ID = ""
	}
	ti.pending = append(ti.pending, p)
	if !ti.busy {
		ti.busy = true
		r.accepting.Add(1)
		go r.acceptTeam(ctx, ti)
	}
}

// acceptTeam looks at a team's pushes until none is left.
func (r *Runner) acceptTeam(ctx context.Context, ti *teamIntake) {
	defer r.accepting.Done()
	for {
		r.mu.Lock()
		if len(ti.pending) == 0 || ctx.Err() != nil {
			ti.busy = false
			r.mu.Unlock()
			return
		}
		p := ti.pending[0]
		ti.pending = ti.pending[1:]
		r.mu.Unlock()
		r.accept(ctx, p)
		// A push looked at while the runner stopped may have been cut
		// short: its entry stays for the next start (its run, if it was
		// made, says so).
		if p.ID != "" && ctx.Err() == nil {
			r.Store.removeIntake(p.ID)
			r.mu.Lock()
			delete(ti.inStore, p.ID)
			r.mu.Unlock()
		}
	}
}

// accept decides which of the repository's pipelines a push starts, and
// queues their runs. Pipelines that have a run of this push already (a
// push told again after a crash) are left out; push.Pipeline, when set,
// names the only one to look at.
func (r *Runner) accept(ctx context.Context, push Push) {
	if push.After == "" || push.After == zeroCommit {
		return // a deleted branch runs nothing
	}
	defs, err := r.Store.definitionsOf(push.Repo)
	if err != nil {
		r.logf("pipeline runner: %v (only %s's own azure-pipelines.yml is looked at)", err, push.Repo)
	}
	repoDir := r.RepoDir(push.Repo)
	src := GitSource{Repo: repoDir, Commit: push.After}
	// The pipeline files are read from a checkout under the store, where
	// a crash's leftovers are swept at the next start.
	if err := os.MkdirAll(r.Store.WorkDir(), 0o700); err != nil {
		r.logf("pipeline runner: %v", err)
		return
	}
	tmp, err := os.MkdirTemp(r.Store.WorkDir(), lookPrefix)
	if err != nil {
		r.logf("pipeline runner: %v", err)
		return
	}
	defer os.RemoveAll(tmp)
	if err := src.Checkout(ctx, tmp); err != nil {
		r.logf("pipeline runner: %s %s: %v", push.Repo, push.Ref, err)
		return
	}
	var changed []string
	if push.Before != "" && push.Before != zeroCommit {
		if out, err := gitcmd.Run(ctx, repoDir, nil, "diff", "--name-only", push.Before, push.After); err == nil {
			changed = strings.Fields(out)
		}
	}
	for _, d := range defs {
		if push.Pipeline != "" && d.Name != push.Pipeline || r.hasRun(push.ID, d.Name) {
			continue
		}
		r.acceptFor(ctx, push, d, tmp, src, changed)
	}
}

// acceptFor starts one pipeline of a push, if its file is in the pushed
// commit and its trigger matches.
func (r *Runner) acceptFor(ctx context.Context, push Push, d Definition, tree string, src Source, changed []string) {
	if _, err := os.Stat(filepath.Join(tree, filepath.FromSlash(d.File))); err != nil {
		if d.Name != push.Repo {
			r.logf("push to %s %s: pipeline %s reads %s, which this commit does not have; it does not run", push.Repo, push.Ref, d.Name, d.File)
		}
		return
	}
	run := &Run{Pipeline: d.Name, Reason: "IndividualCI", Ref: push.Ref, Commit: push.After, Before: push.Before,
		RequestedBy: push.Pusher, File: d.File, Status: Queued, QueuedAt: time.Now().UTC(), Push: push.ID}
	if d.Name != push.Repo {
		run.Repo = push.Repo
	}
	required, err := r.Store.RequiredTemplates(team(push.Repo))
	if err != nil {
		r.logf("pipeline runner: %v", err)
		return // no run without the rule known
	}
	resources := &resourceCheckouts{ctx: ctx, repoDir: r.RepoDir, dir: r.Store.WorkDir()}
	defer resources.cleanup()
	p, err := pipeline.Load(pipeline.Options{Root: tree, File: d.File, Variables: templateVariables(run),
		Repository: resources.checkout, RequireExtends: required})
	if err != nil {
		// The push is recorded as a failed run, so the team sees why
		// nothing ran; no step has run.
		run.Status, run.Error, run.FinishedAt = Failed, "the pipeline file does not load, so nothing ran: "+err.Error(), time.Now().UTC()
		if serr := r.record(run); serr != nil {
			r.logf("pipeline runner: %v", serr)
		}
		r.ended(run)
		r.logf("pipeline run %d (%s): %s", run.ID, run.Pipeline, run.Error)
		return
	}
	if !p.Triggers(push.Ref, changed) {
		r.logf("push to %s %s: the trigger of pipeline %s does not match; it does not run", push.Repo, push.Ref, d.Name)
		return
	}
	if err := r.record(run); err != nil {
		r.logf("pipeline runner: %v", err)
		return
	}
	r.enqueue(&queued{run: run, p: p, src: src}, p.Trigger != nil && p.Trigger.Batch)
}

// resourceCheckouts checks out the repository resources a pipeline
// declares (templates of another repository), from the platform's bare
// repositories, into directories under dir; cleanup removes them once the
// pipeline is loaded.
type resourceCheckouts struct {
	ctx     context.Context
	repoDir func(repo string) string
	dir     string
	made    []string
}

func (c *resourceCheckouts) checkout(name, ref string) (string, error) {
	if c.repoDir == nil {
		return "", errors.New("repository resources come from the platform's git server, which is not known here")
	}
	bare := c.repoDir(name)
	if _, err := os.Stat(bare); err != nil {
		return "", fmt.Errorf("no repository %s on the platform's git server", name)
	}
	commit, err := gitcmd.Run(c.ctx, bare, nil, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("%s has no %s", name, ref)
	}
	dir, err := os.MkdirTemp(c.dir, lookPrefix)
	if err != nil {
		return "", err
	}
	c.made = append(c.made, dir)
	return dir, GitSource{Repo: bare, Commit: strings.TrimSpace(commit)}.Checkout(c.ctx, dir)
}

func (c *resourceCheckouts) cleanup() {
	for _, dir := range c.made {
		os.RemoveAll(dir)
	}
}

// hasRun says whether a pipeline has a run of the push with this intake
// entry.
func (r *Runner) hasRun(pushID, pipelineName string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return pushID != "" && r.taken[pushID][pipelineName]
}

// record stores a push's new run and notes its intake entry as taken.
func (r *Runner) record(run *Run) error {
	if err := r.Store.New(run); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.noteTaken(run)
	return nil
}

// noteTaken notes that a run's pipeline has a run of its push (r.mu held).
func (r *Runner) noteTaken(run *Run) {
	if run.Push == "" {
		return
	}
	if r.taken[run.Push] == nil {
		r.taken[run.Push] = map[string]bool{}
	}
	r.taken[run.Push][run.Pipeline] = true
}

func templateVariables(run *Run) map[string]string {
	branch := run.Ref[strings.LastIndex(run.Ref, "/")+1:]
	return map[string]string{
		"Build.SourceBranch": run.Ref, "Build.SourceBranchName": branch, "Build.Reason": run.Reason,
		"Build.Repository.Name": run.Repository(), "Build.DefinitionName": run.Pipeline, "Build.SourceVersion": run.Commit,
	}
}

// enqueue adds a run behind the pipeline's others. With batch, runs still
// waiting are folded into the newest one.
func (r *Runner) enqueue(q *queued, batch bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	qu := r.queues[q.run.Pipeline]
	if qu == nil {
		qu = &queue{}
		r.queues[q.run.Pipeline] = qu
	}
	if batch && len(qu.pending) > 0 {
		for _, old := range qu.pending {
			old.run.Status, old.run.Error, old.run.FinishedAt = Skipped, fmt.Sprintf("batched: run %d builds these changes", q.run.ID), time.Now().UTC()
			_ = r.Store.Save(old.run)
			q.run.Before = cmp.Or(q.run.Before, old.run.Before)
		}
		q.run.Reason = "BatchedCI"
		_ = r.Store.Save(q.run)
		qu.pending = nil
	}
	qu.pending = append(qu.pending, q)
	if !qu.busy {
		qu.busy = true
		r.running.Add(1)
		go r.work(q.run.Pipeline, qu)
	}
}

// work runs a pipeline's queue until it is empty.
func (r *Runner) work(name string, qu *queue) {
	defer r.running.Done()
	for {
		r.mu.Lock()
		if len(qu.pending) == 0 {
			qu.busy = false
			r.mu.Unlock()
			return
		}
		next := qu.pending[0]
		qu.pending = qu.pending[1:]
		ctx := r.ctx
		r.mu.Unlock()
		if ctx == nil {
			ctx = context.Background()
		}
		if err := r.execute(ctx, next.run, next.p, next.src, nil); err != nil {
			r.logf("pipeline run %d (%s): %v", next.run.ID, name, err)
		}
		r.ended(next.run)
	}
}

// ended tells Ended of a run that is over; a run still going (the runner
// stopping under it) is not.
func (r *Runner) ended(run *Run) {
	if r.Ended != nil && !run.FinishedAt.IsZero() {
		r.Ended(run)
	}
}

// RunNow runs a pipeline at once, in this process, from a working tree
// (`slipway pipeline run`); it waits for a run of the same pipeline in
// progress elsewhere to finish first. live receives the log as it comes.
func (r *Runner) RunNow(ctx context.Context, run *Run, p *pipeline.Pipeline, src Source, live io.Writer) error {
	run.Status, run.QueuedAt = Queued, time.Now().UTC()
	if run.Reason == "" {
		run.Reason = "Manual"
	}
	if err := r.Store.New(run); err != nil {
		return err
	}
	return r.execute(ctx, run, p, src, live)
}

// execute runs one run while holding its pipeline's lock, so two
// processes never run the same pipeline at once.
func (r *Runner) execute(ctx context.Context, run *Run, p *pipeline.Pipeline, src Source, live io.Writer) error {
	lockName := strings.ReplaceAll(run.Pipeline, "/", "_") + ".lock"
	unlock, ok, err := r.Store.tryLock(lockName)
	if err != nil {
		return err
	}
	if !ok {
		if live != nil {
			fmt.Fprintf(live, "waiting for the run of %s in progress to finish\n", run.Pipeline)
		}
		if unlock, err = r.Store.lock(lockName); err != nil {
			return err
		}
	}
	defer unlock()
	if r.Store.CancelRequested(run.ID) {
		run.Status, run.FinishedAt = Canceled, time.Now().UTC()
		return r.Store.Save(run)
	}
	in := Inputs{Env: os.Environ()}
	if r.Inputs != nil {
		if in, err = r.Inputs(run.Pipeline); err != nil {
			run.Status, run.Error, run.FinishedAt = Failed, "preparing the run: "+err.Error(), time.Now().UTC()
			return r.Store.Save(run)
		}
	}
	sec := &secrets{}
	for _, v := range in.Secrets {
		sec.add(v)
	}
	executor := r.Executor
	if executor == nil {
		executor = HostExecutor{Dir: r.Store.WorkDir()}
	}
	timeout := r.RunTimeout
	if timeout <= 0 {
		timeout = time.Hour
	}
	canceled, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	runCtx, cancel := context.WithTimeout(canceled, timeout)
	defer cancel()
	// A cancel is asked for through the store, from any process.
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if r.Store.CancelRequested(run.ID) {
					cancelRun(errCanceledByUser)
					return
				}
			}
		}
	}()
	if live != nil {
		live = &syncio.Writer{W: live} // jobs running side by side write to it
	}
	x := &execution{store: r.Store, run: run, p: p, src: src, in: in, secrets: sec, executor: executor, live: live,
		lock: &sync.Mutex{}, slots: r.teamSlots(run.Pipeline), parent: ctx, counters: map[string]int{}}
	x.execute(runCtx)
	if ctx.Err() != nil && run.Status == Canceled && run.Error == "" {
		run.Error = "the runner stopped while this run was in progress"
		_ = r.Store.Save(run)
	}
	if run.Status == Failed && run.Error == "" {
		return nil
	}
	if errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		return errors.New(run.Error)
	}
	return nil
}
