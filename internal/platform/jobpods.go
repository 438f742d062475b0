package platform

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/ci/podexec"
	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/storage"
)

// GoProxyPath is where the platform's Go module proxy answers, on the git
// server's addresses.
const GoProxyPath = "/-/goproxy/"

// goCacheClaim is each team's Go cache volume in its CI namespace.
const goCacheClaim = "go-cache"

// goCacheSize is what a team's Go cache volume asks for: the build and
// module caches of a few services.
var goCacheSize = resource.MustParse("10Gi")

// jobImages is the CI image: known once built, usable once pushed.
type jobImages struct {
	ref string
	// goSeed is the Go build cache new team caches start from.
	goSeed string
	// goVersion is the Go toolchain's in the image, such as go1.26.8.
	goVersion string
	img       *build.Image
	pushed    chan struct{}
	once      sync.Once
}

func (j *jobImages) markPushed() { j.once.Do(func() { close(j.pushed) }) }

// wait returns the CI image's reference once the registry has it.
func (j *jobImages) wait(ctx context.Context) (string, error) {
	select {
	case <-j.pushed:
		return j.ref, nil
	case <-ctx.Done():
		return "", errors.New("the platform has not pushed the CI image yet")
	}
}

// prepareCIImage builds (or takes from the cache) the default image of
// pipeline jobs: Debian's bash, git and coreutils, this machine's Go
// toolchain and this slipway program.
func prepareCIImage(ctx context.Context, cfg config.Config, progress io.Writer) (*jobImages, error) {
	goroot, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("the CI image holds this machine's Go toolchain, and `go env GOROOT` failed: install Go (%v)", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	seed, err := goCacheSeed(ctx, cfg, strings.TrimSpace(string(goroot)), progress)
	if err != nil {
		return nil, err
	}
	kube, _, err := ClusterTools(ctx, cfg, progress)
	if err != nil {
		return nil, err
	}
	img, err := build.CIImage(ctx, build.CIImageOptions{CacheDir: cfg.CacheDir(), GoRoot: strings.TrimSpace(string(goroot)), Slipway: exe, Kubectl: kube["kubectl"],
		Mirror: os.Getenv("SLIPWAY_DEBIAN_MIRROR"), Progress: progress})
	if err != nil {
		return nil, err
	}
	version, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "VERSION"))
	if err != nil {
		return nil, err
	}
	repo := imageRegistry(cfg) + "/" + build.CIImageRepository
	return &jobImages{ref: repo + "@" + img.Digest.String(), img: img, goSeed: seed, pushed: make(chan struct{}),
		goVersion: strings.TrimSpace(strings.SplitN(string(version), "\n", 2)[0])}, nil
}

// newJobPods is the executor that runs every job of a team's pipeline in
// a pod of the team's CI namespace, as its CI account.
func newJobPods(ctx context.Context, cfg config.Config, users *auth.Store, images *jobImages, ca []byte, progress io.Writer) (*podexec.Executor, error) {
	rc, err := cluster.RESTConfig(ClusterOptions(cfg).AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	teamOf := func(pipeline string) string { team, _, _ := strings.Cut(pipeline, "/"); return team }
	prepare := func(ctx context.Context, ns string) error {
		return ensureGoCache(ctx, cfg, kube, ns, images.goSeed)
	}
	claim := goCacheClaim
	var seed func() (io.ReadCloser, error)
	if cfg.ClusterExisting() {
		// The seeded cache volume is a directory on this machine, which
		// only the node this platform runs can mount: on an existing
		// cluster each team's caches are a claim of the cluster's default
		// StorageClass, which the team's first job seeds from an archive
		// of the same seed.
		want := cacheClaimOf(cfg.Cluster.Existing.JobCacheClass)
		class := want.class
		if class == "" {
			if class, err = defaultStorageClass(ctx, kube); err != nil {
				return nil, err
			}
		}
		if class == "" {
			fmt.Fprintln(progress, "pipeline jobs: the cluster has no default StorageClass, so every job starts with empty Go caches (modules still come through the platform's proxy); mark one default, or name a class (cluster.existing.jobCacheClass), to keep them")
			prepare, claim = nil, ""
		} else {
			if want.class != "" {
				fmt.Fprintf(progress, "pipeline jobs: each team's Go caches are a ReadWriteMany claim of StorageClass %s (cluster.existing.jobCacheClass)\n", class)
			} else {
				fmt.Fprintf(progress, "pipeline jobs: each team's Go caches are a claim of the cluster's default StorageClass %s\n", class)
			}
			reportOtherCacheClaims(ctx, kube, want, progress)
			prepare = func(ctx context.Context, ns string) error { return ensureGoCacheClaim(ctx, kube, ns, want) }
			archive, err := goSeedArchive(images.goSeed)
			if err != nil {
				return nil, err
			}
			seed = func() (io.ReadCloser, error) { return os.Open(archive) }
		}
	}
	return &podexec.Executor{
		Config:         rc,
		Client:         kube,
		Namespace:      func(p string) string { return flux.TenantNamespace(teamOf(p), flux.CIOverlay) },
		WorkNamespace:  func(p string) string { return flux.TenantNamespace(teamOf(p), "staging") },
		ServiceAccount: flux.CIAccount,
		DefaultImage:   images.wait,
		DefaultGo:      images.goVersion,
		CheckImage: func(ctx context.Context, pipeline, image string) error {
			return checkTeamMayPull(ctx, cfg, users, teamOf(pipeline), image)
		},
		Prepare:    prepare,
		CacheClaim: claim,
		CacheSeed:  seed,
		TrustedCA:  ca,
		Idle:       2,
	}, nil
}

// checkTeamMayPull asks the registry, with the team's CI account, for the
// image's manifest: a job may run only an image its team may pull.
func checkTeamMayPull(ctx context.Context, cfg config.Config, users *auth.Store, team, image string) error {
	ref, err := name.ParseReference(image)
	if err != nil {
		return fmt.Errorf("not an image reference: %w", err)
	}
	reg := ref.Context().RegistryStr()
	if reg != cfg.Registry.Addr && reg != RegistryNodeAddr(cfg) {
		return fmt.Errorf("the job's image must come from the platform's registry (%s): no other registry can be reached", cfg.Registry.Addr)
	}
	user := "ci-" + team
	password, err := ciPassword(cfg, users, user, team+"/")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(credentials.Static(user, password))); err != nil {
		return fmt.Errorf("the team's CI account %s may not pull it: %w", user, err)
	}
	return nil
}

// goCacheMu keeps two jobs starting at once from seeding one cache twice.
var goCacheMu sync.Mutex

// ensureGoCache makes the team's Go cache volume once: a directory of
// the platform's, bound by its claimRef to the claim in that one CI
// namespace, so no other namespace can mount it.
func ensureGoCache(ctx context.Context, cfg config.Config, kube kubernetes.Interface, ns, seed string) error {
	goCacheMu.Lock()
	defer goCacheMu.Unlock()
	pvName := "slipway-go-cache-" + ns
	dir := filepath.Join(cfg.Home, "ci-cache", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := seedGoCache(seed, dir); err != nil {
		return err
	}
	if err := os.Chown(dir, podexec.UID, podexec.UID); err != nil {
		return err
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName, Labels: map[string]string{"slipway.dev/go-cache": ns}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: goCacheSize},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "slipway-go-cache",
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: goCacheClaim},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
		},
	}
	if _, err := kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("the Go cache volume: %w", err)
	}
	class := "slipway-go-cache"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: goCacheClaim, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			VolumeName:       pvName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: goCacheSize}},
		},
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("the Go cache claim: %w", err)
	}
	return nil
}

// goSeedArchive is the jobs' Go cache seed as a gzipped tar, made once
// beside it: what a job pod on an existing cluster unpacks into its
// team's new cache claim (podexec.Executor.CacheSeed). Fast compression:
// about 127 of 472 MB, in seconds.
func goSeedArchive(seed string) (string, error) {
	path := seed + ".tar.gz"
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".go-build-seed-*.tar.gz")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	zw, err := gzip.NewWriterLevel(tmp, gzip.BestSpeed)
	if err != nil {
		return "", err
	}
	tw := tar.NewWriter(zw)
	err = tw.AddFS(os.DirFS(seed))
	for _, c := range []io.Closer{tw, zw, tmp} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return "", fmt.Errorf("archiving the jobs' Go cache seed: %w", err)
	}
	return path, os.Rename(tmp.Name(), path)
}

// defaultStorageClass is the name of the cluster's default StorageClass,
// or "" when it has none.
func defaultStorageClass(ctx context.Context, kube kubernetes.Interface) (string, error) {
	classes, err := kube.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing the cluster's StorageClasses: %w", err)
	}
	for _, c := range classes.Items {
		if c.Annotations[storage.DefaultClassAnnotation] == "true" {
			return c.Name, nil
		}
	}
	return "", nil
}

// cacheClaim is the kind of claim a team's Go caches are on an existing
// cluster: ReadWriteOnce of the default StorageClass (class empty), where
// every job pod that mounts it runs on the node the volume is attached
// to; or ReadWriteMany of a class named in cluster.existing.jobCacheClass,
// which any node can mount.
type cacheClaim struct {
	class string
	mode  corev1.PersistentVolumeAccessMode
}

func cacheClaimOf(class string) cacheClaim {
	if class == "" {
		return cacheClaim{mode: corev1.ReadWriteOnce}
	}
	return cacheClaim{class: class, mode: corev1.ReadWriteMany}
}

// matches says whether an existing claim is of this kind (a claim with no
// class named was given the default one).
func (c cacheClaim) matches(pvc corev1.PersistentVolumeClaim) bool {
	named := pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName == c.class
	return slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{c.mode}) && (c.class == "" || named)
}

// ensureGoCacheClaim asks, once per CI namespace, for the team's Go cache
// claim. A claim is namespaced, so only that team's job pods can mount it.
func ensureGoCacheClaim(ctx context.Context, kube kubernetes.Interface, ns string, kind cacheClaim) error {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: goCacheClaim, Namespace: ns, Labels: map[string]string{"slipway.dev/go-cache": ns}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{kind.mode},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: goCacheSize}},
		},
	}
	if kind.class != "" {
		pvc.Spec.StorageClassName = &kind.class
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("the Go cache claim: %w", err)
	}
	return nil
}

// reportOtherCacheClaims names the teams' Go cache claims made before the
// setting changed: a claim's class and access modes cannot change, so
// each stays as it is, used as it is, until ops deletes it.
func reportOtherCacheClaims(ctx context.Context, kube kubernetes.Interface, want cacheClaim, progress io.Writer) {
	claims, err := kube.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{LabelSelector: "slipway.dev/go-cache"})
	if err != nil {
		return // only a report: the jobs use whatever claim is there
	}
	for _, c := range claims.Items {
		if c.Name != goCacheClaim || want.matches(c) {
			continue
		}
		class := "no class"
		if c.Spec.StorageClassName != nil {
			class = "class " + *c.Spec.StorageClassName
		}
		fmt.Fprintf(progress, "pipeline jobs: %s's Go cache claim was made otherwise (%v, %s) and is kept; to have the next job make it anew: slipway kubectl -n %s delete pvc %s\n", c.Namespace, c.Spec.AccessModes, class, c.Namespace, goCacheClaim)
	}
}

// cleanUpJobPods deletes job pods left by a crash, once the cluster
// answers.
func cleanUpJobPods(ctx context.Context, pods *podexec.Executor, log io.Writer) {
	for {
		n, err := pods.Cleanup(ctx)
		if err == nil {
			if n > 0 {
				fmt.Fprintf(log, "pipeline runner: deleted %d job pod(s) left by an earlier stop or crash\n", n)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// podPipelineInputs are PipelineInputs for jobs in pods: the platform's
// addresses as pods reach them, the pod's own kubeconfig, the Go module
// proxy and caches, and none of this machine's environment.
func podPipelineInputs(cfg config.Config, users *auth.Store, gitNode string) func(repo string) (runner.Inputs, error) {
	return func(repo string) (runner.Inputs, error) {
		team, in, err := ciInputs(cfg, users, repo, RegistryNodeAddr(cfg), gitNode)
		if err != nil {
			return runner.Inputs{}, err
		}
		// SLIPWAY_REGISTRY_ADDR comes from the slipway.registry.addr
		// variable, like every variable.
		in.Env = []string{
			"PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin",
			"HOME=/home/nonroot",
			"LANG=C.UTF-8",
			"SLIPWAY_TEAM=" + team,
			"SLIPWAY_KUBECONFIG=" + podexec.Kubeconfig,
			// The platform's registry, git server and module proxy are
			// the only servers a job reaches; they present the platform's
			// CA.
			"SSL_CERT_FILE=" + podexec.TrustedCA,
			"GIT_SSL_CAINFO=" + podexec.TrustedCA,
			PlatformURLEnv + "=" + gitNode,
			"GOPROXY=" + gitNode + strings.TrimSuffix(GoProxyPath, "/"),
			"GOSUMDB=off",
			"GOTOOLCHAIN=local",
			// -trimpath for go test too: then it compiles the
			// dependencies as slipway build does, once, and the cache
			// seed's entries match (see goCacheSeed).
			"GOFLAGS=-modcacherw -trimpath",
			// Slipway's own cache (compressed image layers) lives with the
			// team's Go caches, so a warm rebuild compresses nothing again.
			"SLIPWAY_CACHE_DIR=" + podexec.CacheDir + "/slipway",
			"GOCACHE=" + podexec.CacheDir + "/go-build",
			"GOMODCACHE=" + podexec.CacheDir + "/mod",
		}
		return in, nil
	}
}

// goCacheSeed is a Go build cache holding what a team's first job would
// otherwise compile: the standard library and the Prometheus client of
// the example apps (goseed/, at the versions their go.mod requires),
// built as jobs build them: CGO off, -trimpath (jobs' GOFLAGS has it, so
// go test builds the same way as slipway build), for linux/amd64 and
// linux/arm64, and vet's findings on them as go test leaves them. It is
// made once per machine, Go release and seed module.
// With -trimpath a package's cache key does not hold its directory, so
// the entries match although jobs keep their modules elsewhere; a job
// whose GOROOT differs (another CI image) only pays a copy.
func goCacheSeed(ctx context.Context, cfg config.Config, goroot string, progress io.Writer) (string, error) {
	version, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(string(version), "\n")
	sum := sha256.Sum256(slices.Concat(goSeedSum, goSeedMain, goSeedTest))
	dir := filepath.Join(cfg.CacheDir(), "ci-image", fmt.Sprintf("go-build-seed-%s-%s-%x", first, runtime.GOARCH, sum[:4]))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir, nil
	}
	fmt.Fprintf(progress, "building the Go standard library and the example apps' dependencies for pipeline jobs' caches (once per machine and Go release)\n")
	_ = os.RemoveAll(dir)
	module, err := os.MkdirTemp("", "slipway-go-seed-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(module)
	for name, data := range map[string][]byte{"go.mod": goSeedMod, "go.sum": goSeedSum, "main.go": goSeedMain, "main_test.go": goSeedTest} {
		if err := os.WriteFile(filepath.Join(module, name), data, 0o644); err != nil {
			return "", err
		}
	}
	for _, goarch := range []string{"amd64", "arm64"} {
		for _, args := range [][]string{{"build", "-trimpath", "std"}, {"build", "-trimpath", "-o", os.DevNull, "."}} {
			cmd := exec.CommandContext(ctx, filepath.Join(goroot, "bin", "go"), args...)
			cmd.Dir = module
			cmd.Env = append(os.Environ(), "GOCACHE="+dir, "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=-mod=readonly", "GOROOT="+goroot, "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("go %s for linux/%s (the jobs' cache seed): %v: %s", strings.Join(args, " "), goarch, err, out)
			}
		}
	}
	// go test also vets every package the test imports; without vet's
	// findings in the seed a team's first go test runs vet some 250 times.
	cmd := exec.CommandContext(ctx, filepath.Join(goroot, "bin", "go"), "test", "-trimpath", "-count=1", "-run=^$", ".")
	cmd.Dir = module
	cmd.Env = append(os.Environ(), "GOCACHE="+dir, "CGO_ENABLED=0", "GOFLAGS=-mod=readonly", "GOROOT="+goroot, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test (the jobs' cache seed): %v: %s", err, out)
	}
	return dir, os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644)
}

// The seed module: the example apps' dependencies, which a test keeps
// equal to examples/*/go.mod and go.sum.
var (
	//go:embed goseed/go.mod.txt
	goSeedMod []byte
	//go:embed goseed/go.sum.txt
	goSeedSum []byte
	//go:embed goseed/main.go.txt
	goSeedMain []byte
	//go:embed goseed/main_test.go.txt
	goSeedTest []byte
)

// seedGoCache fills a team's new cache directory from the seed.
func seedGoCache(seed, dir string) error {
	if seed == "" {
		return nil
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
		return err
	}
	out, err := exec.Command("cp", "-a", seed, filepath.Join(dir, "go-build")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("seeding the Go cache: %v: %s", err, out)
	}
	return exec.Command("chown", "-R", fmt.Sprintf("%d:%d", podexec.UID, podexec.UID), dir).Run()
}
