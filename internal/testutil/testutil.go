// Package testutil has helpers shared by tests.
package testutil

import (
	"os/exec"
	"testing"
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
