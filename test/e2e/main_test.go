// Package e2e drives the real slipway binary, as a user would, against the
// real services it starts.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slipwayBin is built once for all tests.
var slipwayBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// The fast tier: these tests build and start the real binary.
		fmt.Println("e2e: left out by -short (the full tier, ./scripts/test, runs them)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "slipway-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slipwayBin = filepath.Join(dir, "slipway")
	build := exec.Command("go", "build", "-o", slipwayBin, "../../cmd/slipway")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building slipway:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one user's environment: a state directory and a Docker config.
type env struct {
	t    testing.TB
	home string
	vars []string
}

func newEnv(t testing.TB) *env {
	home := t.TempDir()
	return &env{t: t, home: home, vars: []string{
		"SLIPWAY_HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, "docker"),
		"SOURCE_DATE_EPOCH=",
		// These tests are about the registry and the CLI; the cluster has its own.
		"SLIPWAY_CLUSTER=false",
		"SLIPWAY_GIT_ADDR=127.0.0.1:0",
	}}
}

// caFile is the platform's CA certificate, which its registry's and git
// server's certificates are signed by: what a user gives git (`slipway ca
// --path`).
func (e *env) caFile() string { return filepath.Join(e.home, "tls", "ca.crt") }

// transport trusts the platform's CA: the test process is no slipway
// command, so nothing made it trust the platform.
func (e *env) transport() *http.Transport {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(readFile(e.t, e.caFile()))) {
		e.t.Fatalf("%s holds no certificate", e.caFile())
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool}
	return t
}

// client is an HTTP client with that transport.
func (e *env) client() *http.Client {
	return &http.Client{Transport: e.transport(), Timeout: 30 * time.Second}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs slipway to completion.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	return e.runCtx(context.Background(), stdin, args...)
}

// runWithin is run for a command that must end by itself (an `up` that
// should refuse to start): past limit it is killed and the test fails.
func (e *env) runWithin(limit time.Duration, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	r := e.runCtx(ctx, "", args...)
	if ctx.Err() != nil {
		e.t.Fatalf("slipway %s did not end within %s:\n%s", strings.Join(args, " "), limit, r.stderr)
	}
	return r
}

// runCtx runs slipway until it ends or ctx does.
func (e *env) runCtx(ctx context.Context, stdin string, args ...string) result {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, slipwayBin, args...)
	cmd.Env = append(os.Environ(), e.vars...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// mustRun runs slipway and fails the test unless it succeeds.
func (e *env) mustRun(stdin string, args ...string) result {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("slipway %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// upProcess is a running `slipway up`.
type upProcess struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	stderr *bytes.Buffer
	exited chan struct{}
}

// startUp runs `slipway up` and waits until it reports ready.
func (e *env) startUp(args ...string) *upProcess {
	e.t.Helper()
	return e.startUpWithin(2*time.Minute, args...)
}

// startUpWithin is startUp with a limit on how long getting ready may take.
func (e *env) startUpWithin(limit time.Duration, args ...string) *upProcess {
	e.t.Helper()
	cmd := exec.Command(slipwayBin, append([]string{"up"}, args...)...)
	cmd.Env = append(os.Environ(), e.vars...)
	pr, pw := io.Pipe()
	p := &upProcess{cmd: cmd, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout = io.MultiWriter(p.stdout, pw)
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); pw.Close(); close(p.exited) }()
	e.t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-p.exited
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "stop with Ctrl-C") { // the banner's last line
				ready <- true
			}
		}
		ready <- false
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case ok := <-ready:
		if !ok {
			e.t.Fatalf("slipway up exited before it was ready:\n%s", p.stderr)
		}
	case <-time.After(limit):
		e.t.Fatalf("slipway up not ready within %s:\n%s", limit, p.stderr)
	}
	return p
}

// wait waits for `slipway up` to exit and returns its exit code.
func (p *upProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("slipway up did not exit")
	}
	return p.cmd.ProcessState.ExitCode()
}
