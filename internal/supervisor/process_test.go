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

// TestAwaitHoldsTheStartUntilItsNeedIsMet starts a program alongside
// (it makes a file only after a while) and a second one that awaits the
// file: the second starts only once the file is there, and the whole is
// ready once both are.
func TestAwaitHoldsTheStartUntilItsNeedIsMet(t *testing.T) {
	dir := t.TempDir()
	made, seen := filepath.Join(dir, "socket"), filepath.Join(dir, "seen")
	exists := func(path string) func(context.Context) error {
		return func(context.Context) error { _, err := os.Stat(path); return err }
	}
	maker := &supervisor.Process{
		ServiceName: "maker", Path: "/bin/sh",
		Args:    []string{"-c", "sleep 0.3; touch " + made + "; exec sleep 300"},
		LogFile: filepath.Join(dir, "maker.log"), Ready: exists(made), Alongside: true,
	}
	// The second program records whether the file was there when it
	// began; the record appears whole (renamed into place), as readiness
	// is its existence.
	user := &supervisor.Process{
		ServiceName: "user", Path: "/bin/sh",
		Args:    []string{"-c", "if [ -e " + made + " ]; then echo yes > " + seen + ".new; else echo no > " + seen + ".new; fi; mv " + seen + ".new " + seen + "; exec sleep 300"},
		LogFile: filepath.Join(dir, "user.log"), Ready: exists(seen), Await: exists(made),
	}
	ctx, cancel := context.WithCancel(context.Background())
	var names []string
	err := (&supervisor.Supervisor{}).Run(ctx, []supervisor.Service{maker, user}, func(eps []supervisor.Endpoint) {
		for _, e := range eps {
			names = append(names, e.Service)
		}
		cancel()
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != "maker user" {
		t.Fatalf("endpoints %v, want maker user", names)
	}
	data, err := os.ReadFile(seen)
	if err != nil || strings.TrimSpace(string(data)) != "yes" {
		t.Fatalf("the awaiting program started before what it awaits (%q, %v)", data, err)
	}
}
