// Package testutil has helpers shared by tests.
package testutil

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
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

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

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
