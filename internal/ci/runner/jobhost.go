package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/procfs"
)

// An Executor gives each job a place to run: a directory on this machine
// (HostExecutor, a person's own `slipway pipeline run`) or a pod in the
// team's CI namespace (the platform's).
type Executor interface {
	StartJob(ctx context.Context, spec JobSpec) (JobHost, error)
}

// JobSpec is what an executor needs to start a job.
type JobSpec struct {
	Run *Run
	// Stage and Job number the job within the run.
	Stage, Job int
	// Image is the job's container: image, or empty for the default.
	Image string
	// Log receives what starting the job says (an image being pulled).
	Log io.Writer
}

// JobHost is where one job's steps run. Paths are as the steps see them.
type JobHost interface {
	// Workspace is the job's directory; s, a, b and tmp exist below it.
	Workspace() string
	// Checkout puts src's files into dir, a directory below Workspace.
	Checkout(ctx context.Context, src Source, dir string) error
	// Run runs bash and returns its exit status. A run that could not
	// start returns an error. Ending ctx stops the whole command, its
	// children included.
	Run(ctx context.Context, c Command) (int, error)
	// Fetch copies a file or tree of the job to dst on this machine.
	Fetch(ctx context.Context, path, dst string) error
	// Close ends the job: its workspace (or pod) is removed.
	Close()
}

// GoVersionKnower is a JobHost that knows the Go toolchain its steps use
// (an image it built), so GoTool@0 need not run go to ask.
type GoVersionKnower interface {
	GoVersion() string
}

// Command is one bash invocation of a step.
type Command struct {
	// Script is an inline script; when empty, Args are bash's arguments
	// (a script file and its arguments).
	Script string
	Args   []string
	Dir    string
	// Env is the whole environment of the command.
	Env            []string
	Stdout, Stderr io.Writer
}

// HostExecutor runs jobs on this machine as the user running slipway, in
// a directory per job under Dir.
type HostExecutor struct {
	// Dir holds the job workspaces (the runner's: see Store.WorkDir); ""
	// is the system's temporary directory.
	Dir string
}

func (h HostExecutor) StartJob(ctx context.Context, spec JobSpec) (JobHost, error) {
	if spec.Image != "" {
		fmt.Fprintf(spec.Log, "##[warning]container: %s is used on the platform only; this job runs on this machine\n", spec.Image)
	}
	if h.Dir != "" {
		if err := os.MkdirAll(h.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	ws, err := os.MkdirTemp(h.Dir, fmt.Sprintf("slipway-run-%d-%d-%d-", spec.Run.ID, spec.Stage, spec.Job))
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"s", "a", "b", "tmp"} {
		if err := os.MkdirAll(filepath.Join(ws, d), 0o755); err != nil {
			os.RemoveAll(ws)
			return nil, err
		}
	}
	return hostJob(ws), nil
}

type hostJob string

func (h hostJob) Workspace() string { return string(h) }
func (h hostJob) Close()            { _ = os.RemoveAll(string(h)) }

func (h hostJob) Checkout(ctx context.Context, src Source, dir string) error {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return src.Checkout(ctx, dir)
}

func (h hostJob) Fetch(ctx context.Context, path, dst string) error {
	return fsutil.CopyTree(path, dst)
}

func (h hostJob) Run(ctx context.Context, c Command) (int, error) {
	args := c.Args
	if c.Script != "" || len(args) == 0 {
		script := filepath.Join(string(h), "tmp", "step-"+strconv.FormatInt(time.Now().UnixNano(), 10)+".sh")
		if err := os.WriteFile(script, []byte(c.Script+"\n"), 0o700); err != nil {
			return -1, err
		}
		defer os.Remove(script)
		args = []string{"--noprofile", "--norc", script}
	}
	cmd := exec.Command("bash", args...)
	cmd.Dir, cmd.Env = c.Dir, c.Env
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return -1, err
	}
	// The step's process group is noted in the workspace while it runs:
	// if slipway dies, bash dies with it (Pdeathsig) but what bash
	// started lives on, and the next start ends the group (SweepWorkDir).
	group := filepath.Join(string(h), groupPrefix+strconv.Itoa(cmd.Process.Pid))
	_ = os.WriteFile(group, []byte(strconv.FormatUint(procfs.StartTime(cmd.Process.Pid), 10)), 0o600)
	defer os.Remove(group)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// The whole process group: a script's children go too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			err = <-done
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
