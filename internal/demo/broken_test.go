package demo

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipway-dev/slipway/internal/fsutil"
)

// The broken quotes still builds and passes its unit test: the fault is
// one only traffic shows.
func TestFailEveryOtherPassesTheUnitTest(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the example app")
	}
	dir := t.TempDir()
	if err := fsutil.CopyTree(filepath.Join("..", "..", "examples", "quotes"), dir); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	broken, err := FailEveryOther(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	// And the fault is there: 5 of the first 20 requests fail (the tests
	// of one package run in the order of their files: this one first).
	fault := `package main

import (
	"net/http/httptest"
	"testing"
)

func TestTheFault(t *testing.T) {
	srv := httptest.NewServer(handler(newMemoryStore()))
	defer srv.Close()
	failed := 0
	for i := 0; i < 20; i++ {
		res, err := srv.Client().Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 500 {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d of 20 requests failed, want 5", failed)
	}
}
`
	if err := os.WriteFile(filepath.Join(dir, "fault_test.go"), []byte(fault), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "test", "./...")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test of the broken quotes: %v\n%s", err, out)
	}
}
