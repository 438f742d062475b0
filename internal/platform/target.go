package platform

import (
	"context"
	"errors"
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
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/targets"
)

// clusterTarget is the Kubernetes cluster the platform deploys to, as the
// platform's services need it: the node this process runs
// (*cluster.Cluster), or a cluster that runs already (existingCluster).
type clusterTarget interface {
	// AdminKubeconfig is a kubeconfig file with cluster-admin rights.
	AdminKubeconfig() string
	// NodeAddr is this platform's address on port as the cluster's
	// nodes and pods reach it.
	NodeAddr(port string) string
	// LookupHost resolves a name through the cluster's DNS from this
	// host; errNoClusterDNS where this host cannot ask it.
	LookupHost(ctx context.Context, name string) ([]string, error)
}

// errNoClusterDNS: the cluster's DNS is out of this host's reach.
var errNoClusterDNS = errors.New("the cluster's DNS cannot be reached from this host")

// NodeHost is the host at which the cluster reaches this platform: the
// node address of the cluster it runs, or cluster.existing.platformHost.
func NodeHost(cfg config.Config) string {
	if e := cfg.Cluster.Existing; e != nil {
		return e.PlatformHost
	}
	return ClusterOptions(cfg).NodeIP
}

// RegistryNodeAddr is the registry as the cluster's pods reach it.
func RegistryNodeAddr(cfg config.Config) string {
	_, port, err := net.SplitHostPort(cfg.Registry.Addr)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(NodeHost(cfg), port)
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
	node := NodeHost(cfg)
	if ip := net.ParseIP(host); host == node || host == "" || ip != nil && ip.IsUnspecified() {
		return ""
	}
	return net.JoinHostPort(node, port)
}

// existingCluster is a cluster the platform deploys to and does not run:
// AKS, or any conformant cluster, named by a kubeconfig context.
type existingCluster struct {
	cfg config.Config
	// kubeconfig is this platform's copy of the context, which every
	// command reads as the admin kubeconfig.
	kubeconfig string
}

func (e *existingCluster) AdminKubeconfig() string { return e.kubeconfig }

func (e *existingCluster) NodeAddr(port string) string {
	return net.JoinHostPort(e.cfg.Cluster.Existing.PlatformHost, port)
}

func (e *existingCluster) LookupHost(context.Context, string) ([]string, error) {
	return nil, errNoClusterDNS
}

// openExistingCluster checks the cluster cluster.existing names (the
// context is there, the API server answers, its user is a cluster admin,
// a Flux already there is one Slipway can use) before anything is
// written to it, then keeps a copy of the context in the cluster
// directory, where every command finds the admin kubeconfig. The copy is
// made again at each start, so credentials that rotate (AKS's) are taken
// up by a restart.
func openExistingCluster(ctx context.Context, cfg config.Config, progress io.Writer) (*existingCluster, error) {
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
		return nil, fmt.Errorf("the existing cluster (cluster.existing): %w", check.Err)
	}
	fmt.Fprintf(progress, "existing cluster: %s\n", check.Found)
	if len(check.Details) > 0 {
		report()
		fmt.Fprintf(progress, "existing cluster: the Flux in %s passes the check; Slipway takes it over, at its pinned version and settings\n", flux.Namespace)
	}
	raw, err := clientcmd.LoadFromFile(e.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if e.Context != "" {
		raw.CurrentContext = e.Context
	}
	if err := clientcmdapi.FlattenConfig(raw); err != nil {
		return nil, fmt.Errorf("reading the files %s names: %w", e.Kubeconfig, err)
	}
	if err := clientcmdapi.MinifyConfig(raw); err != nil {
		return nil, err
	}
	path := ClusterOptions(cfg).AdminKubeconfig()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	data, err := clientcmd.Write(*raw)
	if err != nil {
		return nil, err
	}
	// Credentials: only root reads them.
	if err := fsutil.WriteFileAtomic(path, data, 0o600); err != nil {
		return nil, err
	}
	return &existingCluster{cfg: cfg, kubeconfig: path}, nil
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

// The node this process runs is a clusterTarget too.
var _ clusterTarget = (*cluster.Cluster)(nil)
