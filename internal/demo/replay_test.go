package demo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/gitserver/gitservertest"
)

// A demo played a second time on the same platform pushes the same files
// as the first: its push must still change a file, or the pipeline's
// trigger (which ignores a push that changes nothing it watches) never
// starts the run the play waits for. Real git against the real git
// server.
func TestAReplayedPushChangesAFile(t *testing.T) {
	base := gitservertest.Start(t, "dev1/hello")
	dir := t.TempDir()
	examples := filepath.Join(dir, "examples")
	if err := os.MkdirAll(filepath.Join(examples, "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(examples, "hello", "main.go"), []byte("package main\n\nconst version = \"dev\"\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := app{"dev1", "hello", "hello"}
	play := func() (changed []string) {
		t.Helper()
		d := &Demo{GitURL: base, Examples: examples, work: t.TempDir(), password: map[string]string{"dev1": "dev1-pw"}}
		commit, err := d.pushApp(context.Background(), a, "1.0", "hello 1.0")
		if err != nil {
			t.Fatal(err)
		}
		files, err := d.git(context.Background(), filepath.Join(d.work, "dev1-hello"), "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", commit)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(files)
	}
	first := play()
	if len(first) == 0 || strings.Contains(strings.Join(first, " "), replayFile) {
		t.Fatalf("the first play's push changed %v; want the app's files and no %s", first, replayFile)
	}
	if again := play(); strings.Join(again, " ") != replayFile {
		t.Fatalf("the replayed push changed %v; want only %s", again, replayFile)
	}
}
