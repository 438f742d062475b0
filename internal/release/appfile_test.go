package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadAppFile(t *testing.T) {
	dir := t.TempDir()
	if f, err := ReadAppFile(filepath.Join(dir, "missing.yaml")); err != nil || len(f.Smoke) != 0 {
		t.Fatalf("a missing file declares no checks: %v %+v", err, f)
	}
	good := filepath.Join(dir, "slipway.yaml")
	os.WriteFile(good, []byte("smoke:\n- name: home\n  path: /\n  status: 200\n  contains: hello\n"), 0o644)
	f, err := ReadAppFile(good)
	if err != nil || len(f.Smoke) != 1 || f.Smoke[0].Contains != "hello" || f.Smoke[0].Status != 200 {
		t.Fatalf("%v %+v", err, f)
	}
	for content, want := range map[string]string{
		"smoke:\n- path: /\n  expect: 200\n":   "unknown field",
		"smoke:\n- path: home\n":               "must start with /",
		"smoke:\n- path: /\n  method: TRACE\n": "method \"TRACE\"",
		"smoke:\n- path: /\n  method: put\n":   "method \"put\"",
		"smoke:\n- path: /\n  method: PUT\n  body: \"" + strings.Repeat("x", maxSmokeBody+1) + "\"\n": "at most 65536",
	} {
		os.WriteFile(good, []byte(content), 0o644)
		if _, err := ReadAppFile(good); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
}
