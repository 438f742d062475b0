package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// GCResult reports what garbage collection freed.
type GCResult struct {
	BytesBefore int64 `json:"bytesBefore"`
	BytesAfter  int64 `json:"bytesAfter"`
	DryRun      bool  `json:"dryRun"`
	// KeptRecent counts the digests nothing refers to that were kept
	// because they were written within GCOptions.KeepRecent.
	KeptRecent int `json:"keptRecent"`
}

// DefaultKeepRecent is how long an unreferenced blob or manifest is kept
// after it was written: a push uploads its blobs first and its manifest
// last, so until then nothing refers to them.
const DefaultKeepRecent = time.Hour

// GCOptions select what garbage collection removes.
type GCOptions struct {
	// DryRun reports without deleting.
	DryRun bool `json:"dryRun"`
	// RemoveUntagged also removes manifests no tag points to.
	RemoveUntagged bool `json:"removeUntagged"`
	// KeepRecent keeps what was written less than this long ago even when
	// nothing refers to it (nil: DefaultKeepRecent; zero keeps nothing).
	KeepRecent *time.Duration `json:"keepRecent,omitempty"`
}

// GarbageCollect removes blobs no manifest refers to. It must not run
// while anything writes to dir; a running Server uses its own method, which
// holds writes back.
func GarbageCollect(ctx context.Context, dir string, opts GCOptions) (GCResult, error) {
	res := GCResult{DryRun: opts.DryRun, BytesBefore: dirSize(dir)}
	driver, err := factory.Create(ctx, "filesystem", configuration.Parameters{"rootdirectory": dir})
	if err != nil {
		return res, fmt.Errorf("opening registry storage: %w", err)
	}
	ns, err := storage.NewRegistry(ctx, driver, storage.EnableDelete)
	if err != nil {
		return res, fmt.Errorf("opening registry storage: %w", err)
	}
	keep := DefaultKeepRecent
	if opts.KeepRecent != nil {
		keep = *opts.KeepRecent
	}
	sweeper := &keepRecent{StorageDriver: driver, recent: recentDigests(dir, time.Now().Add(-keep)), kept: map[string]bool{}}
	err = storage.MarkAndSweep(ctx, sweeper, ns, storage.GCOpts{
		DryRun:         opts.DryRun,
		RemoveUntagged: opts.RemoveUntagged,
		Quiet:          true,
	})
	res.KeptRecent = len(sweeper.kept)
	if err != nil {
		return res, fmt.Errorf("garbage collecting: %w", err)
	}
	if !opts.DryRun {
		removeEmptyBlobDirs(dir)
	}
	res.BytesAfter = dirSize(dir)
	return res, nil
}

// removeEmptyBlobDirs removes the directories of blobs whose data is
// gone. The sweep deletes a blob's directory with its data file first, so
// a sweep cut between the two (kill -9) leaves the directory empty, and
// no later sweep sees it: the storage lists blobs by their data files.
func removeEmptyBlobDirs(dir string) {
	root := filepath.Join(dir, "docker", "registry", "v2", "blobs")
	algs, _ := os.ReadDir(root)
	for _, alg := range algs {
		prefixes, _ := os.ReadDir(filepath.Join(root, alg.Name()))
		for _, prefix := range prefixes {
			blobs, _ := os.ReadDir(filepath.Join(root, alg.Name(), prefix.Name()))
			for _, b := range blobs {
				// os.Remove removes only an empty directory.
				_ = os.Remove(filepath.Join(root, alg.Name(), prefix.Name(), b.Name()))
			}
		}
	}
}

// keepRecent is the storage as garbage collection's sweep sees it: it
// deletes nothing that belongs to a digest written recently (a blob, a
// repository's link to it, a manifest revision or tag entry), so a push
// whose blobs are stored and whose manifest is still to come loses none
// of them. What it keeps goes at a later collection.
type keepRecent struct {
	storagedriver.StorageDriver
	recent map[string]bool
	kept   map[string]bool
}

func (k *keepRecent) Delete(ctx context.Context, path string) error {
	if d := digestOfPath(path); d != "" && k.recent[d] {
		k.kept[d] = true
		return nil
	}
	return k.StorageDriver.Delete(ctx, path)
}

// digestOfPath reads the digest a storage path belongs to:
// blobs/ALG/XX/HEX[/data], …/_layers/ALG/HEX[/link],
// …/_manifests/revisions/ALG/HEX[/link] and …/index/ALG/HEX[/link].
func digestOfPath(p string) string {
	segs := strings.Split(strings.TrimSuffix(strings.TrimSuffix(p, "/link"), "/data"), "/")
	n := len(segs)
	if n < 3 {
		return ""
	}
	hex, alg := segs[n-1], segs[n-2]
	if len(alg) == 2 {
		alg = segs[n-3]
	}
	if (alg != "sha256" && alg != "sha512") || !validHex(hex) {
		return ""
	}
	return alg + ":" + hex
}

func validHex(s string) bool {
	if len(s) < 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// recentDigests names the digests with a blob or link file in the storage
// written after since.
func recentDigests(dir string, since time.Time) map[string]bool {
	recent := map[string]bool{}
	root := filepath.Join(dir, "docker", "registry", "v2")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (d.Name() != "data" && d.Name() != "link") {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().After(since) {
			return nil
		}
		if dg := digestOfPath(filepath.ToSlash(p)); dg != "" {
			recent[dg] = true
		}
		return nil
	})
	return recent
}

// GarbageCollect runs garbage collection while holding all writes back.
func (s *Server) GarbageCollect(ctx context.Context, opts GCOptions) (GCResult, error) {
	s.gcLock.Lock()
	defer s.gcLock.Unlock()
	return GarbageCollect(ctx, s.opts.StorageDir, opts)
}

func (s *Server) serveGC(w http.ResponseWriter, r *http.Request) {
	user, token, ok := s.authenticate(w, r, "", "")
	if !ok {
		return
	}
	if user == nil || token != nil {
		// Tokens grant registry actions only; this is Slipway's own
		// endpoint, which takes an admin's Basic credentials.
		challenge(w, "garbage collection needs an admin user")
		return
	}
	if !user.Admin {
		writeError(w, http.StatusForbidden, "DENIED", fmt.Sprintf("user %q is not an admin; garbage collection needs an admin user", user.Name))
		return
	}
	var opts GCOptions
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&opts); err != nil {
			writeError(w, http.StatusBadRequest, "UNSUPPORTED", "reading options: "+err.Error())
			return
		}
	}
	res, err := s.GarbageCollect(r.Context(), opts)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// dirSize adds up the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// RequestGC asks a running registry at baseURL to collect garbage.
func RequestGC(ctx context.Context, baseURL, user, password string, opts GCOptions) (GCResult, error) {
	var res GCResult
	body, _ := json.Marshal(opts)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/slipway/v1/gc", bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, fmt.Errorf("asking the registry to collect garbage: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Errors []struct{ Message string } `json:"errors"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		msg := resp.Status
		if len(e.Errors) > 0 {
			msg = e.Errors[0].Message
		}
		return res, fmt.Errorf("garbage collection refused: %s", msg)
	}
	return res, json.NewDecoder(resp.Body).Decode(&res)
}
