// Package components builds the pinned upstream programs Slipway runs
// (etcd, the Kubernetes components, CoreDNS, Flux) from small pinning
// modules, with the Go toolchain and the Go module proxy, and caches them
// by the exact pins: a family is rebuilt only when its go.mod, go.sum,
// build flags or the Go release change.
//
// The pinning modules live in pins/ and are embedded in the slipway
// binary, so a binary installed anywhere can build them; their files end
// in ".pin" (go.mod.pin, go.sum.pin) because a go.mod would make each a
// module of its own, which Go cannot embed. They are written out, without
// the suffix, next to the cache when a build is needed. To change a pin,
// use scripts/pin, which restores the names for the go command.
package components

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Family is one pinning module and the programs built from it.
type Family struct {
	// Dir is the module's directory under components/.
	Dir string
	// Programs maps a program name to its package path.
	Programs map[string]string
	// Links are more names for a program that answers to several (a link
	// name maps to the program it is a link of): the program runs the
	// part it is called as.
	Links map[string]string
	// LDFlags are passed to go build (version stamps).
	LDFlags string
	// Tags, when set, are passed to go build -tags.
	Tags string
	// Why is told to the user while a first build runs.
	Why string
	// Files are copied from the sources of the modules the family pins
	// into the cache next to the programs (Flux's CRDs, for one).
	Files []ModuleFiles
	// Placeholders are files written into a vendored copy of the module's
	// dependencies before building, for packages that embed files their
	// published module does not ship. Keys are paths under vendor/.
	// A family with placeholders is built with -mod=vendor.
	Placeholders map[string]string
	// Importable are modules whose root package is a program that one of
	// the family's programs imports, to run several upstream programs
	// from one executable: module path → the package name it gets. Each
	// is built from a copy in which that package is renamed and its main
	// function exported as Main (see makeImportable).
	Importable map[string]string
}

// ModuleFiles names files in a pinned module's source tree.
type ModuleFiles struct {
	// Module is the module path, as required by the pinning module.
	Module string
	// Glob is matched inside the module's directory, such as
	// "config/crd/bases/*.yaml".
	Glob string
	// Into is the directory under the family's cache directory they are
	// copied to; Ensure returns its path under this same key.
	Into string
}

// KubernetesVersions are the Kubernetes releases Slipway can run, oldest
// first, one pinning module each under pins/kubernetes/vMAJOR.MINOR (the
// programs' sources they share are in pins/kubernetes/shared).
// A new cluster starts on the newest; an existing one keeps its version
// until ops upgrades it (`slipway cluster upgrade`).
var KubernetesVersions = []string{"v1.36.3", "v1.37.2"}

// KubernetesVersion is the newest pinned release, the one new clusters run.
var KubernetesVersion = KubernetesVersions[len(KubernetesVersions)-1]

// etcdVersions are the etcd releases each Kubernetes release pins (the
// version kubeadm installs with it), as its pinning module requires.
var etcdVersions = map[string]string{"v1.36.3": "v3.6.8", "v1.37.2": "v3.7.0"}

// EtcdVersion is the etcd release that goes with a Kubernetes release.
func EtcdVersion(kubernetes string) string { return etcdVersions[kubernetes] }

// Kubernetes is etcd and the Kubernetes programs of the newest release.
var Kubernetes = mustKubernetesFamily(KubernetesVersion)

// KubernetesFamily is etcd, its tools and the Kubernetes programs of one
// pinned release.
func KubernetesFamily(version string) (Family, error) {
	if EtcdVersion(version) == "" {
		return Family{}, fmt.Errorf("Kubernetes %s is not one this slipway can run (it has %s)", version, strings.Join(KubernetesVersions, ", "))
	}
	return Family{
		Dir: "kubernetes/" + MinorOf(version),
		Programs: map[string]string{
			"etcd":          "./cmd/etcd",
			"etcdctl":       "go.etcd.io/etcd/etcdctl/v3",
			"etcdutl":       "go.etcd.io/etcd/etcdutl/v3",
			"api-lifecycle": "./cmd/api-lifecycle",
			"kube-node":     "./cmd/kube-node",
			"kubectl":       "k8s.io/kubernetes/cmd/kubectl",
		},
		// The node's five programs are one executable (see
		// cmd/kube-node in the pins): one link step in the first build,
		// and one copy of their common code in memory. Under the name
		// kube-control-plane it runs the first three in one process.
		Links: map[string]string{
			"kube-control-plane":      "kube-node",
			"kube-apiserver":          "kube-node",
			"kube-controller-manager": "kube-node",
			"kube-scheduler":          "kube-node",
			"kubelet":                 "kube-node",
			"kube-proxy":              "kube-node",
		},
		LDFlags: kubeVersionFlags(version),
		Why:     "etcd and Kubernetes " + version + " are compiled from source once, then cached",
	}, nil
}

func mustKubernetesFamily(version string) Family {
	f, err := KubernetesFamily(version)
	if err != nil {
		panic(err) // the pinned versions are compiled in
	}
	return f
}

// MinorOf is "v1.37" for "v1.37.2".
func MinorOf(version string) string {
	if i := strings.LastIndex(version, "."); strings.Count(version, ".") == 2 {
		return version[:i]
	}
	return version
}

// kubeVersionFlags stamps the version kubectl and the components report;
// without them they report one kubectl cannot parse.
func kubeVersionFlags(v string) string {
	major, rest, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	minor, _, _ := strings.Cut(rest, ".")
	var b strings.Builder
	b.WriteString("-s -w")
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean -X %s.buildDate=1970-01-01T00:00:00Z",
			pkg, v, pkg, major, pkg, minor, pkg, pkg)
	}
	return b.String()
}

//go:embed all:pins
var embedded embed.FS

// Pins are the pinning modules embedded in the binary, one directory per
// family.
func Pins() fs.FS {
	sub, err := fs.Sub(embedded, "pins")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// pinSuffix ends the name of every embedded pinning file.
const pinSuffix = ".pin"

// Options say where pins are read and binaries cached.
type Options struct {
	// Source holds the pinning modules, one directory per family; nil
	// means the ones embedded in the binary (Pins). Names may end in
	// ".pin", which is dropped.
	Source fs.FS
	// CacheDir keeps the built programs.
	CacheDir string
	// Progress receives what is being built and how long it has taken.
	Progress io.Writer
}

// Ensure returns the path of every program of the family, building them
// first when the cache does not hold this exact pin.
func Ensure(ctx context.Context, fam Family, opts Options) (map[string]string, error) {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	source := opts.Source
	if source == nil {
		source = Pins()
	}
	files, err := pinFiles(source, fam.Dir)
	if err != nil {
		return nil, err
	}
	key, err := pinKey(files, fam)
	if err != nil {
		return nil, err
	}
	binDir := filepath.Join(opts.CacheDir, "components", fam.Dir+"-"+key)
	// Preparations running at once may need the same family (the node's
	// programs and the CI image's kubectl): the first builds it, the
	// others wait and find it built.
	unlock := lockBuild(binDir)
	defer unlock()
	paths := map[string]string{}
	missing := false
	for name := range fam.Programs {
		paths[name] = filepath.Join(binDir, name)
		if _, err := os.Stat(paths[name]); err != nil {
			missing = true
		}
	}
	for link := range fam.Links {
		paths[link] = filepath.Join(binDir, link)
		if _, err := os.Stat(paths[link]); err != nil {
			missing = true
		}
	}
	for _, f := range fam.Files {
		paths[f.Into] = filepath.Join(binDir, f.Into)
		if _, err := os.Stat(paths[f.Into]); err != nil {
			missing = true
		}
	}
	if !missing {
		return paths, nil
	}

	names := make([]string, 0, len(fam.Programs))
	pkgs := make([]string, 0, len(fam.Programs))
	for name := range fam.Programs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pkgs = append(pkgs, fam.Programs[name])
	}
	last := lastBuildTime(opts.CacheDir, fam.timeKey())
	what := strings.Join(names, ", ")
	if what == "" {
		what = fam.Dir + "'s files"
	}
	fmt.Fprintf(progress, "building %s (%s; %s)\n", what, fam.Why, aboutLastTime(last))
	tmp := binDir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	// The progress line every 30 s covers the whole build, preparing the
	// modules included (on a new machine, that downloads them).
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintf(progress, "  still building %s (%s)\n", fam.Dir, soFar(time.Since(start), last))
			}
		}
	}()
	src := binDir + ".mod"
	defer os.RemoveAll(src)
	if err := writeFiles(src, files); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("writing the pins of %s: %w", fam.Dir, err)
	}
	// A family of files alone (Flux's CRDs for images built elsewhere)
	// compiles nothing.
	if len(pkgs) > 0 {
		if err := compile(ctx, fam, src, tmp, pkgs); err != nil {
			_ = os.RemoveAll(tmp)
			return nil, err
		}
	}
	for link, program := range fam.Links {
		// Relative, so that the link survives the rename below.
		if err := os.Symlink(program, filepath.Join(tmp, link)); err != nil {
			_ = os.RemoveAll(tmp)
			return nil, err
		}
	}
	for _, f := range fam.Files {
		if err := copyModuleFiles(ctx, src, f, filepath.Join(tmp, f.Into)); err != nil {
			_ = os.RemoveAll(tmp)
			return nil, fmt.Errorf("%s: %w", fam.Dir, err)
		}
	}
	// Programs built for the main package "etcd" come out named after
	// their directory; all names match the map keys already.
	_ = os.RemoveAll(binDir)
	if err := os.Rename(tmp, binDir); err != nil {
		return nil, err
	}
	took := time.Since(start)
	if err := rememberBuildTime(opts.CacheDir, fam.timeKey(), took); err != nil {
		fmt.Fprintf(progress, "  (could not record the build time: %v)\n", err)
	}
	fmt.Fprintf(progress, "built %s in %s\n", fam.Dir, took.Round(time.Second))
	return paths, nil
}

// timeKey names the family's build time on record: its directory, and
// apart from the programs' build, a build of its files alone.
func (fam Family) timeKey() string {
	if len(fam.Programs) == 0 {
		return fam.Dir + " files"
	}
	return fam.Dir
}

// compile builds the family's packages from its pinning module in src
// into dir.
func compile(ctx context.Context, fam Family, src, dir string, pkgs []string) error {
	if len(fam.Importable) > 0 {
		if err := makeImportable(ctx, src, fam.Importable); err != nil {
			return fmt.Errorf("preparing %s: %w", fam.Dir, err)
		}
	}
	goflags := "-mod=mod"
	if len(fam.Placeholders) > 0 {
		if err := vendorWithPlaceholders(ctx, src, fam.Placeholders); err != nil {
			return fmt.Errorf("preparing %s: %w", fam.Dir, err)
		}
		goflags = "-mod=vendor"
	}
	args := []string{"build", "-trimpath", "-ldflags", fam.LDFlags}
	if fam.Tags != "" {
		args = append(args, "-tags", fam.Tags)
	}
	args = append(append(args, "-o", dir+"/"), pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS="+goflags)
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("building %s failed:\n%s", fam.Dir, strings.TrimSpace(output.String()))
	}
	return nil
}

// buildLocks holds a mutex per build directory (binDir).
var buildLocks sync.Map

// lockBuild serialises Ensure calls for one build directory in this
// process.
func lockBuild(binDir string) (unlock func()) {
	m, _ := buildLocks.LoadOrStore(binDir, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// pinFiles reads a family's pinning module: contents by path relative
// to the module, with the ".pin" suffix dropped. A module in a group of
// them (pins/GROUP/NAME, such as kubernetes/v1.37) first takes the files
// of pins/GROUP/shared, sources that every module of the group builds;
// its own files are laid over them.
func pinFiles(source fs.FS, dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	if group := path.Dir(dir); group != "." {
		shared := path.Join(group, sharedPins)
		if _, err := fs.Stat(source, shared); err == nil {
			if err := readPins(source, shared, files); err != nil {
				return nil, err
			}
		}
	}
	if err := readPins(source, dir, files); err != nil {
		return nil, err
	}
	if _, ok := files["go.mod"]; !ok {
		return nil, fmt.Errorf("the pinning module %s has no go.mod", dir)
	}
	return files, nil
}

// sharedPins names the directory of a group's shared pin files.
const sharedPins = "shared"

// readPins adds the files under dir to files.
func readPins(source fs.FS, dir string, files map[string][]byte) error {
	err := fs.WalkDir(source, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(source, p)
		if err != nil {
			return err
		}
		files[strings.TrimSuffix(strings.TrimPrefix(p, dir+"/"), pinSuffix)] = data
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the pinning module %s: %w", dir, err)
	}
	return nil
}

// writeFiles writes a pinning module out, for the go command.
func writeFiles(dir string, files map[string][]byte) error {
	_ = os.RemoveAll(dir)
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// pinKey hashes what decides the binaries: the module's files, the flags
// and the Go release.
func pinKey(files map[string][]byte, fam Family) (string, error) {
	h := sha256.New()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, rel := range names {
		data := files[rel]
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.FromSlash(rel), len(data))
		h.Write(data)
	}
	goVersion, err := toolchainVersion()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%s\x00%s", fam.LDFlags, goVersion)
	if fam.Tags != "" {
		fmt.Fprintf(h, "\x00tags=%s", fam.Tags)
	}
	if len(fam.Links) > 0 {
		links := make([]string, 0, len(fam.Links))
		for link, program := range fam.Links {
			links = append(links, link+"="+program)
		}
		sort.Strings(links)
		fmt.Fprintf(h, "\x00links=%s", strings.Join(links, ","))
	}
	placeholders := make([]string, 0, len(fam.Placeholders))
	for rel := range fam.Placeholders {
		placeholders = append(placeholders, rel)
	}
	sort.Strings(placeholders)
	for _, rel := range placeholders {
		fmt.Fprintf(h, "\x00placeholder=%s\x00%d\x00%s", rel, len(fam.Placeholders[rel]), fam.Placeholders[rel])
	}
	for _, mod := range slices.Sorted(maps.Keys(fam.Importable)) {
		fmt.Fprintf(h, "\x00importable=%s=%s", mod, fam.Importable[mod])
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// toolchainVersion is `go env GOVERSION`, asked once per process: every
// family's key needs it, and a start checks seven families.
var toolchainVersion = sync.OnceValues(func() ([]byte, error) {
	v, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return nil, errors.New("the Go toolchain (`go`) is needed to build the cluster's programs: install Go")
	}
	return v, nil
})

// CoreDNSVersion is the version the pins in components/coredns name.
const CoreDNSVersion = "v1.13.1"

// CoreDNS is the cluster's DNS server, with the plugins its Corefile uses
// (pins/coredns/cmd/coredns).
var CoreDNS = Family{
	Dir:      "coredns",
	Programs: map[string]string{"coredns": "./cmd/coredns"},
	LDFlags:  "-s -w",
	Why:      "CoreDNS " + CoreDNSVersion + " is compiled from source once, then cached",
}

// PrometheusVersion and AlertmanagerVersion are the versions the pins in
// components/prometheus and components/alertmanager name (Prometheus
// 3.16.0 is published as module v0.316.0).
const (
	PrometheusVersion   = "v3.16.0"
	AlertmanagerVersion = "v0.35.0"
)

// Prometheus is the platform's metrics store and rule evaluator. Of its
// service discoveries only Kubernetes's is compiled in, which halves the
// build; its web UI's assets are not in the module, and its HTTP API,
// which Slipway reads, does not need them.
var Prometheus = Family{
	Dir:      "prometheus",
	Programs: map[string]string{"prometheus": "github.com/prometheus/prometheus/cmd/prometheus"},
	Tags:     "remove_all_sd,enable_kubernetes_sd",
	LDFlags:  "-s -w -X github.com/prometheus/common/version.Version=" + strings.TrimPrefix(PrometheusVersion, "v"),
	Why:      "Prometheus " + PrometheusVersion + " is compiled from source once, then cached",
}

// Alertmanager routes, groups, inhibits and silences the alerts. Its UI
// package embeds files built with Elm and npm that the published module
// lacks; no Elm compiler can be fetched here, so a page in their place
// points at slipway alerts and Alertmanager's API, which is whole.
var Alertmanager = Family{
	Dir:      "alertmanager",
	Programs: map[string]string{"alertmanager": "github.com/prometheus/alertmanager/cmd/alertmanager"},
	LDFlags:  "-s -w -X github.com/prometheus/common/version.Version=" + strings.TrimPrefix(AlertmanagerVersion, "v"),
	Why:      "Alertmanager " + AlertmanagerVersion + " is compiled from source once, then cached",
	Placeholders: map[string]string{
		// It serves HTML only compressed (index.html.gz).
		"github.com/prometheus/alertmanager/ui/app/dist/elm/index.html.gz":     gzipped(alertmanagerUIPage),
		"github.com/prometheus/alertmanager/ui/app/dist/mantine/index.html.gz": gzipped(alertmanagerUIPage),
	},
}

const alertmanagerUIPage = `<!doctype html><title>Alertmanager</title>
<p>This Alertmanager is built without its web UI. Use <code>slipway alerts</code> and
<code>slipway silence</code>, or its API under <a href="api/v2/alerts">api/v2</a>.
`

// gzipped compresses a placeholder the same way every time (no name, no
// time in the header), so it keys the cache the same way every time.
func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

// FluxVersion is the Flux distribution the controllers below belong to.
const FluxVersion = "v2.9.5"

// Flux's controllers, from one pinning module, so what they share is
// compiled once. The family also keeps each controller's CRDs, under
// "crds".
//
// The four are one executable, flux-controllers (pins/flux/controllers/
// cmd/flux-controllers), which runs the controller it is called as: one
// link in the first build instead of four, one image layer, and one copy
// of the code in memory shared by the four processes.
var FluxControllers = Family{
	Dir:      "flux/controllers",
	Programs: map[string]string{"flux-controllers": "./cmd/flux-controllers"},
	Links: map[string]string{
		"source-controller":       "flux-controllers",
		"kustomize-controller":    "flux-controllers",
		"helm-controller":         "flux-controllers",
		"notification-controller": "flux-controllers",
	},
	Importable: map[string]string{
		"github.com/fluxcd/source-controller":       "sourcecontroller",
		"github.com/fluxcd/kustomize-controller":    "kustomizecontroller",
		"github.com/fluxcd/helm-controller":         "helmcontroller",
		"github.com/fluxcd/notification-controller": "notificationcontroller",
	},
	LDFlags: "-s -w",
	Why:     "Flux " + FluxVersion + "'s controllers are compiled from source once, then cached",
	Files: []ModuleFiles{
		{Module: "github.com/fluxcd/source-controller", Glob: "config/crd/bases/*.yaml", Into: "crds"},
		{Module: "github.com/fluxcd/kustomize-controller", Glob: "config/crd/bases/*.yaml", Into: "crds"},
		{Module: "github.com/fluxcd/helm-controller", Glob: "config/crd/bases/*.yaml", Into: "crds"},
		{Module: "github.com/fluxcd/notification-controller", Glob: "config/crd/bases/*.yaml", Into: "crds"},
	},
}

// FluxCRDs are Flux's CRDs alone, from the same pinned modules as
// FluxControllers: what a cluster that pulls Flux's own images needs
// (cluster.fluxImages). Nothing is compiled; the modules are downloaded.
var FluxCRDs = Family{
	Dir:   FluxControllers.Dir,
	Why:   "Flux's CRDs are copied from its pinned modules once, then cached",
	Files: FluxControllers.Files,
}

// FluxCLI is the flux command line, used by the tests to check the
// cluster's Flux the way its users would. Its package embeds
// manifests/*.yaml, which the published module lacks; only `flux install`
// reads them, so an empty placeholder is enough for everything else.
var FluxCLI = Family{
	Dir:          "flux/cli",
	Programs:     map[string]string{"flux": "github.com/fluxcd/flux2/v2/cmd/flux"},
	LDFlags:      "-s -w -X main.VERSION=" + strings.TrimPrefix(FluxVersion, "v"),
	Why:          "the flux CLI " + FluxVersion + " is compiled from source once, then cached",
	Placeholders: map[string]string{"github.com/fluxcd/flux2/v2/cmd/flux/manifests/placeholder.yaml": "# flux install is not used from this build\n"},
}

// copyModuleFiles copies the files f names out of the module cache.
func copyModuleFiles(ctx context.Context, src string, f ModuleFiles, into string) error {
	dir, err := moduleDir(ctx, src, f.Module)
	if err != nil {
		return err
	}
	matches, err := filepath.Glob(filepath.Join(dir, f.Glob))
	if err != nil || len(matches) == 0 {
		return fmt.Errorf("no files match %s in module %s", f.Glob, f.Module)
	}
	if err := os.MkdirAll(into, 0o755); err != nil {
		return err
	}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(into, filepath.Base(m)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// vendorWithPlaceholders vendors the dependencies of the pinning module
// written out in dir and adds the placeholder files. `go mod vendor`
// reports the very embed pattern the placeholders satisfy as an error
// after it has written vendor/; that one error is expected, any other is
// not.
func vendorWithPlaceholders(ctx context.Context, dir string, placeholders map[string]string) error {
	cmd := exec.CommandContext(ctx, "go", "mod", "vendor")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "vendor", "modules.txt")); statErr != nil || !strings.Contains(string(out), "no matching files found") {
			return fmt.Errorf("go mod vendor: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	for rel, content := range placeholders {
		p := filepath.Join(dir, "vendor", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CNPGVersion is the CloudNativePG release pins/cnpg names.
const CNPGVersion = "v1.30.0"

// CNPG is the PostgreSQL operator. Its one program is both the operator
// and the instance manager it copies into every PostgreSQL pod, so it is
// linked statically. The family keeps the module's own Kustomize
// configuration under "config" (CRDs, RBAC, the operator's Deployment,
// its webhooks), which the fleet applies with the image replaced.
var CNPG = Family{
	Dir:      "cnpg",
	Programs: map[string]string{"manager": "github.com/cloudnative-pg/cloudnative-pg/cmd/manager"},
	LDFlags:  "-s -w",
	Why:      "CloudNativePG " + CNPGVersion + " is compiled from source once, then cached",
	Files:    cnpgConfig(),
}

func cnpgConfig() []ModuleFiles {
	var files []ModuleFiles
	for _, dir := range []string{"default", "crd", "crd/bases", "rbac", "manager", "webhook"} {
		files = append(files, ModuleFiles{Module: "github.com/cloudnative-pg/cloudnative-pg", Glob: "config/" + dir + "/*.yaml", Into: "config/" + dir})
	}
	return files
}
