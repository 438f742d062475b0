package platform

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/targets"
)

// NodeHost is the host at which the cluster reaches this platform: the
// node address of the cluster it runs, or cluster.existing.platformHost.
func NodeHost(cfg config.Config) string {
	if e := cfg.Cluster.Existing; e != nil {
		return e.PlatformHost
	}
	return ClusterOptions(cfg).NodeIP
}

// nodeAddr is this platform's address on port as the cluster's nodes and
// pods reach it.
func nodeAddr(cfg config.Config, port string) string { return net.JoinHostPort(NodeHost(cfg), port) }

// RegistryNodeAddr is the registry as the cluster's pods reach it.
func RegistryNodeAddr(cfg config.Config) string {
	_, port, err := net.SplitHostPort(cfg.Registry.Addr)
	if err != nil {
		return ""
	}
	return nodeAddr(cfg, port)
}

// imageRegistry is the registry address the platform's own images are
// named by in what the cluster runs. The node this process runs pulls on
// this host, by the configured address; an existing cluster's nodes pull
// where its pods do.
func imageRegistry(cfg config.Config) string {
	if cfg.ClusterExisting() {
		return RegistryNodeAddr(cfg)
	}
	return cfg.Registry.Addr
}

// alsoServe is the address the platform serves addr's port on for the
// cluster too, or "" when addr already covers it (all interfaces, or the
// same host).
func alsoServe(cfg config.Config, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == NodeHost(cfg) || host == "" || ip != nil && ip.IsUnspecified() {
		return ""
	}
	return nodeAddr(cfg, port)
}

// openExistingCluster checks the cluster cluster.existing names (the
// context is there, the API server answers, its user is a cluster admin,
// a Flux already there is one Slipway can use) before anything is
// written to it, then keeps a copy of the context in the cluster
// directory, at the path of the admin kubeconfig of a cluster the platform
// runs, where every command finds it. The copy is made again at each
// start, so credentials that rotate (AKS's) are taken up by a restart.
func openExistingCluster(ctx context.Context, cfg config.Config, progress io.Writer) error {
	e := cfg.Cluster.Existing
	check := targets.Cluster{Kubeconfig: e.Kubeconfig, Context: e.Context}.Check(ctx)
	// The Flux found there, one line per controller and finding.
	report := func() {
		for _, f := range check.Details {
			fmt.Fprintf(progress, "  %s\n", f)
		}
	}
	if check.Err != nil {
		report()
		return fmt.Errorf("the existing cluster (cluster.existing): %w", check.Err)
	}
	fmt.Fprintf(progress, "existing cluster: %s\n", check.Found)
	if len(check.Details) > 0 {
		report()
		fmt.Fprintf(progress, "existing cluster: the Flux in %s passes the check; Slipway takes it over, at its pinned version and settings\n", flux.Namespace)
	}
	raw, err := clientcmd.LoadFromFile(e.Kubeconfig)
	if err != nil {
		return err
	}
	if e.Context != "" {
		raw.CurrentContext = e.Context
	}
	if err := clientcmdapi.FlattenConfig(raw); err != nil {
		return fmt.Errorf("reading the files %s names: %w", e.Kubeconfig, err)
	}
	if err := clientcmdapi.MinifyConfig(raw); err != nil {
		return err
	}
	path := ClusterOptions(cfg).AdminKubeconfig()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := clientcmd.Write(*raw)
	if err != nil {
		return err
	}
	// Credentials: only root reads them.
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

// existingClusterImages are the platform's own images an existing cluster
// runs besides Flux's and the CI image: the http-check image of the
// charts' `helm test` pods.
func existingClusterImages(ctx context.Context, cfg config.Config) ([]imageToPush, error) {
	check, err := build.HTTPCheckImage(ctx, cfg.CacheDir(), []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}})
	if err != nil {
		return nil, err
	}
	return []imageToPush{{check, imageRegistry(cfg) + "/slipway/http-check", "latest"}}, nil
}
