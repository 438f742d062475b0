package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a supervised child program: started in its own process group
// (so its children are stopped with it), its output appended to a log
// file, ready when Ready says so, stopped with SIGTERM and, after a grace
// period, SIGKILL.
type Process struct {
	// ServiceName names the service in status lines and errors.
	ServiceName string
	Path        string
	Args        []string
	Env         []string
	Dir         string
	// LogFile receives stdout and stderr.
	LogFile string
	// Ready returns nil once the process serves; it is polled.
	Ready func(ctx context.Context) error
	// Endpoint is reported once ready.
	Endpoint Endpoint
	// StopGrace is how long SIGTERM has before SIGKILL; default 10 s.
	StopGrace time.Duration
	// BeforeStop runs, when set, before the process is signalled (for
	// example to drain what it manages).
	BeforeStop func(ctx context.Context)
	// Await, when set, is polled before the program starts, until it
	// returns nil: what the program cannot start without, started
	// alongside an earlier service (the kubelet awaits containerd's
	// socket).
	Await func(ctx context.Context) error
	// Alongside lets the services after this one start while it becomes
	// ready (see the Alongside interface).
	Alongside bool

	restartOnce sync.Once
	restarts    chan restartRequest
}

// Replacement is what a restarted process runs next.
type Replacement struct {
	// Path and Args replace the program's; empty keeps them.
	Path string
	Args []string
	// Prepare, when set, runs while the program is stopped (to restore
	// its data, for one); an error leaves it stopped.
	Prepare func() error
	// Ready, when set, replaces the readiness check from now on.
	Ready func(ctx context.Context) error
}

type restartRequest struct {
	ctx   context.Context
	with  Replacement
	reply chan error
}

func (p *Process) restartRequests() chan restartRequest {
	p.restartOnce.Do(func() { p.restarts = make(chan restartRequest) })
	return p.restarts
}

// Restart stops the running program and starts it again with r, and
// returns once it is ready, or why not. A program that fails to come
// back stays stopped without failing the supervisor: the caller restarts
// it again (with what ran before, to roll back). ctx bounds the wait.
func (p *Process) Restart(ctx context.Context, r Replacement) error {
	req := restartRequest{ctx: ctx, with: r, reply: make(chan error, 1)}
	select {
	case p.restartRequests() <- req:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", p.ServiceName, ctx.Err())
	}
	return <-req.reply
}

func (p *Process) Name() string { return p.ServiceName }

// StartsAlongside is the Alongside field, for the supervisor.
func (p *Process) StartsAlongside() bool { return p.Alongside }

func (p *Process) Run(ctx context.Context, ready func(Endpoint)) error {
	if err := os.MkdirAll(filepath.Dir(p.LogFile), 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening log: %w", err)
	}
	defer logFile.Close()
	if err := poll(ctx, p.Await); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	cmd, exited, err := p.start(logFile)
	if err != nil {
		return err
	}
	readyErr := make(chan error, 1)
	readyCtx, cancelReady := context.WithCancel(ctx)
	defer cancelReady()
	go func() { readyErr <- poll(readyCtx, p.Ready) }()

	for {
		select {
		case err := <-exited:
			return fmt.Errorf("exited (%v); its log is %s:\n%s", exitReason(err), p.LogFile, tail(p.LogFile, 15))
		case err := <-readyErr:
			if err != nil {
				p.stop(cmd, exited)
				return err
			}
			ready(p.Endpoint)
			readyErr = nil
		case req := <-p.restartRequests():
			if cmd != nil {
				p.stop(cmd, exited)
				cmd, exited = nil, nil
			}
			cmd, exited, err = p.replace(logFile, req)
			req.reply <- err
		case <-ctx.Done():
			if cmd == nil {
				return nil // stopped by a restart that failed
			}
			if p.BeforeStop != nil {
				stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
				p.BeforeStop(stopCtx)
				cancel()
			}
			p.stop(cmd, exited)
			return nil
		}
	}
}

// start runs the program, its output going to logFile.
func (p *Process) start(logFile *os.File) (*exec.Cmd, chan error, error) {
	fmt.Fprintf(logFile, "\n=== %s: starting %s %s\n", time.Now().UTC().Format(time.RFC3339), p.Path, strings.Join(p.Args, " "))
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, killed if slipway itself dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", p.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, exited, nil
}

// replace starts the program anew as req says, once the old one has
// stopped, and waits for it to be ready. On failure nothing runs.
func (p *Process) replace(logFile *os.File, req restartRequest) (*exec.Cmd, chan error, error) {
	if req.with.Prepare != nil {
		if err := req.with.Prepare(); err != nil {
			return nil, nil, fmt.Errorf("%s stopped; preparing its restart: %w", p.ServiceName, err)
		}
	}
	if req.with.Path != "" {
		p.Path = req.with.Path
	}
	if req.with.Args != nil {
		p.Args = req.with.Args
	}
	if req.with.Ready != nil {
		p.Ready = req.with.Ready
	}
	// Errors quote what this run wrote, not the run before it.
	from, _ := logFile.Seek(0, io.SeekEnd)
	cmd, exited, err := p.start(logFile)
	if err != nil {
		return nil, nil, err
	}
	readyErr := make(chan error, 1)
	readyCtx, cancel := context.WithCancel(req.ctx)
	defer cancel()
	go func() { readyErr <- poll(readyCtx, p.Ready) }()
	select {
	case err := <-exited:
		return nil, nil, fmt.Errorf("%s exited (%v) after its restart; its log is %s:\n%s", p.ServiceName, exitReason(err), p.LogFile, tailFrom(p.LogFile, from, 8))
	case err := <-readyErr:
		if err != nil {
			p.stop(cmd, exited)
			return nil, nil, fmt.Errorf("%s was not ready after its restart: %w; its log is %s:\n%s", p.ServiceName, err, p.LogFile, tailFrom(p.LogFile, from, 8))
		}
		return cmd, exited, nil
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after the grace time.
func (p *Process) stop(cmd *exec.Cmd, exited <-chan error) {
	grace := p.StopGrace
	if grace == 0 {
		grace = 10 * time.Second
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// Anything left in the group (children that ignored SIGTERM) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// poll calls check until it returns nil or ctx ends.
func poll(ctx context.Context, check func(context.Context) error) error {
	if check == nil {
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := check(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func exitReason(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string { return tailFrom(path, 0, n) }

// tailFrom is tail of what the file holds past offset from, without the
// lines that say how the program was started (long, and in the log).
func tailFrom(path string, from int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size()-from > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	} else {
		_, _ = f.Seek(from, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if from == 0 || !strings.HasPrefix(l, "=== ") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
