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
}

func (p *Process) Name() string { return p.ServiceName }

func (p *Process) Run(ctx context.Context, ready func(Endpoint)) error {
	if err := os.MkdirAll(filepath.Dir(p.LogFile), 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening log: %w", err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "\n=== %s: starting %s %s\n", time.Now().UTC().Format(time.RFC3339), p.Path, strings.Join(p.Args, " "))

	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, killed if slipway itself dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

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
		case <-ctx.Done():
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
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
