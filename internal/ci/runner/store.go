// Package runner runs pipelines: on every push the git server reports, or
// on a working tree at a user's request. Each run gets a clean checkout
// and its own workspace; steps run in order with the pipeline's
// variables; results and logs are kept under the state directory, so
// they outlive the process, and a run a crash cut short is marked failed
// when the runner starts again.
package runner

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/procfs"
)

// Statuses of runs, stages, jobs and steps.
const (
	Queued              = "queued"
	Running             = "running"
	Succeeded           = "succeeded"
	SucceededWithIssues = "succeededWithIssues"
	Failed              = "failed"
	Canceled            = "canceled"
	Skipped             = "skipped"
	NotStarted          = "notStarted"
)

// Finished says whether a status is final.
func Finished(status string) bool {
	switch status {
	case Queued, Running, NotStarted:
		return false
	}
	return true
}

// Run is one run of a pipeline, as stored in run.json.
type Run struct {
	ID       int    `json:"id"`
	Pipeline string `json:"pipeline"`
	// Number is the run's name (`name:` format, or the ID).
	Number string `json:"number"`
	// Reason is Azure's Build.Reason: IndividualCI, BatchedCI or Manual.
	Reason      string `json:"reason"`
	Ref         string `json:"ref,omitempty"`
	Commit      string `json:"commit,omitempty"`
	Before      string `json:"before,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	// Repo is the repository a defined pipeline reads, when it is not
	// named as the repository (see Definition).
	Repo string `json:"repo,omitempty"`
	// Source is the working tree of a manual run.
	Source string `json:"source,omitempty"`
	File   string `json:"file"`

	Status string `json:"status"`
	// Error says why a run failed before or outside its steps (a pipeline
	// file that does not load, a crash, a timeout).
	Error      string        `json:"error,omitempty"`
	QueuedAt   time.Time     `json:"queuedAt"`
	StartedAt  time.Time     `json:"startedAt,omitzero"`
	FinishedAt time.Time     `json:"finishedAt,omitzero"`
	Stages     []StageResult `json:"stages,omitempty"`
	// PID is the process running it; a run whose process is gone was cut
	// short.
	PID int `json:"pid,omitempty"`
	// PIDStart is when that process started (clock ticks since boot):
	// a PID taken again by another process after a crash is not the
	// run's.
	PIDStart uint64 `json:"pidStart,omitempty"`
	// Push names the intake entry of the push the run came from.
	Push string `json:"push,omitempty"`
}

// StageResult is a stage's outcome.
type StageResult struct {
	Name        string      `json:"name"`
	DisplayName string      `json:"displayName,omitempty"`
	Status      string      `json:"status"`
	Jobs        []JobResult `json:"jobs"`
}

// JobResult is a job's outcome.
type JobResult struct {
	Name        string       `json:"name"`
	DisplayName string       `json:"displayName,omitempty"`
	Status      string       `json:"status"`
	StartedAt   time.Time    `json:"startedAt,omitzero"`
	FinishedAt  time.Time    `json:"finishedAt,omitzero"`
	Steps       []StepResult `json:"steps"`
}

// StepResult is a step's outcome; its output is in Log, relative to the
// run's directory.
type StepResult struct {
	Name        string    `json:"name,omitempty"`
	DisplayName string    `json:"displayName"`
	Status      string    `json:"status"`
	ExitCode    int       `json:"exitCode,omitempty"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	Log         string    `json:"log,omitempty"`
	Issues      []Issue   `json:"issues,omitempty"`
	// Where is the step's place in the pipeline files.
	Where string `json:"where,omitempty"`
	// Outputs are the step's output variables (isOutput=true) that are
	// not secret, by name, masked and cut at MaxOutputValue: what later
	// jobs read, and what the line shows (a chart's version, an image).
	Outputs map[string]string `json:"outputs,omitempty"`
}

// MaxOutputValue bounds an output variable's value as kept in run.json.
const MaxOutputValue = 1 << 10

// Issue is an error or warning a step reported (##vso[task.logissue]).
type Issue struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Repository is the git repository the run's pipeline reads.
func (r *Run) Repository() string { return cmp.Or(r.Repo, r.Pipeline) }

// Duration is how long the run took, or has taken so far.
func (r *Run) Duration() time.Duration {
	if r.StartedAt.IsZero() {
		return 0
	}
	end := r.FinishedAt
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(r.StartedAt)
}

// Store keeps runs under a directory: runs/<id>/run.json and the steps'
// logs beside it.
type Store struct {
	Dir string
}

func (s *Store) runDir(id int) string { return filepath.Join(s.Dir, "runs", strconv.Itoa(id)) }

// RunDir is where a run's record, logs and artifacts live.
func (s *Store) RunDir(id int) string { return s.runDir(id) }

// New records a new run and gives it the next ID.
func (s *Store) New(r *Run) error {
	if err := os.MkdirAll(filepath.Join(s.Dir, "runs"), 0o755); err != nil {
		return err
	}
	unlock, err := s.lock("next-id")
	if err != nil {
		return err
	}
	defer unlock()
	next := 1
	if data, err := os.ReadFile(filepath.Join(s.Dir, "next-id")); err == nil {
		next, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	if next < 1 {
		next = 1
	}
	r.ID = next
	if r.Number == "" {
		r.Number = strconv.Itoa(next)
	}
	if err := os.MkdirAll(s.runDir(r.ID), 0o755); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(s.Dir, "next-id"), []byte(strconv.Itoa(next+1)+"\n"), 0o644); err != nil {
		return err
	}
	return s.Save(r)
}

// Save writes the run's record atomically: a crash leaves the old
// record or the new one, never half of one.
func (s *Store) Save(r *Run) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(s.runDir(r.ID), "run.json"), data, 0o644)
}

// Get reads one run.
func (s *Store) Get(id int) (*Run, error) {
	data, err := os.ReadFile(filepath.Join(s.runDir(id), "run.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no run %d (see slipway pipeline list)", id)
		}
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("run %d: %w", id, err)
	}
	return &r, nil
}

// List returns every run, newest first; pipeline filters when not empty.
func (s *Store) List(pipeline string) ([]*Run, error) {
	entries, err := os.ReadDir(filepath.Join(s.Dir, "runs"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Run
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		r, err := s.Get(id)
		if err != nil {
			continue // a run being created
		}
		if pipeline == "" || r.Pipeline == pipeline {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// RequestCancel asks the process running a run to stop it.
func (s *Store) RequestCancel(id int) error {
	if _, err := s.Get(id); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.runDir(id), "cancel"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}

// CancelRequested says whether someone asked to cancel the run.
func (s *Store) CancelRequested(id int) bool {
	_, err := os.Stat(filepath.Join(s.runDir(id), "cancel"))
	return err == nil
}

// Recover marks runs whose process is gone as failed: a crash or a kill
// cut them short, and they must not look as if they were still running.
func (s *Store) Recover() ([]*Run, error) {
	runs, err := s.List("")
	if err != nil {
		return nil, err
	}
	var fixed []*Run
	for _, r := range runs {
		if Finished(r.Status) || processAlive(r.PID, r.PIDStart) {
			continue
		}
		what := "interrupted: the runner stopped (crash or restart) while this run was in progress"
		if r.Status == Queued {
			what = "interrupted: the runner stopped before this run started"
			if r.Reason == "IndividualCI" {
				what += "; its push runs again as a new run"
			}
		}
		r.Status, r.Error = Failed, what
		if r.FinishedAt.IsZero() {
			r.FinishedAt = time.Now().UTC()
		}
		for i := range r.Stages {
			for j := range r.Stages[i].Jobs {
				job := &r.Stages[i].Jobs[j]
				for k := range job.Steps {
					switch job.Steps[k].Status {
					case NotStarted:
						job.Steps[k].Status = Skipped
					case Running:
						job.Steps[k].Status = Failed
					}
				}
				if !Finished(job.Status) {
					job.Status = Failed
				}
			}
			if !Finished(r.Stages[i].Status) {
				r.Stages[i].Status = Failed
			}
		}
		if err := s.Save(r); err != nil {
			return fixed, err
		}
		fixed = append(fixed, r)
	}
	return fixed, nil
}

// processAlive says whether the process that started a run still runs:
// the PID exists and, when the run recorded it, started when it did.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	if start != 0 {
		return procfs.StartTime(pid) == start
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lock takes an exclusive lock on a file under the store, for work that
// more than one process may do (run IDs, one run per pipeline at a time).
func (s *Store) lock(name string) (func(), error) {
	unlock, _, err := s.flock(name, true)
	return unlock, err
}

// tryLock is lock without waiting; ok is false when another holds it.
func (s *Store) tryLock(name string) (func(), bool, error) {
	return s.flock(name, false)
}

func (s *Store) flock(name string, wait bool) (func(), bool, error) {
	if err := os.MkdirAll(filepath.Join(s.Dir, "locks"), 0o755); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "locks", name), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, true, nil
}

// WorkDir holds the workspaces of jobs run on this machine: inside the
// state directory, not the shared temporary one, since a job's scripts
// hold its expanded secrets.
func (s *Store) WorkDir() string { return filepath.Join(s.Dir, "work") }

var workspaceRun = regexp.MustCompile(`^slipway-run-(\d+)-`)

// lookPrefix names the checkouts the runner reads a pushed pipeline file
// from.
const lookPrefix = "slipway-pipeline-"

// SweepWorkDir removes the workspaces of runs that have finished (a
// crash leaves them behind), and checkouts of pipeline files; a workspace
// of a run still going is kept. Call it before the runner takes pushes.
func (s *Store) SweepWorkDir() {
	entries, err := os.ReadDir(s.WorkDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), lookPrefix) {
			_ = os.RemoveAll(filepath.Join(s.WorkDir(), e.Name()))
			continue
		}
		m := workspaceRun.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		if r, err := s.Get(id); err != nil || Finished(r.Status) {
			endStepGroups(filepath.Join(s.WorkDir(), e.Name()))
			_ = os.RemoveAll(filepath.Join(s.WorkDir(), e.Name()))
		}
	}
}

// groupPrefix names the file a running host step leaves in its job's
// workspace: groupPrefix+PGID, holding the group leader's start time.
const groupPrefix = "step-group-"

// endStepGroups kills what is left of the process groups of a finished
// job's steps (the children of a step whose bash died with slipway). A
// group ID is not given to a new process while any member of the group
// lives, so the members found are the step's; a leader alive under that
// ID but started at another time is a new group, and is left alone.
func endStepGroups(workspace string) {
	files, _ := filepath.Glob(filepath.Join(workspace, groupPrefix+"*"))
	for _, f := range files {
		pgid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(f), groupPrefix))
		if err != nil || pgid <= 1 {
			continue
		}
		data, _ := os.ReadFile(f)
		start, _ := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if now := procfs.StartTime(pgid); now != 0 && now != start {
			continue
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// The intake: one file per push not yet taken by the runner, named so that
// names sort in arrival order.
func (s *Store) intakeDir() string { return filepath.Join(s.Dir, "intake") }

var intakeSeq atomic.Uint64

// validIntakeID is a push ID the intake takes as a file name.
var validIntakeID = regexp.MustCompile(`^[0-9][0-9a-z-]{0,99}$`)

func (s *Store) addIntake(p Push) error {
	if err := os.MkdirAll(s.intakeDir(), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	name := p.ID + ".json"
	if p.ID == "" {
		name = fmt.Sprintf("%020d-%06d-%d.json", time.Now().UnixNano(), intakeSeq.Add(1)%1000000, os.Getpid())
	} else if !validIntakeID.MatchString(p.ID) {
		return fmt.Errorf("push ID %q is not a file name", p.ID)
	}
	return fsutil.WriteFileAtomic(filepath.Join(s.intakeDir(), name), data, 0o600)
}

// intakeEntry is a push read back from the intake; push.ID is the
// entry's name.
type intakeEntry struct {
	push Push
	err  error
}

func (s *Store) intake() ([]intakeEntry, error) {
	entries, err := os.ReadDir(s.intakeDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []intakeEntry
	for _, e := range entries { // ReadDir sorts by name: arrival order
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var en intakeEntry
		data, err := os.ReadFile(filepath.Join(s.intakeDir(), e.Name()))
		if err == nil {
			err = json.Unmarshal(data, &en.push)
		}
		en.push.ID, en.err = e.Name(), err
		out = append(out, en)
	}
	return out, nil
}

func (s *Store) removeIntake(id string) {
	_ = os.Remove(filepath.Join(s.intakeDir(), id))
}

// nextCounter is counter(prefix, seed) of a pipeline: seed the first
// time a prefix is asked for, one more at every later run. The counters
// of a pipeline are kept in one file under the store, changed under a lock.
func (s *Store) nextCounter(pipeline, prefix string, seed int) (int, error) {
	next := map[string]int{}
	var n int
	err := s.changeJSON("counters-"+strings.ReplaceAll(pipeline, "/", "_"), &next, func() error {
		var ok bool
		if n, ok = next[prefix]; !ok {
			n = seed
		}
		next[prefix] = n + 1
		return nil
	})
	return n, err
}

// readJSON reads the store's file NAME.json into v; a file that is not
// there leaves v as it is.
func (s *Store) readJSON(name string, v any) error {
	path := filepath.Join(s.Dir, name+".json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// changeJSON changes the store's file NAME.json under a lock (NAME.lock),
// so that two processes changing it at once lose nothing: it is read into
// v, change changes v, and v is written back whole (temporary file,
// synced, renamed).
func (s *Store) changeJSON(name string, v any, change func() error) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	unlock, err := s.lock(name + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.readJSON(name, v); err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(s.Dir, name+".json"), append(data, '\n'), 0o644)
}
