package supervisor_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/supervisor"
)

// TestProcessStopsItsWholeGroup starts a shell that ignores SIGTERM and
// has a child, and checks that stopping ends both.
func TestProcessStopsItsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	p := &supervisor.Process{
		ServiceName: "stubborn",
		Path:        "/bin/sh",
		Args:        []string{"-c", `trap "" TERM; sleep 300 & echo $! > ` + pidFile + `; wait`},
		LogFile:     filepath.Join(dir, "log"),
		Ready: func(context.Context) error {
			_, err := os.Stat(pidFile)
			return err
		},
		StopGrace: 300 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	sup := &supervisor.Supervisor{}
	err := sup.Run(ctx, []supervisor.Service{p}, func([]supervisor.Endpoint) { cancel() })
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	// Signal 0 checks whether the process exists (a zombie counts until
	// reaped by init, so allow a moment).
	for i := 0; i < 50; i++ {
		if syscall.Kill(child, 0) != nil || isZombie(child) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("child %d of the stopped process is still running", child)
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] == "Z"
}

func TestProcessThatExitsIsReportedWithItsLog(t *testing.T) {
	dir := t.TempDir()
	p := &supervisor.Process{
		ServiceName: "broken",
		Path:        "/bin/sh",
		Args:        []string{"-c", "echo 'cannot open config: no such file' >&2; exit 3"},
		LogFile:     filepath.Join(dir, "log"),
		Ready:       func(context.Context) error { return os.ErrNotExist },
	}
	err := (&supervisor.Supervisor{}).Run(context.Background(), []supervisor.Service{p}, nil)
	if err == nil || !strings.Contains(err.Error(), "broken: failed to start") || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "cannot open config") {
		t.Fatalf("want the service, exit status and log tail, got %v", err)
	}
}

// TestRestartReplacesTheProgram restarts a running process with another
// program, then with one that fails: the failure is the caller's to
// handle (the supervisor keeps running), and a restart with the first
// program brings it back.
func TestRestartReplacesTheProgram(t *testing.T) {
	dir := t.TempDir()
	marker := func(name string) []string {
		// "who" first: the program is ready once "running" exists.
		return []string{"-c", "echo " + name + " > " + filepath.Join(dir, "who") + "; echo $$ > " + filepath.Join(dir, "running") + "; exec sleep 300"}
	}
	who := func() string {
		data, _ := os.ReadFile(filepath.Join(dir, "who"))
		return strings.TrimSpace(string(data))
	}
	p := &supervisor.Process{
		ServiceName: "node-program",
		Path:        "/bin/sh",
		Args:        marker("old"),
		LogFile:     filepath.Join(dir, "log"),
		Ready: func(context.Context) error {
			_, err := os.Stat(filepath.Join(dir, "running"))
			return err
		},
		StopGrace: time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readyc := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- (&supervisor.Supervisor{}).Run(ctx, []supervisor.Service{p}, func([]supervisor.Endpoint) { close(readyc) })
	}()
	<-readyc
	restart := func(r supervisor.Replacement) error {
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		_ = os.Remove(filepath.Join(dir, "running"))
		return p.Restart(rctx, r)
	}
	if err := restart(supervisor.Replacement{Args: marker("new")}); err != nil {
		t.Fatal(err)
	}
	if who() != "new" {
		t.Fatalf("after the restart %q runs, want new", who())
	}
	prepared := false
	err := restart(supervisor.Replacement{Args: []string{"-c", "echo bad flag; exit 3"}, Prepare: func() error { prepared = true; return nil }})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "bad flag") {
		t.Fatalf("a program that exits at once: %v", err)
	}
	if !prepared {
		t.Error("Prepare did not run")
	}
	select {
	case err := <-done:
		t.Fatalf("the supervisor stopped after a failed restart: %v", err)
	default:
	}
	if err := restart(supervisor.Replacement{Args: marker("old")}); err != nil {
		t.Fatal(err)
	}
	if who() != "old" {
		t.Fatalf("after rolling back %q runs, want old", who())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
