// Package goproxy serves Go modules to pipeline jobs from the Go
// toolchain's own download cache, whose layout is the GOPROXY protocol
// ($GOMODCACHE/cache/download/MODULE/@v/VERSION.info|.mod|.zip). A
// version the cache lacks is fetched on the platform's machine with the
// go command and that machine's own proxy settings, so jobs never need
// the internet.
package goproxy

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Handler answers GOPROXY requests below its mount point (strip the
// prefix before it).
type Handler struct {
	// Dir is the download cache: $(go env GOMODCACHE)/cache/download.
	Dir string
	// Fill, when set, downloads a missing module version into Dir.
	Fill func(ctx context.Context, mod, version string) error

	mu sync.Mutex // one fill at a time
}

// Default serves the download cache of the go command on PATH and fills
// it with that command.
func Default() (*Handler, error) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")
	return &Handler{Dir: dir, Fill: GoModDownload}, nil
}

// GoModDownload fetches mod@version into the go command's cache, outside
// any module, with the machine's own settings.
func GoModDownload(ctx context.Context, mod, version string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-x=false", mod+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go mod download %s@%s: %v: %s", mod, version, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	escMod, rest, ok := strings.Cut(p, "/@v/")
	if !ok {
		// @latest is optional in the protocol: go falls back to the list.
		http.NotFound(w, r)
		return
	}
	mod, err := module.UnescapePath(escMod)
	if err != nil || module.CheckPath(mod) != nil {
		http.Error(w, "bad module path", http.StatusBadRequest)
		return
	}
	if rest == "list" {
		h.list(w, escMod)
		return
	}
	ext := path.Ext(rest)
	switch ext {
	case ".info", ".mod", ".zip":
	default:
		http.NotFound(w, r)
		return
	}
	escVer := strings.TrimSuffix(rest, ext)
	version, err := module.UnescapeVersion(escVer)
	if err != nil || !semver.IsValid(version) || strings.Contains(escVer, "/") {
		http.Error(w, "bad version", http.StatusBadRequest)
		return
	}
	file := filepath.Join(h.Dir, filepath.FromSlash(escMod), "@v", escVer+ext)
	if _, err := os.Stat(file); err != nil && h.Fill != nil {
		h.mu.Lock()
		if _, err := os.Stat(file); err != nil {
			if ferr := h.Fill(r.Context(), mod, version); ferr != nil {
				h.mu.Unlock()
				http.Error(w, ferr.Error(), http.StatusNotFound)
				return
			}
		}
		h.mu.Unlock()
	}
	http.ServeFile(w, r, file)
}

// list answers the versions the cache has.
func (h *Handler) list(w http.ResponseWriter, escMod string) {
	dir := filepath.Join(h.Dir, filepath.FromSlash(escMod), "@v")
	entries, _ := os.ReadDir(dir)
	var versions []string
	for _, e := range entries {
		if v, ok := strings.CutSuffix(e.Name(), ".info"); ok {
			if uv, err := module.UnescapeVersion(v); err == nil && semver.IsValid(uv) {
				versions = append(versions, uv)
			}
		}
	}
	sort.Slice(versions, func(i, j int) bool { return semver.Compare(versions[i], versions[j]) < 0 })
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, v := range versions {
		fmt.Fprintln(w, v)
	}
}
