package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// GCResult reports what garbage collection freed.
type GCResult struct {
	BytesBefore int64 `json:"bytesBefore"`
	BytesAfter  int64 `json:"bytesAfter"`
	DryRun      bool  `json:"dryRun"`
}

// GCOptions select what garbage collection removes.
type GCOptions struct {
	// DryRun reports without deleting.
	DryRun bool `json:"dryRun"`
	// RemoveUntagged also removes manifests no tag points to.
	RemoveUntagged bool `json:"removeUntagged"`
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
	err = storage.MarkAndSweep(ctx, driver, ns, storage.GCOpts{
		DryRun:         opts.DryRun,
		RemoveUntagged: opts.RemoveUntagged,
		Quiet:          true,
	})
	if err != nil {
		return res, fmt.Errorf("garbage collecting: %w", err)
	}
	res.BytesAfter = dirSize(dir)
	return res, nil
}

// GarbageCollect runs garbage collection while holding all writes back.
func (s *Server) GarbageCollect(ctx context.Context, opts GCOptions) (GCResult, error) {
	s.gcLock.Lock()
	defer s.gcLock.Unlock()
	return GarbageCollect(ctx, s.opts.StorageDir, opts)
}

func (s *Server) serveGC(w http.ResponseWriter, r *http.Request) {
	user, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if user == nil {
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
