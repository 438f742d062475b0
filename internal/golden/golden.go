// Package golden compares a test's output with a file kept under
// testdata/, the way flux2's command tests do. Run the tests with
// -update to write the files anew, then read the diff before committing.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "write golden files under testdata/ instead of comparing with them")

// Check fails the test unless got equals the golden file's content.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file: %v (write it with go test -update)", err)
	}
	if string(want) != string(got) {
		t.Errorf("output differs from %s (go test -update rewrites it; check the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
