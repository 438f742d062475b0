// Package testutil has helpers shared by tests.
package testutil

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// NeedCommand returns the path of a program the test needs. The README's
// test command installs every one of them, so a missing program fails the
// test with the fix rather than skipping it silently.
func NeedCommand(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: run ./scripts/test (it installs what the tests need) or apt-get install %s", name, debianPackage)
	}
	return p
}

// FreePort returns a loopback TCP port that was free a moment ago, and
// never one it returned before in this test binary: a test that takes
// several ports before anything listens on them (a registry, a git
// server, Prometheus) must not get one twice. On a busy machine the
// kernel, asked for any free port, did hand the same one out twice in a
// row (a registry and a git server both given 38995).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if _, given := portsGiven.LoadOrStore(port, true); !given {
			return port
		}
	}
	t.Fatal("no loopback port that was not handed out already")
	return 0
}

// StablePort is a free port that stays free while other programs run:
// below the kernel's range for outgoing connections (32768 up), which
// programs started meanwhile draw from, so only a listener could take it.
// It is for a port chosen long before it is listened on (a second
// platform's, named in the first one's configuration). Never the same
// port twice in a run, as FreePort.
func StablePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		free := true
		for _, host := range []string{"127.0.0.1", "0.0.0.0"} { // free on every address
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if _, given := portsGiven.LoadOrStore(port, true); free && !given {
			return port
		}
	}
	t.Fatal("no free port below 32000")
	return 0
}

// portsGiven are the ports FreePort and StablePort have returned.
var portsGiven sync.Map

// WaitHTTP polls url until it answers 200 and returns the body.
func WaitHTTP(t testing.TB, url string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200: %v", url, lastErr)
	return ""
}

// Slow marks a test of the full tier: `go test -short` (the fast tier,
// ./scripts/test --short) leaves it out.
func Slow(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow: runs in the full tier (./scripts/test), not with -short")
	}
}

// NeedRoot skips a test that needs root when run as another user, on a
// person's machine. Under CI (CI set) it fails instead: CI runs as root,
// so a skip there would hide a test that never ran.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s needs root, and CI is set: run the suite as root (./scripts/test)", why)
	}
	t.Skipf("%s needs root (run ./scripts/test as root for the full suite)", why)
}
