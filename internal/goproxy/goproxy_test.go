package goproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// publish puts example.com/greet@v1.0.0 into a download cache, laid out
// as the go command lays out its own.
func publish(t *testing.T, dir string) {
	t.Helper()
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/greet\n\ngo 1.22\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "greet.go"), []byte("package greet\n\nfunc Hello() string { return \"hello\" }\n"), 0o644))
	v := filepath.Join(dir, "example.com", "greet", "@v")
	must(t, os.MkdirAll(v, 0o755))
	f, err := os.Create(filepath.Join(v, "v1.0.0.zip"))
	must(t, err)
	must(t, modzip.CreateFromDir(f, module.Version{Path: "example.com/greet", Version: "v1.0.0"}, src))
	must(t, f.Close())
	must(t, os.WriteFile(filepath.Join(v, "v1.0.0.mod"), []byte("module example.com/greet\n\ngo 1.22\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(v, "v1.0.0.info"), []byte(`{"Version":"v1.0.0","Time":"2026-01-01T00:00:00Z"}`), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A job's go command, with only this proxy and an empty module cache,
// builds a module that needs one the platform's cache has, and is told no
// for a version it lacks (with no fill, nothing reaches the network).
func TestGoCommandBuildsThroughTheProxy(t *testing.T) {
	h := &Handler{Dir: t.TempDir()}
	publish(t, h.Dir)
	srv := httptest.NewServer(http.StripPrefix("/-/goproxy", h))
	defer srv.Close()

	cache := t.TempDir()
	// Module cache files are read-only; let TempDir remove them.
	t.Cleanup(func() { _ = exec.Command("chmod", "-R", "u+w", cache).Run() })
	app := t.TempDir()
	must(t, os.WriteFile(filepath.Join(app, "go.mod"), []byte("module example.com/app\n\ngo 1.22\n\nrequire example.com/greet v1.0.0\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(app, "main.go"), []byte("package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Hello()) }\n"), 0o644))
	goCmd := func(dir string, args ...string) (string, error) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPROXY="+srv.URL+"/-/goproxy", "GOSUMDB=off", "GOMODCACHE="+cache,
			"GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOCACHE="+filepath.Join(cache, "build"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := goCmd(app, "build", "-o", filepath.Join(app, "app"), "."); err != nil {
		t.Fatalf("build through the proxy: %v\n%s", err, out)
	}
	if out, err := goCmd(t.TempDir(), "mod", "download", "example.com/greet@v1.0.1"); err == nil {
		t.Fatalf("a version the cache lacks was found:\n%s", out)
	}
	resp, err := http.Get(srv.URL + "/-/goproxy/example.com/greet/@v/list")
	must(t, err)
	defer resp.Body.Close()
	body := new(strings.Builder)
	_, _ = io.Copy(body, resp.Body)
	if strings.TrimSpace(body.String()) != "v1.0.0" {
		t.Errorf("list = %q, want v1.0.0", body.String())
	}
	for _, bad := range []string{"/-/goproxy/example.com/../../etc/@v/list", "/-/goproxy/example.com/greet/@v/..%2f..%2fpasswd.info", "/-/goproxy/example.com/greet/@v/v1.0.0.ziphash"} {
		resp, err := http.Get(srv.URL + bad)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s answered 200", bad)
		}
	}
}
