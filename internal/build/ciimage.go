package build

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipway-dev/slipway/internal/fsutil"
)

// CI image: what a pipeline job's pod runs when the job names no
// container:. Three layers, each cached on disk by what it is made from:
//
//   - a Debian root filesystem made by mmdebstrap (bash, git, coreutils,
//     CA certificates, tar) with the non-root user jobs run as;
//   - the Go toolchain of this machine, at /usr/local/go;
//   - the slipway program, at /usr/local/bin/slipway.
//
// No Docker is needed: mmdebstrap builds the root filesystem from Debian's
// packages, and the layers are plain tar files.
const (
	ciSuite = "bookworm"
	// CIImageRepository is where the platform keeps it in its registry.
	CIImageRepository = "slipway/ci"
)

var ciPackages = []string{"bash", "git", "ca-certificates", "coreutils", "tar", "gzip", "procps", "util-linux", "findutils", "grep", "sed"}

// CIImageOptions say what the CI image is made from.
type CIImageOptions struct {
	CacheDir string
	// GoRoot is the Go toolchain to include (go env GOROOT).
	GoRoot string
	// Slipway is the slipway program to include.
	Slipway string
	// Kubectl, when set, is the kubectl program to include.
	Kubectl string
	// Mirror is the Debian mirror (default deb.debian.org).
	Mirror   string
	Progress io.Writer
}

// CIImage builds (or takes from the cache) the CI image for this
// machine's platform.
func CIImage(ctx context.Context, opts CIImageOptions) (*Image, error) {
	if opts.Mirror == "" {
		opts.Mirror = "http://deb.debian.org/debian"
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	dir := filepath.Join(opts.CacheDir, "ci-image")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rootfs, err := cachedLayer(dir, "rootfs-"+keyOf(ciSuite, opts.Mirror, strings.Join(ciPackages, ",")), func(w io.Writer) error {
		return debianRootfs(ctx, opts, w)
	})
	if err != nil {
		return nil, fmt.Errorf("the CI image's Debian root filesystem: %w", err)
	}
	version, err := os.ReadFile(filepath.Join(opts.GoRoot, "VERSION"))
	if err != nil {
		return nil, fmt.Errorf("the Go toolchain at %s: %w", opts.GoRoot, err)
	}
	goroot, err := cachedLayer(dir, "go-"+keyOf(opts.GoRoot, string(version)), func(w io.Writer) error {
		fmt.Fprintf(opts.Progress, "packing the Go toolchain %s for the CI image\n", strings.SplitN(string(version), "\n", 2)[0])
		return treeLayer(w, opts.GoRoot, "usr/local/go", map[string]bool{"test": true, "api": true, "doc": true, "misc": true})
	})
	if err != nil {
		return nil, fmt.Errorf("the CI image's Go toolchain: %w", err)
	}
	sum, err := rememberedFileSum(dir, opts.Slipway)
	if err != nil {
		return nil, err
	}
	program, err := cachedLayer(dir, "slipway-"+sum[:16], func(w io.Writer) error {
		return fileLayer(w, opts.Slipway, "usr/local/bin/slipway")
	})
	if err != nil {
		return nil, fmt.Errorf("the CI image's slipway: %w", err)
	}
	pruneSlipwayLayers(dir, "slipway-"+sum[:16])
	layers := []struct {
		layer v1.Layer
		by    string
	}{{rootfs, "mmdebstrap " + ciSuite + ": " + strings.Join(ciPackages, " ")}, {goroot, "go toolchain " + strings.SplitN(string(version), "\n", 2)[0]}, {program, "slipway"}}
	if opts.Kubectl != "" {
		ksum, err := fileSum(opts.Kubectl)
		if err != nil {
			return nil, err
		}
		kubectl, err := cachedLayer(dir, "kubectl-"+ksum[:16], func(w io.Writer) error {
			return fileLayer(w, opts.Kubectl, "usr/local/bin/kubectl")
		})
		if err != nil {
			return nil, fmt.Errorf("the CI image's kubectl: %w", err)
		}
		layers = append(layers, struct {
			layer v1.Layer
			by    string
		}{kubectl, "kubectl"})
	}

	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := time.Unix(0, 0).UTC()
	for _, l := range layers {
		if img, err = appendLayer(img, l.layer, l.by, created, func(cf *v1.ConfigFile) {
			cf.OS, cf.Architecture = p.OS, p.Architecture
			cf.Config.User = fmt.Sprintf("%d:%d", nonRootUID, nonRootUID)
			cf.Config.WorkingDir = "/home/" + nonRootName
			cf.Config.Env = []string{
				"PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin",
				"HOME=/home/" + nonRootName,
				"LANG=C.UTF-8",
			}
		}); err != nil {
			return nil, err
		}
	}
	return singlePlatformIndex(img, p, "debian "+ciSuite)
}

// singlePlatformIndex wraps an image of one platform in an index, as
// Slipway pushes every image.
func singlePlatformIndex(img v1.Image, p v1.Platform, base string) (*Image, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	digest, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	return &Image{Index: idx, Digest: digest, Platforms: []string{platformString(p)}, Base: base}, nil
}

func keyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rememberedFileSum is fileSum, kept by the file's identity (path, inode,
// size, modification time) under dir/sums: a start of the same slipway
// binary does not read and hash its hundred megabytes again.
func rememberedFileSum(dir, path string) (string, error) {
	key := programLayerKey(path, "sha256", time.Time{})
	if key == "" {
		return fileSum(path)
	}
	memo := filepath.Join(dir, "sums", key)
	if data, err := os.ReadFile(memo); err == nil && len(data) == 64 {
		return string(data), nil
	}
	sum, err := fileSum(path)
	if err != nil {
		return "", err
	}
	// Only the current binary's is kept; failures cost the next start
	// the hashing, nothing more.
	if entries, err := os.ReadDir(filepath.Dir(memo)); err == nil {
		for _, e := range entries {
			_ = os.Remove(filepath.Join(filepath.Dir(memo), e.Name()))
		}
	}
	if os.MkdirAll(filepath.Dir(memo), 0o755) == nil {
		_ = fsutil.WriteFileAtomic(memo, []byte(sum), 0o644)
	}
	return sum, nil
}

// layerMeta is what is kept next to a cached layer, so it is never read
// again to learn its digests.
type layerMeta struct {
	Digest v1.Hash `json:"digest"`
	DiffID v1.Hash `json:"diffID"`
	Size   int64   `json:"size"`
}

// cachedLayer is the layer kept as NAME.tar.gz in dir, made by write (an
// uncompressed tar stream) when missing. It is compressed as it is
// written, both digests computed on the way.
func cachedLayer(dir, name string, write func(io.Writer) error) (v1.Layer, error) {
	path := filepath.Join(dir, name+".tar.gz")
	if data, err := os.ReadFile(path + ".json"); err == nil {
		var m layerMeta
		if json.Unmarshal(data, &m) == nil {
			if st, err := os.Stat(path); err == nil && st.Size() == m.Size {
				return partial.CompressedToLayer(&fileGzLayer{path: path, meta: m})
			}
		}
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	gzSum, tarSum := sha256.New(), sha256.New()
	counted := &countWriter{w: io.MultiWriter(f, gzSum)}
	zw, err := gzip.NewWriterLevel(counted, gzip.BestSpeed)
	if err != nil {
		f.Close()
		return nil, err
	}
	bw := bufio.NewWriterSize(io.MultiWriter(zw, tarSum), 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	m := layerMeta{Digest: hashOf(gzSum), DiffID: hashOf(tarSum), Size: counted.n}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(m)
	if err := os.WriteFile(path+".json", data, 0o644); err != nil {
		return nil, err
	}
	return partial.CompressedToLayer(&fileGzLayer{path: path, meta: m})
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileGzLayer is a compressed layer kept in a file, its digests known.
type fileGzLayer struct {
	path string
	meta layerMeta
}

func (l *fileGzLayer) Digest() (v1.Hash, error)            { return l.meta.Digest, nil }
func (l *fileGzLayer) DiffID() (v1.Hash, error)            { return l.meta.DiffID, nil }
func (l *fileGzLayer) Size() (int64, error)                { return l.meta.Size, nil }
func (l *fileGzLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *fileGzLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

// pruneSlipwayLayers keeps the slipway layer in use and drops the others:
// every build of slipway makes a new one.
func pruneSlipwayLayers(dir, keep string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "slipway-*.tar.gz"))
	for _, m := range matches {
		if filepath.Base(m) != keep+".tar.gz" {
			os.Remove(m)
			os.Remove(m + ".json")
		}
	}
}

// debianRootfs makes the CI image's root filesystem.
func debianRootfs(ctx context.Context, opts CIImageOptions, w io.Writer) error {
	fmt.Fprintf(opts.Progress, "making the CI image's root filesystem from Debian %s with mmdebstrap (once per machine, about a minute)\n", ciSuite)
	home := "/home/" + nonRootName
	user := fmt.Sprintf("%s:x:%d:%d::%s:/bin/bash", nonRootName, nonRootUID, nonRootUID, home)
	group := fmt.Sprintf("%s:x:%d:", nonRootName, nonRootUID)
	hook := fmt.Sprintf(`echo '%s' >> "$1/etc/passwd" && echo '%s' >> "$1/etc/group" && mkdir -p "$1%s" "$1/work" "$1/cache" && chown %d:%d "$1%s" "$1/work" "$1/cache"`,
		user, group, home, nonRootUID, nonRootUID, home)
	return debootstrap(ctx, debianRecipe{Suite: ciSuite, Variant: "essential", Packages: ciPackages, Mirror: opts.Mirror, CustomizeHooks: []string{hook}}, w)
}

// debianRecipe is a root filesystem made by mmdebstrap from one Debian
// suite.
type debianRecipe struct {
	Suite    string
	Variant  string // essential, minbase...
	Packages []string
	Mirror   string
	// Exclude are dpkg path-exclude patterns, besides the documentation
	// every recipe leaves out.
	Exclude []string
	// EssentialHooks run after the essential packages are installed and
	// before Packages are; CustomizeHooks run at the end. Each is a shell
	// command with the root directory as $1.
	EssentialHooks, CustomizeHooks []string
}

// key names the recipe in the cache: a change of any part makes a new
// root filesystem.
func (r debianRecipe) key() string {
	parts := []string{r.Suite, r.Variant, r.Mirror, strings.Join(r.Packages, ","), strings.Join(r.Exclude, ",")}
	parts = append(parts, r.EssentialHooks...)
	parts = append(parts, "--")
	parts = append(parts, r.CustomizeHooks...)
	return keyOf(parts...)
}

// debootstrap runs mmdebstrap and writes the root filesystem as a tar,
// dated at the epoch.
func debootstrap(ctx context.Context, r debianRecipe, w io.Writer) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("mmdebstrap is not installed (apt-get install mmdebstrap)")
	}
	args := []string{"--variant=" + r.Variant, "--include=" + strings.Join(r.Packages, ",")}
	for _, x := range append([]string{"/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*"}, r.Exclude...) {
		args = append(args, "--dpkgopt=path-exclude="+x)
	}
	for _, h := range r.EssentialHooks {
		args = append(args, "--essential-hook="+h)
	}
	for _, h := range r.CustomizeHooks {
		args = append(args, "--customize-hook="+h)
	}
	args = append(args, "--format=tar", r.Suite, "-", r.Mirror)
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Stdout = w
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	if err := cmd.Run(); err != nil {
		tail := stderr.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("mmdebstrap: %v\n%s", err, tail)
	}
	return nil
}

// treeLayer writes dir as prefix/... in a tar, owned by root, leaving out
// the top-level directories in skip.
func treeLayer(w io.Writer, dir, prefix string, skip map[string]bool) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	if err := parentDirs(tw, prefix, epoch); err != nil {
		return err
	}
	if err := fsutil.TarTree(tw, dir, fsutil.TarOptions{Prefix: prefix, Skip: skip, ModTime: epoch}); err != nil {
		return err
	}
	return tw.Close()
}

// parentDirs writes the directories above name, root-owned, 0755.
func parentDirs(tw *tar.Writer, name string, mtime time.Time) error {
	parts := strings.Split(name, "/")
	for i := range parts[:len(parts)-1] {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(parts[:i+1], "/") + "/", Mode: 0o755, ModTime: mtime}); err != nil {
			return err
		}
	}
	return nil
}

// fileLayer writes one executable file at name.
func fileLayer(w io.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	if err := parentDirs(tw, name, epoch); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: st.Size(), ModTime: epoch}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return err
	}
	return tw.Close()
}
