package build

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/internal/gitcmd"
	"github.com/slipway-dev/slipway/internal/sourcedate"
)

// Small programs Slipway compiles into images: the static site server and
// the HTTP check that charts' test pods run.
//
//go:embed programs/static-server.go.txt
var staticServerSource []byte

//go:embed programs/http-check.go.txt
var httpCheckSource []byte

//go:embed programs/pause.go.txt
var pauseSource []byte

// Kind is what is being built.
type Kind string

const (
	KindGo     Kind = "go"
	KindStatic Kind = "static"
	// Slipway's own images: the test pods' HTTP check, the pod sandbox,
	// and a prebuilt program (Options.Binary).
	kindHTTPCheck Kind = "http-check"
	kindPause     Kind = "pause"
	kindBinary    Kind = "binary"
)

// Options describe one build.
type Options struct {
	// Dir is a Go main package, or a directory of static files.
	Dir string
	// Kind is KindGo or KindStatic; empty picks by what Dir holds.
	Kind Kind
	// Name is the program name in the image; empty uses Dir's base name.
	Name string
	// Binary, for Slipway's own images, is a program already built for the
	// single platform asked for; it is used as it is.
	Binary string
	// BinaryAt, with Binary, is the program's path in the image when it
	// must be a fixed one (default /app/NAME); the image's working
	// directory is then /.
	BinaryAt string
	// BinaryLinks, with BinaryAt, are more paths that link to it.
	BinaryLinks []string
	// Platforms to build; at least one.
	Platforms []v1.Platform
	// Base is a base image reference; empty uses Slipway's built-in base.
	Base string
	// Env adds KEY=VALUE pairs to the image's environment.
	Env []string
	// Ports are exposed TCP ports.
	Ports []int
	// Created is the image creation time; by default SOURCE_DATE_EPOCH, or
	// the Unix epoch, so builds are reproducible.
	Created time.Time
	// Revision and Source go into the org.opencontainers.image annotations;
	// empty values are read from git when Dir is in a repository.
	Revision, Source string
	// Version goes into org.opencontainers.image.version when set.
	Version string
	// CacheDir keeps compiled helper programs between builds.
	CacheDir string
	// Keychain finds credentials for a base image in a registry.
	Keychain authn.Keychain
	// Insecure allows plain HTTP to the base image's registry.
	Insecure bool
	// Progress receives status lines; nil discards them.
	Progress io.Writer
}

// Image is a built, not yet published, image index.
type Image struct {
	Index     v1.ImageIndex
	Digest    v1.Hash
	Platforms []string
	Base      string
	Revision  string
	Source    string
}

// Build compiles the app and assembles the image index in memory.
func Build(ctx context.Context, opts Options) (*Image, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: give the directory of the app to build", opts.Dir)
	}
	kind := opts.Kind
	if kind == "" {
		kind = detectKind(dir)
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(dir)
	}
	if !validProgramName(name) {
		return nil, fmt.Errorf("program name %q: use letters, digits, '.', '_' and '-' (set it with --name)", name)
	}

	if kind == KindGo {
		if err := goModule(ctx, dir); err != nil {
			return nil, err
		}
	}
	base, baseName, err := opts.baseIndex(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Revision == "" {
		opts.Revision = gitcmd.Output(dir, "rev-parse", "HEAD")
	}
	if opts.Source == "" {
		opts.Source = gitcmd.Output(dir, "config", "--get", "remote.origin.url")
	}

	work, err := os.MkdirTemp("", "slipway-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	fmt.Fprintf(progress, "building %s (%s) for %s\n", name, kind, joinPlatforms(opts.Platforms))
	images := make([]v1.Image, len(opts.Platforms))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range opts.Platforms {
		g.Go(func() error {
			img, err := opts.platformImage(gctx, kind, dir, name, filepath.Join(work, strconv.Itoa(i)), base, p)
			images[i] = img
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	return assemble(images, opts, name, baseName)
}

// assemble puts per-platform images into one annotated OCI index.
func assemble(images []v1.Image, opts Options, name, baseName string) (*Image, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range images {
		p := opts.Platforms[i]
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	idx = mutate.Annotations(idx, opts.annotations(name, baseName)).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	var plats []string
	for _, p := range opts.Platforms {
		plats = append(plats, platformString(p))
	}
	return &Image{Index: idx, Digest: digest, Platforms: plats, Base: baseName, Revision: opts.Revision, Source: opts.Source}, nil
}

// HTTPCheckImage builds the image that charts' test pods run: Slipway's
// base plus http-check, which exits 0 when every URL it is given answers
// 2xx.
func HTTPCheckImage(ctx context.Context, cacheDir string, platforms []v1.Platform) (*Image, error) {
	return ownImage(ctx, Options{Kind: kindHTTPCheck, Name: "http-check", Platforms: platforms, CacheDir: cacheDir})
}

// PauseImage builds the pod sandbox ("pause") image for the local cluster.
func PauseImage(ctx context.Context, cacheDir string, platforms []v1.Platform) (*Image, error) {
	return ownImage(ctx, Options{Kind: kindPause, Name: "pause", Platforms: platforms, CacheDir: cacheDir})
}

// BinaryImage puts a program that is already built for p (such as CoreDNS
// from the pinned components) on Slipway's base image.
func BinaryImage(ctx context.Context, cacheDir, binary, name string, p v1.Platform) (*Image, error) {
	return ownImage(ctx, Options{Kind: kindBinary, Binary: binary, Name: name, Platforms: []v1.Platform{p}, CacheDir: cacheDir})
}

// BinaryImageAt is BinaryImage with the program at a fixed path and
// links to it, for programs that find themselves by path (CloudNativePG's
// operator looks for operator/manager_ARCH under its working directory
// and copies /manager into every PostgreSQL pod).
func BinaryImageAt(ctx context.Context, cacheDir, binary, at string, links []string, p v1.Platform) (*Image, error) {
	return ownImage(ctx, Options{Kind: kindBinary, Binary: binary, BinaryAt: at, BinaryLinks: links, Name: path.Base(at), Platforms: []v1.Platform{p}, CacheDir: cacheDir})
}

// ownImage builds one of Slipway's own images on its base, dated at the
// epoch so they are the same on every machine with the same Go release.
func ownImage(ctx context.Context, opts Options) (*Image, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	opts.Created = time.Unix(0, 0).UTC()
	base, err := BaseIndex(opts.Platforms)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "slipway-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	images := make([]v1.Image, len(opts.Platforms))
	for i, p := range opts.Platforms {
		if images[i], err = opts.platformImage(ctx, opts.Kind, "", opts.Name, filepath.Join(work, strconv.Itoa(i)), base, p); err != nil {
			return nil, err
		}
	}
	return assemble(images, opts, opts.Name, BuiltinBase)
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		o.Dir = "."
	}
	if len(o.Platforms) == 0 {
		o.Platforms = []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}
	}
	switch o.Kind {
	case "", KindGo, KindStatic, kindHTTPCheck, kindPause, kindBinary:
	default:
		return fmt.Errorf("kind %q: want go or static", o.Kind)
	}
	if o.Created.IsZero() {
		created, err := sourcedate.Get()
		if err != nil {
			return err
		}
		o.Created = created
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	for _, e := range o.Env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return fmt.Errorf("environment entry %q: write it as KEY=VALUE", e)
		}
	}
	for _, p := range o.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("port %d: want 1 to 65535", p)
		}
	}
	return nil
}

func detectKind(dir string) Kind {
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err == nil {
		if matches, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(matches) == 0 {
			return KindStatic
		}
	}
	return KindGo
}

func validProgramName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// baseIndex returns the base image index and its name for annotations.
func (o *Options) baseIndex(ctx context.Context) (v1.ImageIndex, string, error) {
	if o.Base == "" {
		idx, err := BaseIndex(o.Platforms)
		return idx, BuiltinBase, err
	}
	var nameOpts []name.Option
	if o.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(o.Base, nameOpts...)
	if err != nil {
		return nil, "", fmt.Errorf("base image %q: %w", o.Base, err)
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(o.Keychain))
	if err != nil {
		return nil, "", RegistryError(ref.Context().RegistryStr(), fmt.Errorf("fetching base image %s: %w", o.Base, err))
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		return idx, ref.String() + "@" + desc.Digest.String(), err
	}
	// A single-platform base: wrap it so the rest of the build is the same.
	img, err := desc.Image()
	if err != nil {
		return nil, "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, "", err
	}
	p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	return idx, ref.String() + "@" + desc.Digest.String(), nil
}

// baseFor picks the base image for one platform.
func baseFor(idx v1.ImageIndex, p v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture && (p.Variant == "" || d.Platform.Variant == p.Variant) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("the base image has no %s variant: pick a base image that has one, or build for the platforms it has", platformString(p))
}

// platformImage builds the image for one platform.
func (o *Options) platformImage(ctx context.Context, kind Kind, dir, name, work string, base v1.ImageIndex, p v1.Platform) (v1.Image, error) {
	baseImg, err := baseFor(base, p)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	binPath := filepath.Join(work, name)
	var entries []entry
	var entrypoint []string
	ports := o.Ports
	switch kind {
	case KindGo:
		if err := goBuild(ctx, dir, binPath, p); err != nil {
			return nil, err
		}
	case kindHTTPCheck:
		if binPath, err = helperProgram(ctx, o.CacheDir, "http-check", httpCheckSource, p); err != nil {
			return nil, err
		}
	case kindPause:
		if binPath, err = helperProgram(ctx, o.CacheDir, "pause", pauseSource, p); err != nil {
			return nil, err
		}
	case kindBinary:
		binPath = o.Binary
	case KindStatic:
		if binPath, err = helperProgram(ctx, o.CacheDir, "static-server", staticServerSource, p); err != nil {
			return nil, err
		}
		files, err := dirEntries(dir, "srv/www")
		if err != nil {
			return nil, err
		}
		entries = append(entries, files...)
		if len(ports) == 0 {
			ports = []int{8080}
		}
	}
	appPath := "app/" + name
	linksKey := ""
	if kind == kindBinary && o.BinaryAt != "" {
		appPath = strings.TrimPrefix(path.Clean("/"+o.BinaryAt), "/")
		for _, l := range o.BinaryLinks {
			name := strings.TrimPrefix(path.Clean("/"+l), "/")
			entries = append(entries, entry{name: name, mode: 0o777, link: "/" + appPath})
			linksKey += "\x00" + name
		}
	}
	entrypoint = []string{"/" + appPath}
	if kind == KindStatic {
		appPath = "app/static-server"
		entrypoint = []string{"/" + appPath, "-root", "/srv/www"}
	}
	// The layer of a cached program (the platform's own images) is known
	// by the program file's identity: every start of the platform makes
	// the same images of the same programs. A program built for the
	// occasion (KindGo) is in a new file each time, so it goes the long way.
	var memo string
	if (kind == kindBinary || kind == kindPause || kind == kindHTTPCheck) && o.CacheDir != "" {
		memo = programLayerKey(binPath, appPath+linksKey, o.Created)
	}
	layer, ok := cachedProgramLayer(o.CacheDir, memo)
	if !ok {
		bin, err := os.ReadFile(binPath)
		if err != nil {
			return nil, fmt.Errorf("reading the program: %w", err)
		}
		entries = append(entries, entry{name: appPath, mode: 0o755, data: bin})
		if layer, err = layerFromEntries(entries, o.Created, o.CacheDir); err != nil {
			return nil, err
		}
		rememberProgramLayer(o.CacheDir, memo, layer)
	}
	img, err := appendLayer(baseImg, layer, "slipway build "+string(kind), o.Created, func(cf *v1.ConfigFile) {
		cf.Config.Entrypoint = entrypoint
		if kind == kindBinary && o.BinaryAt != "" {
			cf.Config.WorkingDir = "/"
		}
		cf.Config.Cmd = nil
		cf.Config.Env = mergeEnv(cf.Config.Env, o.Env)
		if cf.Config.User == "" {
			cf.Config.User = fmt.Sprintf("%d:%d", nonRootUID, nonRootUID)
		}
		if len(ports) > 0 {
			cf.Config.ExposedPorts = map[string]struct{}{}
			for _, port := range ports {
				cf.Config.ExposedPorts[fmt.Sprintf("%d/tcp", port)] = struct{}{}
			}
		}
		cf.Config.Labels = o.annotations(name, "")
	})
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, o.annotations(name, "")).(v1.Image), nil
}

func (o *Options) annotations(name, base string) map[string]string {
	a := map[string]string{
		"org.opencontainers.image.title":   name,
		"org.opencontainers.image.created": o.Created.Format(time.RFC3339),
	}
	if o.Revision != "" {
		a["org.opencontainers.image.revision"] = o.Revision
	}
	if o.Source != "" {
		a["org.opencontainers.image.source"] = o.Source
		a["org.opencontainers.image.url"] = o.Source
	}
	if o.Version != "" {
		a["org.opencontainers.image.version"] = o.Version
	}
	if base != "" {
		a["org.opencontainers.image.base.name"] = base
	}
	return a
}

// mergeEnv applies KEY=VALUE overrides over a base environment, keeping
// the base's order.
func mergeEnv(base, extra []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range extra {
		key := kv[:strings.Index(kv, "=")+1]
		replaced := false
		for i, have := range out {
			if strings.HasPrefix(have, key) {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// dirEntries reads every regular file under dir into layer entries below
// prefix, skipping dot files (such as .git).
func dirEntries(dir, prefix string) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, entry{name: path.Join(prefix, filepath.ToSlash(rel)), mode: 0o644, data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading site files: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no files to serve", dir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// helperProgram compiles one of the embedded programs for p, once per Go
// release and source, and returns the path of the cached binary.
func helperProgram(ctx context.Context, cacheDir, name string, source []byte, p v1.Platform) (string, error) {
	goVersion, err := goEnv("GOVERSION")
	if err != nil {
		return "", fmt.Errorf("the Go toolchain is needed to build %s: %w", name, err)
	}
	sum := sha256.Sum256(append(append([]byte{}, source...), goVersion...))
	key := hex.EncodeToString(sum[:8])
	if cacheDir == "" {
		cacheDir = filepath.Join(os.TempDir(), "slipway-cache")
	}
	cached := filepath.Join(cacheDir, name, key, p.OS+"-"+p.Architecture+p.Variant)
	if _, err := os.Stat(cached); err == nil {
		return cached, nil
	}
	src, err := os.MkdirTemp("", name+"-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module "+name+"\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), source, 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return "", err
	}
	// Build beside the cache entry and rename, so a concurrent build never
	// reads a half-written binary.
	tmp := cached + ".tmp" + strconv.Itoa(os.Getpid())
	if err := goBuild(ctx, src, tmp, p); err != nil {
		return "", err
	}
	return cached, os.Rename(tmp, cached)
}

func joinPlatforms(ps []v1.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, platformString(p))
	}
	return strings.Join(s, ", ")
}
