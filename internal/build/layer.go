package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file or directory in a layer.
type entry struct {
	name string // absolute path in the image, without the leading '/'
	mode int64
	uid  int
	gid  int
	dir  bool
	data []byte
	link string // symlink target, when set
}

// layerFromEntries writes entries as a gzipped tar with fixed times and
// owners, so the same entries always make the same digest. Parent
// directories are added when missing.
//
// With a cacheDir, compressed layers are kept there by the digest of their
// tar, so an unchanged program is not compressed again on the next build.
func layerFromEntries(entries []entry, mtime time.Time, cacheDir string) (v1.Layer, error) {
	have := map[string]bool{}
	for _, e := range entries {
		have[e.name] = true
	}
	all := append([]entry(nil), entries...)
	for _, e := range entries {
		for dir := path.Dir(e.name); dir != "." && dir != "/" && !have[dir]; dir = path.Dir(dir) {
			have[dir] = true
			all = append(all, entry{name: dir, dir: true, mode: 0o755})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })

	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range all {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing layer: %w", err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("writing layer: %w", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	return compressedLayer(raw.Bytes(), cacheDir)
}

// compressedLayer compresses a tar once and keeps the bytes, so computing
// the digest and pushing do not compress again. BestSpeed keeps builds
// fast; the output is still the same for the same input.
func compressedLayer(tarBytes []byte, cacheDir string) (v1.Layer, error) {
	var cached string
	if cacheDir != "" {
		sum := sha256.Sum256(tarBytes)
		cached = filepath.Join(cacheDir, "layers", hex.EncodeToString(sum[:])+".tar.gz")
		if data, err := os.ReadFile(cached); err == nil {
			return layerFromGzip(data)
		}
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBytes); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if cached != "" {
		// A failure to cache only costs the next build some time.
		if err := os.MkdirAll(filepath.Dir(cached), 0o755); err == nil {
			tmp := cached + ".tmp" + strconv.Itoa(os.Getpid())
			if os.WriteFile(tmp, gz.Bytes(), 0o644) == nil {
				_ = os.Rename(tmp, cached)
			}
		}
	}
	return layerFromGzip(gz.Bytes())
}

func layerFromGzip(data []byte) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// appendLayer adds layer on top of img, recorded in the history as
// createdBy at created, and lets edit change a copy of the image config.
func appendLayer(img v1.Image, layer v1.Layer, createdBy string, created time.Time, edit func(*v1.ConfigFile)) (v1.Image, error) {
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{CreatedBy: createdBy, Created: v1.Time{Time: created}},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	edit(cf)
	return mutate.ConfigFile(img, cf)
}
