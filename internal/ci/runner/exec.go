package runner

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/expr"
	"github.com/slipway-dev/slipway/internal/ci/pipeline"
	"github.com/slipway-dev/slipway/internal/procfs"
)

// Job inputs the runner adds to every run.
type Inputs struct {
	// Env is the environment steps start from (PATH, HOME, ...).
	Env []string
	// Variables are extra variables (exported to steps like any other).
	Variables map[string]string
	// Secrets are secret variables: readable as $(name) and mappable in
	// env:, never exported on their own, and masked in every log.
	Secrets map[string]string
}

// execution is one run being carried out.
type execution struct {
	store   *Store
	run     *Run
	p       *pipeline.Pipeline
	src     Source
	in      Inputs
	secrets *secrets
	// executor starts each job's workspace: here or in a pod.
	executor Executor
	// live, when set, also receives every log line as it is written.
	live io.Writer
	// slots holds a place for each job running, for the jobs of a team
	// at once (see Runner.ParallelJobs).
	slots chan struct{}
	// lock guards the run's record. The jobs of a stage run at once,
	// each on its own copy of the execution (forJob): job, startLog and
	// jr below are that job's.
	lock *sync.Mutex
	// job is the job's place to run; startLog is what starting it said,
	// not yet in a step's log.
	job      JobHost
	startLog string
	// jr is the job's result, kept apart from the run's record while the
	// job changes it; save copies it in. si and ji place it.
	jr     *JobResult
	si, ji int
	// parent is the runner's context, outside the run's own: what runs
	// after a cancel (always() steps and jobs) stops with the runner.
	parent context.Context
	// counters are the numbers counter() gave this run, by prefix
	// (shared by the jobs' copies: a map, guarded by lock).
	counters map[string]int
}

// counter is counter(prefix, seed) for this run: the pipeline's next
// number for prefix, taken once per run (a second use in the same run
// gives the same number).
func (x *execution) counter(prefix string, seed int) (int, error) {
	x.lock.Lock()
	defer x.lock.Unlock()
	if n, ok := x.counters[prefix]; ok {
		return n, nil
	}
	n, err := x.store.nextCounter(x.run.Pipeline, prefix, seed)
	if err != nil {
		return 0, err
	}
	x.counters[prefix] = n
	return n, nil
}

// errCanceledByUser is the cause of a run's context when someone canceled
// the run (as opposed to its time limit or the runner stopping).
var errCanceledByUser = errors.New("the run was canceled")

// defaultCancelTimeout is how long always() and canceled() work may run
// after a cancel, as Azure's cancelTimeoutInMinutes defaults to.
const defaultCancelTimeout = 5 * time.Minute

// afterCancel gives the context always() and canceled() work runs in once
// ctx has ended: when a person canceled the run, or a job ran out of its
// time (jobTimedOut), Azure still runs them, for a while. A run over its
// own time limit or a runner that stops runs nothing more.
func (x *execution) afterCancel(ctx context.Context, jobTimedOut bool, minutes int) (context.Context, context.CancelFunc, bool) {
	if !errors.Is(context.Cause(ctx), errCanceledByUser) && !(jobTimedOut && ctx.Err() == nil) {
		return nil, func() {}, false
	}
	parent := cmp.Or[context.Context](x.parent, context.Background())
	if jobTimedOut && ctx.Err() == nil {
		parent = ctx
	}
	limit := time.Duration(minutes) * time.Minute
	if limit <= 0 {
		limit = defaultCancelTimeout
	}
	c, cancel := context.WithTimeout(parent, limit)
	return c, cancel, true
}

// forJob is the execution of one job: its own copy of the job's result.
func (x *execution) forJob(si, ji int) *execution {
	x.lock.Lock()
	defer x.lock.Unlock()
	jx := *x
	jr := x.run.Stages[si].Jobs[ji].clone()
	jx.jr, jx.si, jx.ji, jx.job, jx.startLog = &jr, si, ji, nil, ""
	return &jx
}

// clone copies a job's result, steps and issues included.
func (jr JobResult) clone() JobResult {
	jr.Steps = append([]StepResult(nil), jr.Steps...)
	for i := range jr.Steps {
		jr.Steps[i].Issues = append([]Issue(nil), jr.Steps[i].Issues...)
		jr.Steps[i].Outputs = maps.Clone(jr.Steps[i].Outputs)
	}
	return jr
}

// variable is a variable in effect; secret ones are never exported. One
// defined in the pipeline file keeps its value as written (template):
// its $( ) macros are expanded by vars.resolve.
type variable struct {
	name, value string
	secret      bool
	template    string
	defined     bool
}

type vars map[string]variable

func (v vars) set(name, value string, secret bool) {
	v[strings.ToLower(name)] = variable{name: name, value: value, secret: secret}
}

// define sets a variable of the pipeline file, whose value may name
// other variables; call resolve once a block of them is defined.
func (v vars) define(name, value string) {
	v[strings.ToLower(name)] = variable{name: name, value: value, template: value, defined: true}
}

// maxVariableBytes bounds a variable's value once its macros are
// expanded (values that name each other twice over double at each step).
const maxVariableBytes = 1 << 20

// resolve expands the $( ) macros in the values of the pipeline file's
// variables, as Azure Pipelines does before a step sees them: a value may
// name a variable defined after it, in an outer block, or a predefined
// one; a name no variable has stays as written; a value whose expansion
// comes back to itself (a names b, b names a) keeps its value as written.
// A value that takes in a secret becomes secret itself: it is masked and
// not exported to the environment. Values set at run time (task.setvariable)
// are data and are never expanded.
func (v vars) resolve() {
	type result struct {
		value          string
		secret, cyclic bool
	}
	done := map[string]result{}
	var deep func(key string, visiting map[string]bool) result
	deep = func(key string, visiting map[string]bool) result {
		if r, ok := done[key]; ok {
			return r
		}
		x := v[key]
		if !x.defined {
			return result{value: x.value, secret: x.secret}
		}
		visiting[key] = true
		defer delete(visiting, key)
		res := result{secret: x.secret}
		size := len(x.template)
		res.value = macroRe.ReplaceAllStringFunc(x.template, func(m string) string {
			name := strings.ToLower(m[2 : len(m)-1])
			if _, ok := v[name]; !ok {
				return m
			}
			if visiting[name] {
				res.cyclic = true
				return m
			}
			sub := deep(name, visiting)
			if size+len(sub.value) > maxVariableBytes {
				return m
			}
			size += len(sub.value)
			res.cyclic = res.cyclic || sub.cyclic
			res.secret = res.secret || sub.secret
			return sub.value
		})
		if !res.cyclic {
			done[key] = res
		}
		return res
	}
	for key, x := range v {
		if !x.defined {
			continue
		}
		r := deep(key, map[string]bool{})
		if r.cyclic {
			r = result{value: x.template, secret: x.secret}
		}
		x.value, x.secret = r.value, r.secret
		v[key] = x
	}
}

func (v vars) get(name string) (string, bool) {
	x, ok := v[strings.ToLower(name)]
	return x.value, ok
}

func (v vars) clone() vars {
	out := make(vars, len(v))
	for k, x := range v {
		out[k] = x
	}
	return out
}

func (v vars) values() map[string]any {
	out := make(map[string]any, len(v))
	for _, x := range v {
		out[x.name] = x.value
	}
	return out
}

// artifactNameRe is what an artifact may be called: one folder name.
var artifactNameRe = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)

var macroRe = regexp.MustCompile(`\$\(([A-Za-z0-9_.\-]+)\)`)

// expand replaces $(name) macros; unknown names stay as written, as in
// Azure DevOps.
func (v vars) expand(s string) string {
	return macroRe.ReplaceAllStringFunc(s, func(m string) string {
		if val, ok := v.get(m[2 : len(m)-1]); ok {
			return val
		}
		return m
	})
}

// defineAll defines a block of the pipeline file's variables and
// resolves them. A runtime expression $[ ] is evaluated now, against the
// variables and the outputs of the jobs and stages before; anything else
// is a value whose $( ) macros resolve expands.
func (v vars) defineAll(block []pipeline.Variable, extra map[string]any, counter func(string, int) (int, error)) error {
	for _, pv := range block {
		m := pipeline.RuntimeExpr.FindStringSubmatch(pv.Value)
		if m == nil {
			v.define(pv.Name, pv.Value)
			continue
		}
		val, err := runtimeValue(v, m[1], extra, counter)
		if err != nil {
			v.resolve()
			return fmt.Errorf("variable %s: %w", pv.Name, err)
		}
		v.set(pv.Name, val, false)
	}
	v.resolve()
	return nil
}

// runtimeValue evaluates a runtime expression $[ ].
func runtimeValue(v vars, src string, extra map[string]any, counter func(string, int) (int, error)) (string, error) {
	values := map[string]any{"variables": v.values()}
	for k, x := range extra {
		values[k] = x
	}
	out, err := expr.Eval(strings.TrimSpace(src), &expr.Context{Values: values, Counter: counter})
	if err != nil {
		return "", err
	}
	return expr.String(out), nil
}

// envName is the environment name of a variable: upper case, with . and
// spaces as _.
func envName(name string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", " ", "_").Replace(name))
}

// azureStatus is how conditions spell a status.
func azureStatus(s string) string {
	switch s {
	case Succeeded:
		return "Succeeded"
	case SucceededWithIssues:
		return "SucceededWithIssues"
	case Canceled:
		return "Canceled"
	case Skipped:
		return "Skipped"
	}
	return "Failed"
}

// combine folds statuses: any failure fails, any cancel cancels, issues
// survive, skipped counts as nothing.
func combine(statuses ...string) string {
	out := Succeeded
	for _, s := range statuses {
		switch s {
		case Canceled:
			return Canceled
		case Failed:
			out = Failed
		case SucceededWithIssues:
			if out == Succeeded {
				out = SucceededWithIssues
			}
		}
	}
	return out
}

// execute runs every stage; ctx ends the run (cancel or timeout).
func (x *execution) execute(ctx context.Context) {
	r := x.run
	r.Status, r.StartedAt, r.PID, r.PIDStart = Running, time.Now().UTC(), os.Getpid(), procfs.StartTime(os.Getpid())
	// Lay out every stage, job and step first, so the record shows what
	// is still to come.
	stages, _ := x.p.OrderStages()
	for _, s := range stages {
		sr := StageResult{Name: s.Name, DisplayName: s.DisplayName, Status: NotStarted}
		jobs, _ := pipeline.OrderJobs(s.Jobs)
		for _, j := range jobs {
			jr := JobResult{Name: j.Name, DisplayName: j.DisplayName, Status: NotStarted}
			for _, st := range stepsWithCheckout(j) {
				jr.Steps = append(jr.Steps, StepResult{Name: st.Name, DisplayName: stepTitle(st), Status: NotStarted, Where: st.Pos.String()})
			}
			sr.Jobs = append(sr.Jobs, jr)
		}
		r.Stages = append(r.Stages, sr)
	}
	x.save()

	base := x.baseVars()
	stageStatus := map[string]string{}
	// stageDeps is what runtime expressions read as stageDependencies:
	// stage -> job -> {result, outputs}.
	stageDeps := map[string]any{}
	for si, s := range stages {
		sr := &r.Stages[si]
		var deps []string
		for _, d := range x.p.StageDeps(s) {
			deps = append(deps, stageStatus[d])
		}
		depStatus := combine(deps...)
		if ctx.Err() != nil {
			depStatus = Canceled
		}
		cond := s.Condition
		if cond == "" {
			cond = "succeeded()"
		}
		sv := base.clone()
		if err := sv.defineAll(s.Variables, map[string]any{"stageDependencies": stageDeps}, x.counter); err != nil {
			r.Error = fmt.Sprintf("stage %s: %v", s.Name, err)
		}
		sv.set("System.StageName", s.Name, false)
		sv.set("System.StageDisplayName", cmp.Or(s.DisplayName, s.Name), false)
		ok, err := expr.EvalBool(cond, &expr.Context{Status: azureStatus(depStatus), Values: map[string]any{"variables": sv.values()}})
		stageCtx, stopGrace := ctx, context.CancelFunc(func() {})
		if err == nil && ok && ctx.Err() != nil {
			// Canceled, and the stage's condition holds then.
			stageCtx, stopGrace, ok = x.afterCancel(ctx, false, 0)
		}
		if err != nil || !ok {
			sr.Status = Skipped
			if err != nil {
				sr.Status = Failed
				r.Error = fmt.Sprintf("stage %s: condition: %v", s.Name, err)
			}
			for ji := range sr.Jobs {
				skipJob(&sr.Jobs[ji])
			}
			stageStatus[s.Name] = sr.Status
			x.save()
			continue
		}
		x.update(func() { sr.Status = Running })
		jobStatus, outputs, all := x.runJobs(stageCtx, s, si, sv, stageDeps)
		stopGrace()
		jobsOut := map[string]any{}
		for name, st := range jobStatus {
			jobsOut[name] = map[string]any{"result": azureStatus(st), "outputs": outputs[name]}
		}
		stageDeps[s.Name] = jobsOut
		x.update(func() {
			sr.Status = combine(all...)
			if len(all) > 0 && allSkipped(all) {
				sr.Status = Skipped
			}
		})
		stageStatus[s.Name] = sr.Status
	}
	var results []string
	for _, s := range r.Stages {
		results = append(results, s.Status)
	}
	r.Status = combine(results...)
	if r.Error != "" && r.Status != Canceled {
		r.Status = Failed
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.Status, r.Error = Failed, "the run took longer than its time limit and was stopped"
	} else if ctx.Err() != nil {
		r.Status = Canceled
	}
	r.FinishedAt = time.Now().UTC()
	x.save()
}

// runJobs runs a stage's jobs, each as soon as the jobs it depends on are
// done and the team has a free place; it returns every job's status and
// outputs, and all the statuses.
func (x *execution) runJobs(ctx context.Context, s *pipeline.Stage, si int, sv vars, stageDeps map[string]any) (map[string]string, map[string]map[string]any, []string) {
	jobs, _ := pipeline.OrderJobs(s.Jobs)
	jobStatus := map[string]string{}
	outputs := map[string]map[string]any{}
	var all []string
	type finished struct {
		name, status string
		out          map[string]any
	}
	done := make(chan finished)
	started := make([]bool, len(jobs))
	running := 0
	for {
		// Start (or skip) every job whose dependencies are done; a
		// skipped job may free the ones after it, so look again.
		for again := true; again; {
			again = false
			for ji, j := range jobs {
				if started[ji] || !allDone(j.DependsOn, jobStatus) {
					continue
				}
				started[ji], again = true, true
				var jdeps []string
				deps := map[string]any{}
				for _, d := range j.DependsOn {
					jdeps = append(jdeps, jobStatus[d])
					deps[d] = map[string]any{"result": azureStatus(jobStatus[d]), "outputs": outputs[d]}
				}
				jst := combine(jdeps...)
				if ctx.Err() != nil {
					jst = Canceled
				}
				jcond := cmp.Or(j.Condition, "succeeded()")
				ok, err := expr.EvalBool(jcond, &expr.Context{Status: azureStatus(jst), Values: map[string]any{"variables": sv.values(), "dependencies": deps}})
				jobCtx, stopGrace := ctx, context.CancelFunc(func() {})
				if err == nil && ok && ctx.Err() != nil {
					// Canceled, and the job's condition holds then.
					jobCtx, stopGrace, ok = x.afterCancel(ctx, false, j.CancelTimeoutInMinutes)
				}
				if err != nil || !ok {
					jr := &x.run.Stages[si].Jobs[ji]
					x.update(func() {
						skipJob(jr)
						if err != nil {
							jr.Status = Failed
							x.run.Error = fmt.Sprintf("job %s: condition: %v", j.Name, err)
						}
					})
					jobStatus[j.Name] = jr.Status
					all = append(all, jr.Status)
					continue
				}
				running++
				jx := x.forJob(si, ji)
				jobDeps := map[string]any{"dependencies": deps, "stageDependencies": stageDeps}
				go func() {
					defer stopGrace()
					status, out := Canceled, map[string]any(nil)
					if jx.takeSlot(jobCtx) {
						status, out = jx.runJob(jobCtx, s, j, jx.jr, sv, si, ji, jobDeps)
						jx.giveSlot()
					} else {
						jx.update(func() { skipJob(jx.jr); jx.jr.Status = Canceled })
					}
					done <- finished{j.Name, status, out}
				}()
			}
		}
		if running == 0 {
			return jobStatus, outputs, all
		}
		f := <-done
		running--
		jobStatus[f.name], outputs[f.name] = f.status, f.out
		all = append(all, f.status)
	}
}

// allDone says whether every named job has a status.
func allDone(names []string, status map[string]string) bool {
	for _, n := range names {
		if _, ok := status[n]; !ok {
			return false
		}
	}
	return true
}

func allSkipped(statuses []string) bool {
	for _, s := range statuses {
		if s != Skipped {
			return false
		}
	}
	return true
}

func skipJob(jr *JobResult) {
	jr.Status = Skipped
	for i := range jr.Steps {
		jr.Steps[i].Status = Skipped
	}
}

// save writes the run's record (with this job's result, on a job's
// execution).
func (x *execution) save() { x.update(func() {}) }

// update changes the run's record under its lock, then saves it.
func (x *execution) update(change func()) {
	x.lock.Lock()
	defer x.lock.Unlock()
	change()
	if x.jr != nil {
		x.run.Stages[x.si].Jobs[x.ji] = x.jr.clone()
	}
	_ = x.store.Save(x.run)
}

// fail records why the run failed.
func (x *execution) fail(format string, args ...any) {
	x.update(func() { x.run.Error = fmt.Sprintf(format, args...) })
}

// takeSlot waits for a place among the team's running jobs; false when
// the run ended first.
func (x *execution) takeSlot(ctx context.Context) bool {
	if x.slots == nil {
		return true
	}
	select {
	case x.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (x *execution) giveSlot() {
	if x.slots != nil {
		<-x.slots
	}
}

// stepsWithCheckout adds the implicit checkout Azure runs first in every
// job that does not say checkout: itself.
func stepsWithCheckout(j *pipeline.Job) []*pipeline.Step {
	for _, s := range j.Steps {
		if s.Kind == pipeline.KindCheckout {
			return j.Steps
		}
	}
	return append([]*pipeline.Step{{Kind: pipeline.KindCheckout, Checkout: "self", Enabled: true, Pos: j.Pos}}, j.Steps...)
}

func stepTitle(s *pipeline.Step) string {
	if s.DisplayName != "" {
		return s.DisplayName
	}
	switch s.Kind {
	case pipeline.KindCheckout:
		return "Checkout " + s.Checkout
	case pipeline.KindPublish:
		return "Publish " + s.Publish
	case pipeline.KindScript, pipeline.KindBash:
		if s.File != "" {
			return s.Task + " " + s.File
		}
		first, _, _ := strings.Cut(strings.TrimSpace(s.Script), "\n")
		if len(first) > 60 {
			first = first[:57] + "..."
		}
		if s.Task != "" {
			return s.Task + ": " + first
		}
		return s.Kind + ": " + first
	}
	return s.Task
}

// baseVars are the predefined variables, the pipeline's, and the
// runner's own (secrets included).
func (x *execution) baseVars() vars {
	r := x.run
	v := vars{}
	branch := r.Ref
	if i := strings.LastIndex(branch, "/"); i >= 0 {
		branch = branch[i+1:]
	}
	for k, val := range map[string]string{
		"Build.BuildId":             strconv.Itoa(r.ID),
		"Build.BuildNumber":         r.Number,
		"Build.SourceVersion":       r.Commit,
		"Build.SourceBranch":        r.Ref,
		"Build.SourceBranchName":    branch,
		"Build.Repository.Name":     r.Repository(),
		"Build.DefinitionName":      r.Pipeline,
		"Build.Reason":              r.Reason,
		"Build.RequestedFor":        r.RequestedBy,
		"System.TeamProject":        "slipway",
		"System.PipelineName":       r.Pipeline,
		"System.Debug":              "false",
		"Agent.OS":                  "Linux",
		"Agent.Name":                "slipway",
		"System.HostType":           "build",
		"Build.Repository.Provider": "Git",
	} {
		v.set(k, val, false)
	}
	for k, val := range x.in.Variables {
		v.set(k, val, false)
	}
	// The platform's secrets win over a pipeline variable of the same
	// name: they are set before and after.
	for k, val := range x.in.Secrets {
		v.set(k, val, true)
	}
	if err := v.defineAll(x.p.Variables, nil, x.counter); err != nil {
		x.run.Error = err.Error()
	}
	for k, val := range x.in.Secrets {
		v.set(k, val, true)
	}
	v.resolve()
	return v
}

// runJob runs one job in a fresh workspace and returns its status and the
// output variables its steps set (step.name -> value).
func (x *execution) runJob(ctx context.Context, s *pipeline.Stage, j *pipeline.Job, jr *JobResult, stageVars vars, si, ji int, deps map[string]any) (string, map[string]any) {
	jr.Status, jr.StartedAt = Running, time.Now().UTC()
	x.save()
	v := stageVars.clone()
	if err := v.defineAll(j.Variables, deps, x.counter); err != nil {
		jr.Status, jr.FinishedAt = Failed, time.Now().UTC()
		x.fail("job %s: %v", j.Name, err)
		for i := range jr.Steps {
			jr.Steps[i].Status = Skipped
		}
		x.save()
		return Failed, nil
	}
	jobCtx, cancel := context.WithTimeout(ctx, time.Duration(j.TimeoutInMinutes)*time.Minute)
	if j.TimeoutInMinutes == 0 {
		jobCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	// The job's place to run: starting it (a pod, an image to pull) is
	// part of the job and counts against its time limit.
	var startLog bytes.Buffer
	host, err := x.executor.StartJob(jobCtx, JobSpec{Run: x.run, Stage: si, Job: ji, Image: v.expand(j.Container), Log: &startLog})
	if err != nil {
		jr.Status, jr.FinishedAt = Failed, time.Now().UTC()
		if ctx.Err() != nil {
			jr.Status = Canceled
		}
		x.fail("job %s could not start: %v", j.Name, x.secrets.Mask(err.Error()))
		for i := range jr.Steps {
			jr.Steps[i].Status = Skipped
		}
		x.save()
		return jr.Status, nil
	}
	defer host.Close()
	x.job, x.startLog = host, startLog.String()
	ws := host.Workspace()
	for k, val := range map[string]string{
		"Agent.WorkFolder":               ws,
		"Agent.ToolsDirectory":           filepath.Join(ws, "_tool"),
		"Build.SourcesDirectory":         filepath.Join(ws, "s"),
		"Build.Repository.LocalPath":     filepath.Join(ws, "s"),
		"System.DefaultWorkingDirectory": filepath.Join(ws, "s"),
		"Build.ArtifactStagingDirectory": filepath.Join(ws, "a"),
		"Build.StagingDirectory":         filepath.Join(ws, "a"),
		"Build.BinariesDirectory":        filepath.Join(ws, "b"),
		"Pipeline.Workspace":             ws,
		"Agent.BuildDirectory":           ws,
		"Agent.TempDirectory":            filepath.Join(ws, "tmp"),
		"System.JobName":                 j.Name,
		"System.JobDisplayName":          cmp.Or(j.DisplayName, j.Name),
		"Agent.JobName":                  cmp.Or(j.DisplayName, j.Name),
	} {
		v.set(k, val, false)
	}
	outputs := map[string]any{}
	status := Succeeded
	extraPath := []string{}
	for i, st := range stepsWithCheckout(j) {
		sr := &jr.Steps[i]
		jobStatus := status
		if jobCtx.Err() != nil {
			jobStatus = Canceled
		}
		v.set("Agent.JobStatus", azureStatus(jobStatus), false)
		cond := st.Condition
		if cond == "" {
			cond = "succeeded()"
		}
		ok, err := expr.EvalBool(cond, &expr.Context{Status: azureStatus(jobStatus), Values: map[string]any{"variables": v.values()}})
		if err != nil {
			sr.Status = Failed
			sr.Issues = append(sr.Issues, Issue{"error", "condition: " + err.Error()})
			status = Failed
			x.save()
			continue
		}
		if !ok || !st.Enabled {
			sr.Status = Skipped
			x.save()
			continue
		}
		stepCtx := jobCtx
		if jobCtx.Err() != nil {
			// The job was canceled or timed out and the step's condition
			// holds then (always(), canceled()): it runs, for a while.
			timedOut := errors.Is(jobCtx.Err(), context.DeadlineExceeded)
			grace, stop, ok := x.afterCancel(ctx, timedOut, j.CancelTimeoutInMinutes)
			if !ok {
				sr.Status = Skipped
				x.save()
				continue
			}
			defer stop()
			stepCtx = grace
		}
		res := x.runStep(stepCtx, st, sr, v, ws, si, ji, i, outputs, &extraPath)
		if res == Failed && st.ContinueOnError {
			res = SucceededWithIssues
		}
		sr.Status = res
		status = combine(status, res)
		x.save()
	}
	if jobCtx.Err() != nil && ctx.Err() == nil && errors.Is(jobCtx.Err(), context.DeadlineExceeded) {
		status = Failed
		x.fail("job %s took longer than timeoutInMinutes (%d) and was stopped", j.Name, j.TimeoutInMinutes)
	} else if ctx.Err() != nil && status != Failed {
		status = Canceled
	}
	if status == Failed && j.ContinueOnError {
		status = SucceededWithIssues
	}
	jr.Status, jr.FinishedAt = status, time.Now().UTC()
	x.save()
	return status, outputs
}

// runStep runs one step and returns its status.
func (x *execution) runStep(ctx context.Context, st *pipeline.Step, sr *StepResult, v vars, ws string, si, ji, i int, outputs map[string]any, extraPath *[]string) string {
	sr.Status, sr.StartedAt = Running, time.Now().UTC()
	sr.DisplayName = x.secrets.Mask(v.expand(sr.DisplayName))
	// Whatever a step's issues say (its own, publish's, the runner's) is
	// stored in run.json and shown: masked, every one.
	defer func() {
		for i := range sr.Issues {
			sr.Issues[i].Message = x.secrets.Mask(sr.Issues[i].Message)
		}
	}()
	sr.Log = filepath.Join("logs", fmt.Sprintf("%d-%d-%02d.log", si, ji, i))
	x.save()
	defer func() { sr.FinishedAt = time.Now().UTC() }()
	logPath := filepath.Join(x.store.RunDir(x.run.ID), sr.Log)
	_ = os.MkdirAll(filepath.Dir(logPath), 0o755)
	f, err := os.Create(logPath)
	if err != nil {
		sr.Issues = append(sr.Issues, Issue{"error", err.Error()})
		return Failed
	}
	defer f.Close()
	var logw io.Writer = f
	if x.live != nil {
		logw = io.MultiWriter(f, x.live)
		fmt.Fprintf(x.live, "\n==> %s\n", sr.DisplayName)
	}
	completed := ""
	out := &output{log: logw, secrets: x.secrets, onCommand: func(c command) {
		switch c.name {
		case "task.setvariable":
			name := c.props["variable"]
			if name == "" {
				return
			}
			secret := strings.EqualFold(c.props["issecret"], "true")
			if secret {
				x.secrets.add(c.message)
			}
			v.set(name, c.message, secret)
			if st.Name != "" && strings.EqualFold(c.props["isoutput"], "true") {
				v.set(st.Name+"."+name, c.message, secret)
				outputs[st.Name+"."+name] = c.message
				if !secret {
					kept := x.secrets.Mask(c.message)
					if len(kept) > MaxOutputValue {
						kept = kept[:MaxOutputValue]
					}
					x.update(func() {
						if sr.Outputs == nil {
							sr.Outputs = map[string]string{}
						}
						sr.Outputs[name] = kept
					})
				}
			}
		case "task.logissue":
			sr.Issues = append(sr.Issues, Issue{Type: cmp.Or(c.props["type"], "error"), Message: x.secrets.Mask(c.message)})
		case "task.complete":
			completed = c.props["result"]
		case "task.prependpath":
			*extraPath = append([]string{c.message}, *extraPath...)
		case "build.updatebuildnumber":
			x.update(func() { x.run.Number = x.secrets.Mask(c.message) })
		}
	}}
	if x.startLog != "" {
		// What starting the job said goes at the top of its first step.
		out.note(strings.TrimRight(x.startLog, "\n"))
		x.startLog = ""
	}

	timeout := time.Duration(st.TimeoutInMinutes) * time.Minute
	stepCtx, cancel := context.WithCancel(ctx)
	if timeout > 0 {
		stepCtx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()

	status := Succeeded
	switch st.Kind {
	case pipeline.KindCheckout:
		status = x.checkout(stepCtx, st, out, filepath.Join(ws, "s"))
	case pipeline.KindPublish:
		src := v.expand(st.Publish)
		if !filepath.IsAbs(src) {
			src = filepath.Join(ws, "s", src)
		}
		name := cmp.Or(v.expand(st.Artifact), "drop")
		dst := filepath.Join(x.store.RunDir(x.run.ID), "artifacts", name)
		if !artifactNameRe.MatchString(name) {
			msg := fmt.Sprintf("artifact name %q: use letters, digits, '.', '_' and '-' (it names a folder of the run)", name)
			out.note("##[error]" + msg)
			sr.Issues = append(sr.Issues, Issue{"error", msg})
			status = Failed
		} else if err := x.job.Fetch(stepCtx, src, dst); err != nil {
			out.note("##[error]publishing " + src + ": " + err.Error())
			sr.Issues = append(sr.Issues, Issue{"error", "publishing " + src + ": " + err.Error()})
			status = Failed
		} else {
			out.note("published " + src + " as artifact " + name)
		}
	case pipeline.KindNoop:
		out.note(st.Task + ": " + st.Message)
	case pipeline.KindGoTool:
		var have bytes.Buffer
		var code int
		var err error
		if k, ok := x.job.(GoVersionKnower); ok && k.GoVersion() != "" {
			have.WriteString(k.GoVersion())
		} else {
			code, err = x.job.Run(stepCtx, Command{Script: "go env GOVERSION", Dir: filepath.Join(ws, "s"), Env: x.environment(st, v, *extraPath), Stdout: &have, Stderr: io.Discard})
		}
		got := strings.TrimSpace(have.String())
		switch {
		case err != nil || code != 0:
			out.note("##[error]GoTool@0: no Go toolchain on this machine")
			status = Failed
		case st.Version != "" && !strings.HasPrefix(strings.TrimPrefix(got, "go"), st.Version):
			msg := fmt.Sprintf("GoTool@0 asks for Go %s; this machine has %s (the runner does not download Go)", st.Version, got)
			out.note("##[warning]" + msg)
			sr.Issues = append(sr.Issues, Issue{"warning", msg})
			status = SucceededWithIssues
		default:
			out.note("GoTool@0: using " + got)
		}
	case pipeline.KindScript, pipeline.KindBash:
		status = x.script(stepCtx, st, sr, out, v, ws, *extraPath)
	}
	if errors.Is(stepCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		msg := fmt.Sprintf("the step took longer than timeoutInMinutes (%d) and was stopped", st.TimeoutInMinutes)
		out.note("##[error]" + msg)
		sr.Issues = append(sr.Issues, Issue{"error", msg})
		status = Failed
	} else if ctx.Err() != nil {
		out.note("##[error]the run was canceled or ran out of time")
		status = Canceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			status = Failed
		}
	}
	switch strings.ToLower(completed) {
	case "succeeded":
		status = Succeeded
	case "succeededwithissues":
		status = SucceededWithIssues
	case "failed":
		status = Failed
	}
	out.note(fmt.Sprintf("==> %s: %s", sr.DisplayName, status))
	return status
}

func (x *execution) checkout(ctx context.Context, st *pipeline.Step, out *output, dir string) string {
	if st.Checkout == "none" {
		out.note("checkout: none — the job starts without the repository's files")
		return Succeeded
	}
	if err := x.job.Checkout(ctx, x.src, dir); err != nil {
		out.note("##[error]checkout failed: " + err.Error())
		return Failed
	}
	out.note("checked out " + x.src.Describe() + " into " + dir)
	return Succeeded
}

// script runs a script or bash step with bash, as Azure's Linux agents
// do: without -e, so the step's result is its last command's exit status.
func (x *execution) script(ctx context.Context, st *pipeline.Step, sr *StepResult, out *output, v vars, ws string, extraPath []string) string {
	dir := filepath.Join(ws, "s")
	if st.WorkingDirectory != "" {
		dir = v.expand(st.WorkingDirectory)
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(ws, "s", dir)
		}
	}
	c := Command{Dir: dir, Env: x.environment(st, v, extraPath)}
	if st.File != "" {
		file := v.expand(st.File)
		if !filepath.IsAbs(file) {
			file = filepath.Join(ws, "s", file)
		}
		// The arguments are set inside the script bash runs, not given on
		// its command line, which every user of the machine sees (ps):
		// they may hold secrets. The file is sourced, so $0 is not its
		// name; BASH_SOURCE is.
		args := strings.Fields(v.expand(st.Arguments))
		c.Script = "set -- " + shellQuote(args...) + "\n. " + shellQuote(file) + "\n"
	} else {
		c.Script = v.expand(st.Script)
	}
	stdout, stderr := out.stream(false), out.stream(true)
	c.Stdout, c.Stderr = stdout, stderr
	code, err := x.job.Run(ctx, c)
	stdout.Close()
	stderr.Close()
	if err != nil {
		out.note("##[error]" + x.secrets.Mask(err.Error()))
		return Failed
	}
	if code != 0 {
		sr.ExitCode = code
		out.note(fmt.Sprintf("##[error]bash exited with code %d", code))
		return Failed
	}
	if st.FailOnStderr && out.sawStderr {
		out.note("##[error]the step wrote to standard error (failOnStderr: true)")
		return Failed
	}
	for _, is := range sr.Issues {
		if is.Type == "error" {
			return SucceededWithIssues
		}
	}
	return Succeeded
}

// environment: the runner's environment, every non-secret variable under
// its environment name, then the step's env: (which may map secrets).
func (x *execution) environment(st *pipeline.Step, v vars, extraPath []string) []string {
	env := map[string]string{}
	var order []string
	put := func(k, val string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = val
	}
	for _, kv := range x.in.Env {
		k, val, _ := strings.Cut(kv, "=")
		put(k, val)
	}
	for _, variable := range v {
		if !variable.secret {
			put(envName(variable.name), variable.value)
		}
	}
	put("TF_BUILD", "True")
	for _, e := range st.Env {
		put(e.Name, v.expand(e.Value))
	}
	if len(extraPath) > 0 {
		put("PATH", strings.Join(extraPath, ":")+":"+env["PATH"])
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// shellQuote quotes words for bash, each in single quotes.
func shellQuote(words ...string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}
