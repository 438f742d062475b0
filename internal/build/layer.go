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
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipway-dev/slipway/internal/fsutil"
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

// compressedLayer compresses a tar once and keeps the bytes, with both
// digests computed from what is at hand (the tar's own hash is the DiffID),
// so nothing is compressed or decompressed again to learn them. BestSpeed
// keeps builds fast; the output is the same for the same input. With a
// cacheDir, the compressed bytes are kept by the tar's digest, so an
// unchanged program is not compressed again on the next build.
func compressedLayer(tarBytes []byte, cacheDir string) (v1.Layer, error) {
	sum := sha256.Sum256(tarBytes)
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	var cached string
	if cacheDir != "" {
		cached = filepath.Join(cacheDir, "layers", diffID.Hex+".tar.gz")
		if data, err := os.ReadFile(cached); err == nil {
			return knownLayer(data, diffID)
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
	return knownLayer(gz.Bytes(), diffID)
}

// programLayerKey names the layer holding one program file at appPath:
// the file by its path, inode, size and modification time (the component
// cache writes a rebuilt program as a new file, so a change shows in
// them), and what else goes into the tar. "" when the file cannot be
// read; the layer is then built the long way.
func programLayerKey(binPath, appPath string, created time.Time) string {
	fi, err := os.Stat(binPath)
	if err != nil {
		return ""
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d\x00%o\x00%s\x00%d", binPath, ino, fi.Size(), fi.ModTime().UnixNano(), fi.Mode(), appPath, created.Unix()))
	return hex.EncodeToString(sum[:16])
}

// programLayerMemo is where the DiffID of a program's layer is kept, by
// programLayerKey; the compressed layer itself is in the layer cache.
func programLayerMemo(cacheDir, key string) string {
	return filepath.Join(cacheDir, "layers", "programs", key)
}

// cachedProgramLayer returns the layer remembered for key, without
// reading the program or building its tar again: on a warm start that
// was most of the time spent making the cluster's and Flux's images. A
// memo that also holds the compressed layer's digest spares reading and
// hashing the layer file too (the registry push finds it there already).
func cachedProgramLayer(cacheDir, key string) (v1.Layer, bool) {
	if key == "" {
		return nil, false
	}
	memo, err := os.ReadFile(programLayerMemo(cacheDir, key))
	if err != nil {
		return nil, false
	}
	diffHex, digestHex, _ := strings.Cut(strings.TrimSpace(string(memo)), " ")
	diffID, err := v1.NewHash("sha256:" + diffHex)
	if err != nil {
		return nil, false
	}
	path := filepath.Join(cacheDir, "layers", diffID.Hex+".tar.gz")
	if digest, err := v1.NewHash("sha256:" + digestHex); err == nil {
		if fi, err := os.Stat(path); err == nil {
			layer, err := partial.CompressedToLayer(&fileGzLayer{path: path, meta: layerMeta{Digest: digest, DiffID: diffID, Size: fi.Size()}})
			return layer, err == nil
		}
		return nil, false
	}
	gz, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	layer, err := knownLayer(gz, diffID)
	if err != nil {
		return nil, false
	}
	rememberProgramLayer(cacheDir, key, layer) // with its digest, for the next start
	return layer, true
}

// rememberProgramLayer keeps layer's DiffID and digest under key. A
// failure only costs the next start the long way.
func rememberProgramLayer(cacheDir, key string, layer v1.Layer) {
	if key == "" {
		return
	}
	diffID, err := layer.DiffID()
	if err != nil {
		return
	}
	digest, err := layer.Digest()
	if err != nil {
		return
	}
	p := programLayerMemo(cacheDir, key)
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_ = fsutil.WriteFileAtomic(p, []byte(diffID.Hex+" "+digest.Hex), 0o644)
	}
}

// gzLayer is a gzipped tar layer whose DiffID is known.
type gzLayer struct {
	data           []byte
	digest, diffID v1.Hash
}

func knownLayer(gz []byte, diffID v1.Hash) (v1.Layer, error) {
	sum := sha256.Sum256(gz)
	return partial.CompressedToLayer(&gzLayer{data: gz, diffID: diffID, digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}})
}

func (l *gzLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *gzLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *gzLayer) Size() (int64, error)                { return int64(len(l.data)), nil }
func (l *gzLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *gzLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
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
