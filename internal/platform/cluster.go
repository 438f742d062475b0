package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/hostdeps"
	"github.com/slipway-dev/slipway/internal/supervisor"
	"github.com/slipway-dev/slipway/internal/trust"
)

// clusterPullUser is the registry user containerd pulls with: it may read,
// never write.
const clusterPullUser = "cluster-puller"

// checkClusterHost makes sure this machine can run the cluster, and
// installs the Debian packages it and the CI image need when missing.
func checkClusterHost(cfg config.Config, progress io.Writer) error {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return errors.New("the local cluster needs root on Linux: run as root, or start without it (--cluster=false)")
	}
	if _, port, _ := net.SplitHostPort(cfg.Registry.Addr); port == "0" {
		return errors.New("the cluster pulls from the registry by a fixed address: give the registry a port (--registry-addr host:port)")
	}
	return hostdeps.Ensure(hostdeps.Cluster, progress)
}

// checkExistingClusterHost makes sure this machine can serve an existing
// cluster (cluster.existing): fixed ports, and the Debian packages the CI
// image is built with when jobs run in pods.
func checkExistingClusterHost(cfg config.Config, progress io.Writer) error {
	if _, port, _ := net.SplitHostPort(cfg.Registry.Addr); port == "0" {
		return errors.New("the cluster pulls from the registry by a fixed address: give the registry a port (--registry-addr host:port)")
	}
	if !cfg.JobsInPods() {
		return nil
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return errors.New("building the pipeline jobs' image needs root on Linux: run as root, or run the jobs on this machine (pipelines.jobs: host)")
	}
	return hostdeps.Ensure(hostdeps.Cluster, progress)
}

// NewCluster builds (or takes from the cache) the cluster's programs and
// images and prepares its state directory, on a host checkClusterHost
// has passed. It does not start anything.
func NewCluster(ctx context.Context, cfg config.Config, users *auth.Store, progress io.Writer) (*cluster.Cluster, []imageToPush, error) {
	copts := components.Options{CacheDir: cfg.CacheDir(), Progress: progress}
	versions, err := ClusterVersions(cfg)
	if err != nil {
		return nil, nil, err
	}
	kube, err := NodePrograms(ctx, versions, copts)
	if err != nil {
		return nil, nil, err
	}
	dns, err := components.Ensure(ctx, components.CoreDNS, copts)
	if err != nil {
		return nil, nil, err
	}

	host := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	pause, err := build.PauseImage(ctx, cfg.CacheDir(), []v1.Platform{host})
	if err != nil {
		return nil, nil, fmt.Errorf("building the pod sandbox image: %w", err)
	}
	coredns, err := build.BinaryImage(ctx, cfg.CacheDir(), dns["coredns"], "coredns", host)
	if err != nil {
		return nil, nil, fmt.Errorf("building the CoreDNS image: %w", err)
	}
	check, err := build.HTTPCheckImage(ctx, cfg.CacheDir(), []v1.Platform{host})
	if err != nil {
		return nil, nil, err
	}
	images := []imageToPush{
		{pause, cfg.Registry.Addr + "/slipway/pause", components.KubernetesVersion},
		{coredns, cfg.Registry.Addr + "/slipway/coredns", components.CoreDNSVersion},
		{check, cfg.Registry.Addr + "/slipway/http-check", "latest"},
	}

	password, err := clusterPullPassword(cfg, users)
	if err != nil {
		return nil, nil, err
	}
	opts := ClusterOptions(cfg)
	opts.RegistryUser, opts.RegistryPassword = clusterPullUser, password
	opts.RegistryCA = trust.Files{Dir: cfg.TLSDir()}.CA()
	opts.RegistryPlainLoopback = cfg.TLS.PlainHTTPOnLoopback
	opts.Binaries = kube
	opts.Versions = versions
	opts.PauseImage = images[0].repo + "@" + pause.Digest.String()
	opts.CoreDNSImage = images[1].repo + "@" + coredns.Digest.String()
	c, err := cluster.New(opts)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Prepare(); err != nil {
		return nil, nil, fmt.Errorf("preparing the cluster: %w", err)
	}
	return c, images, nil
}

// NodePrograms builds (or takes from the cache) the programs of every
// release the node runs, and maps each program to the path of the one its
// recorded release has. The tools (etcdctl, etcdutl, kubectl) are etcd's
// and the API server's.
func NodePrograms(ctx context.Context, versions cluster.Versions, copts components.Options) (map[string]string, error) {
	byRelease, err := releasePrograms(ctx, versions.Releases(), copts)
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, p := range cluster.NodePrograms {
		bins[p] = byRelease[versions.Programs[p]][p]
	}
	for _, tool := range []string{"etcdctl", "etcdutl"} {
		bins[tool] = byRelease[versions.Programs["etcd"]][tool]
	}
	// The control plane runs one release, its API server's; the record
	// keeps one per program, as it did when they were three processes.
	for _, tool := range []string{cluster.ControlPlaneProgram, "kubectl", "api-lifecycle"} {
		bins[tool] = byRelease[versions.Programs["kube-apiserver"]][tool]
	}
	return bins, nil
}

// releasePrograms builds (or takes from the cache) the programs of each
// release, by release.
func releasePrograms(ctx context.Context, releases []string, copts components.Options) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, r := range releases {
		if out[r] != nil {
			continue
		}
		fam, err := components.KubernetesFamily(r)
		if err != nil {
			return nil, err
		}
		if out[r], err = components.Ensure(ctx, fam, copts); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ClusterVersions is the release each node program of the cluster in cfg
// runs, or would run when new (the configured release, else the newest).
func ClusterVersions(cfg config.Config) (cluster.Versions, error) {
	fresh := cfg.Cluster.KubernetesVersion
	if fresh == "" {
		fresh = components.KubernetesVersion
	}
	return cluster.ReadVersions(cfg.ClusterDir(), fresh)
}

// ClusterTools are etcdctl, etcdutl, kubectl and api-lifecycle of the
// release the cluster in cfg runs (or a new one would), built first when
// the cache lacks them.
func ClusterTools(ctx context.Context, cfg config.Config, progress io.Writer) (map[string]string, cluster.Versions, error) {
	versions, err := ClusterVersions(cfg)
	if err != nil {
		return nil, versions, err
	}
	fam, err := components.KubernetesFamily(versions.Programs["kube-apiserver"])
	if err != nil {
		return nil, versions, err
	}
	bins, err := components.Ensure(ctx, fam, components.Options{CacheDir: cfg.CacheDir(), Progress: progress})
	return bins, versions, err
}

// clusterPullPassword is the password of the user containerd pulls as.
func clusterPullPassword(cfg config.Config, users *auth.Store) (string, error) {
	return servicePassword(cfg, users, clusterPullUser, "registry-password")
}

// imageToPush is one of Slipway's own images the cluster runs.
type imageToPush struct {
	img  *build.Image
	repo string
	tag  string
}

// imagesService pushes the cluster's own images once the registry runs.
type imagesService struct {
	images   []imageToPush
	keychain authn.Keychain
	// transport trusts the platform's CA.
	transport http.RoundTripper
	// pushed, when set, is told once every image is in the registry.
	pushed func()
}

func (s *imagesService) Name() string { return "cluster-images" }

func (s *imagesService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	var names []string
	for _, im := range s.images {
		if _, err := build.Publish(ctx, im.img, build.PublishOptions{Repository: im.repo, Tags: []string{im.tag}, Keychain: s.keychain, Transport: s.transport}); err != nil {
			return err
		}
		names = append(names, im.repo[strings.LastIndex(im.repo, "/")+1:])
	}
	// The images' layers were held in memory to push them; the platform
	// runs for hours after, so hand that memory back now.
	s.images = nil
	debug.FreeOSMemory()
	if s.pushed != nil {
		s.pushed()
	}
	ready(supervisor.Endpoint{URL: "pushed " + strings.Join(names, ", ")})
	<-ctx.Done()
	return nil
}

// AdminPassword reads the password generated for the admin user.
func AdminPassword(cfg config.Config) (string, error) {
	data, err := os.ReadFile(cfg.AdminPasswordFile())
	if err != nil {
		return "", fmt.Errorf("reading the admin password: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// adminKeychain gives the admin's credentials for every registry.
func adminKeychain(cfg config.Config) (authn.Keychain, error) {
	password, err := AdminPassword(cfg)
	if err != nil {
		return nil, err
	}
	return credentials.Static("admin", password), nil
}
