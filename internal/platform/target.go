package platform

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/chart"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/credentials"
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
// The fleet's own git host (cluster.existing.fleet) must take a push from
// its account, the jobs' cache class (cluster.existing.jobCacheClass) be
// there, and with cluster.existing.flux: adopt the Flux there be one the
// fleet's sync can join (checkAdoptable).
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
		if cfg.AdoptsFlux() {
			fmt.Fprintf(progress, "existing cluster: the Flux in %s passes the check; Slipway adopts it, at its own version and settings (cluster.existing.flux: adopt)\n", flux.Namespace)
		} else {
			fmt.Fprintf(progress, "existing cluster: the Flux in %s passes the check; Slipway takes it over, at its pinned version and settings\n", flux.Namespace)
		}
	}
	if err := writeExistingKubeconfig(cfg); err != nil {
		return err
	}
	if f := e.Fleet; f != nil {
		password, err := f.Password()
		if err != nil {
			return err
		}
		fleet := targets.Git{URL: f.URL, Username: f.Username, Password: password, CAFile: f.CAFile,
			CredentialsHint: "check cluster.existing.fleet.username and the password in passwordFile"}.Check(ctx)
		if fleet.Err != nil {
			return fmt.Errorf("the fleet repository (cluster.existing.fleet): %w", fleet.Err)
		}
		fmt.Fprintf(progress, "fleet repository: %s (cluster.existing.fleet)\n", fleet.Found)
		if f.ReaderUsername != "" {
			if err := checkFleetReader(ctx, *f, progress); err != nil {
				return err
			}
		}
	}
	if r := e.Registry; r != nil {
		if err := checkLineRegistry(ctx, *r, progress); err != nil {
			return err
		}
	}
	if class := e.JobCacheClass; class != "" {
		if err := checkStorageClass(ctx, cfg, class); err != nil {
			return err
		}
	}
	if cfg.AdoptsFlux() {
		return checkAdoptable(ctx, cfg)
	}
	return nil
}

// checkLineRegistry asks the line's registry of its own whether Flux's
// reader may pull there (Slipway's http-check, which the teams' helm test
// pods run from the registry their app is on, must be there), and whether
// each team's account that has a password here may push under its team's
// prefix.
func checkLineRegistry(ctx context.Context, r config.LineRegistry, progress io.Writer) error {
	user, password, err := r.Reader()
	if err != nil {
		return err
	}
	read := targets.Registry{Host: r.Host, Repository: chart.CheckImagePath, Pull: "latest", CAFile: r.CAFile,
		Keychain: credentials.Static(user, password)}.Check(ctx)
	if read.Err != nil {
		return fmt.Errorf("the line's registry (cluster.existing.registry.readerUsername): %w; the helm test pods pull Slipway's http-check from there (push it with slipway base --image %s/slipway/base --http-check-image %s/%s)", read.Err, r.Host, r.Host, chart.CheckImagePath)
	}
	fmt.Fprintf(progress, "line registry: %s; Flux pulls the teams' charts with this account (cluster.existing.registry)\n", read.Found)
	accounts, err := r.Accounts()
	if err != nil {
		return err
	}
	for _, account := range accounts {
		if err := CheckLineRegistryAccount(ctx, r, account, progress); err != nil {
			return err
		}
	}
	return nil
}

// CheckLineRegistryAccount asks the line's registry of its own whether a
// team's account (ci-TEAM) takes its password there and may push under
// TEAM/.
func CheckLineRegistryAccount(ctx context.Context, r config.LineRegistry, account string, progress io.Writer) error {
	password, err := r.TeamPassword(account)
	if err != nil {
		return err
	}
	team := strings.TrimPrefix(account, "ci-")
	push := targets.Registry{Host: r.Host, Repository: team + "/slipway-check", CAFile: r.CAFile,
		Keychain: credentials.Static(account, password)}.Check(ctx)
	if push.Err != nil {
		return fmt.Errorf("the line's registry, team %s's account (cluster.existing.registry.passwordsDir): %w", team, push.Err)
	}
	fmt.Fprintf(progress, "line registry: %s (the CI account of team %s)\n", push.Found, team)
	return nil
}

// checkFleetReader asks the fleet's host whether the read-only account
// Flux is to be given may read the fleet, and says so when it may push
// too: then it is no read-only account, and the cluster holds push rights
// to the fleet after all.
func checkFleetReader(ctx context.Context, f config.ExternalFleet, progress io.Writer) error {
	user, password, err := f.Reader()
	if err != nil {
		return err
	}
	reader := targets.Git{URL: f.URL, Username: user, Password: password, CAFile: f.CAFile, Read: true,
		CredentialsHint: "check cluster.existing.fleet.readerUsername and the password in readerPasswordFile"}
	read := reader.Check(ctx)
	if read.Err != nil {
		return fmt.Errorf("the fleet repository's reader (cluster.existing.fleet.readerUsername): %w", read.Err)
	}
	fmt.Fprintf(progress, "fleet repository: %s; Flux reads it with this account (cluster.existing.fleet.readerUsername)\n", read.Found)
	reader.Read = false
	if reader.Check(ctx).Err == nil {
		fmt.Fprintf(progress, "warning: the fleet's reader %s may push to %s too: Flux holds push rights to the fleet; give it a read-only token\n", user, f.URL)
	}
	return nil
}

// checkStorageClass makes sure the cluster has the StorageClass the
// teams' Go cache claims are to be of (cluster.existing.jobCacheClass).
func checkStorageClass(ctx context.Context, cfg config.Config, class string) error {
	client, _, err := adminClients(cfg)
	if err != nil {
		return err
	}
	classes, err := client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the existing cluster's StorageClasses: %w", err)
	}
	var names []string
	for _, c := range classes.Items {
		if c.Name == class {
			return nil
		}
		names = append(names, c.Name)
	}
	has := "none"
	if len(names) > 0 {
		has = strings.Join(names, ", ")
	}
	return fmt.Errorf("cluster.existing.jobCacheClass %q is not a StorageClass of the existing cluster (it has: %s)", class, has)
}

// checkAdoptable makes sure the existing cluster's Flux can be adopted
// (flux.CheckAdoptable), reading the cluster through the copy of its
// context; nothing is written to the cluster.
func checkAdoptable(ctx context.Context, cfg config.Config) error {
	client, dyn, err := adminClients(cfg)
	if err != nil {
		return err
	}
	installed, err := flux.ReadInstalled(ctx, client)
	if err != nil {
		return err
	}
	var syncs flux.Syncs
	for name, url := range map[string]*string{flux.SyncName: &syncs.Installed, flux.AdoptedSyncName: &syncs.Adopted} {
		if _, u, err := flux.Get(ctx, dyn, flux.GitRepository, flux.Namespace, name); err == nil {
			*url, _, _ = unstructured.NestedString(u.Object, "spec", "url")
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading GitRepository %s/%s: %w", flux.Namespace, name, err)
		}
	}
	if err := flux.CheckAdoptable(installed, syncs, fleetNodeURL(cfg)); err != nil {
		return fmt.Errorf("the existing cluster (cluster.existing.flux: adopt): %w", err)
	}
	return nil
}

// writeExistingKubeconfig keeps the existing cluster's context, flattened,
// where every command reads the admin kubeconfig.
func writeExistingKubeconfig(cfg config.Config) error {
	e := cfg.Cluster.Existing
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
