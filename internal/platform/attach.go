package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/trust"
)

// Platform is a handle on a running `slipway up`: its addresses, the
// admin's credentials and the cluster, read from what it published when
// it became ready. Every command that talks to the platform goes through
// one, so each address has one source of truth: the one actually served,
// whatever flags the platform was started with.
type Platform struct {
	Config config.Config
	State  State
}

// ErrNoCluster is returned for cluster work on a platform started
// without the cluster.
var ErrNoCluster = errors.New("the platform runs without the cluster (start it as root, without --cluster=false)")

// Attach finds the running platform of cfg's state directory. It returns
// ErrNotRunning when none runs, and an error that says so while it is
// still starting.
func Attach(cfg config.Config) (*Platform, error) {
	if url := os.Getenv(PlatformURLEnv); url != "" {
		// A job's pod has no state directory: the platform says where it
		// is, as the pod reaches it. Nothing of the admin's is there.
		scheme, _, _ := strings.Cut(url, "://")
		return &Platform{Config: cfg, State: State{Ready: true, Addresses: Addresses{
			Registry: cfg.Registry.Addr, RegistryURL: scheme + "://" + cfg.Registry.Addr, RegistryNode: cfg.Registry.Addr, Git: url, GitNode: url}}}, nil
	}
	st, err := ReadState(cfg.RunDir())
	if err != nil {
		return nil, err
	}
	if !st.Ready {
		return nil, fmt.Errorf("slipway up (pid %d) is still starting; try again once it says it is up", st.PID)
	}
	if st.Addresses.Registry == "" {
		return nil, fmt.Errorf("the running slipway up (pid %d) is from an older release and does not say its addresses: restart it (slipway down; slipway up)", st.PID)
	}
	if st.Existing != nil {
		// The existing cluster as the platform runs on it, whatever this
		// command's own settings say of it.
		cfg.Cluster.Existing = st.Existing
	}
	return &Platform{Config: cfg, State: st}, nil
}

// PlatformURLEnv names the platform's git and API base URL in a job's
// pod (with SLIPWAY_REGISTRY_ADDR, the registry as the pod reaches it).
const PlatformURLEnv = "SLIPWAY_PLATFORM_URL"

// RegistryAddr is the registry's host:port as the host reaches it.
func (p *Platform) RegistryAddr() string { return p.State.Addresses.Registry }

// RegistryURL is the registry's base URL as the host reaches it.
func (p *Platform) RegistryURL() string {
	if u := p.State.Addresses.RegistryURL; u != "" {
		return u
	}
	return "http://" + p.RegistryAddr()
}

// GitURL is the git server's base URL as the host reaches it.
func (p *Platform) GitURL() string { return p.State.Addresses.Git }

// Users is the platform's user store (registry and git).
func (p *Platform) Users() *auth.Store { return auth.Open(p.Config.UsersFile()) }

// AdminPassword is the admin user's password.
func (p *Platform) AdminPassword() (string, error) { return AdminPassword(p.Config) }

// FleetRemote is the fleet repository as the host reaches it, with the
// admin's credentials.
func (p *Platform) FleetRemote() (gitrepo.Remote, error) {
	if f := p.Config.ExternalFleet(); f != nil {
		return externalFleetRemote(*f)
	}
	password, err := p.AdminPassword()
	if err != nil {
		return gitrepo.Remote{}, err
	}
	return gitrepo.Remote{URL: p.GitURL() + "/" + FleetRepo + ".git", Username: "admin", Password: password}, nil
}

// FleetSync names the fleet's sync in flux-system (its GitRepository
// and Kustomization): flux-system beside the platform's own Flux, a name
// of its own beside an adopted one.
func (p *Platform) FleetSync() string { return fleetSyncName(p.Config) }

// ChartsURL is where the cluster reads a team's charts: the line's
// registry of its own, else the platform's on the node address.
func (p *Platform) ChartsURL(team string) (string, error) {
	if p.State.Addresses.RegistryNode == "" {
		return "", ErrNoCluster
	}
	return "oci://" + lineRegistryNode(p.Config, p.State.Addresses.RegistryNode) + "/" + team + "/charts", nil
}

// ChartsCA says whether Flux is given a CA for the charts' registry (in
// the tenants' registry Secret): the platform's, or the line registry's
// when one is named; none for a registry the system trusts.
func (p *Platform) ChartsCA() bool {
	if r := p.Config.LineRegistry(); r != nil {
		return r.CAFile != ""
	}
	return true
}

// AdminKubeconfig is the cluster-admin kubeconfig of the local cluster.
func (p *Platform) AdminKubeconfig() (string, error) {
	if p.State.Addresses.AdminKubeconfig == "" {
		return "", ErrNoCluster
	}
	return p.State.Addresses.AdminKubeconfig, nil
}

// RESTConfig is the cluster's admin client configuration.
func (p *Platform) RESTConfig() (*rest.Config, error) {
	path, err := p.AdminKubeconfig()
	if err != nil {
		return nil, err
	}
	rc, err := cluster.RESTConfig(path)
	if err != nil {
		return nil, fmt.Errorf("the local cluster is not running (no admin kubeconfig): %w", err)
	}
	return rc, nil
}

// RegistryAddr is the registry a command means when it names none: the
// running platform's, else the configured one.
func RegistryAddr(cfg config.Config) string {
	if p, err := Attach(cfg); err == nil {
		return p.RegistryAddr()
	}
	return cfg.Registry.Addr
}

// Planned is the platform cfg describes, with the addresses a `slipway up`
// started from it would serve: what --dry-run shows when none runs.
func Planned(cfg config.Config) *Platform {
	st := State{Addresses: Addresses{
		Registry:    cfg.Registry.Addr,
		RegistryURL: loopbackScheme(cfg) + "://" + cfg.Registry.Addr,
		Git:         loopbackScheme(cfg) + "://" + cfg.Git.Addr,
		CA:          trust.Files{Dir: cfg.TLSDir()}.CA(),
	}}
	if cfg.ClusterExisting() || cfg.Cluster.Enabled == nil || *cfg.Cluster.Enabled {
		st.Addresses.RegistryNode = RegistryNodeAddr(cfg)
		if _, port, err := net.SplitHostPort(cfg.Git.Addr); err == nil {
			st.Addresses.GitNode = "https://" + net.JoinHostPort(NodeHost(cfg), port)
		}
		st.Addresses.AdminKubeconfig = ClusterOptions(cfg).AdminKubeconfig()
	}
	return &Platform{Config: cfg, State: st}
}

// ClusterOptions are the local cluster's options for cfg, before the
// programs and images are known.
func ClusterOptions(cfg config.Config) cluster.Options {
	opts := cluster.Defaults(cfg.ClusterDir())
	opts.Registry = cfg.Registry.Addr
	for _, r := range cfg.Cluster.Registries {
		// Validate read the password file once already.
		password, _ := r.Secret()
		opts.MoreRegistries = append(opts.MoreRegistries, cluster.NodeRegistry{Host: r.Host, PlainHTTP: r.PlainHTTP, CAFile: r.CAFile, Username: r.Username, Password: password})
	}
	return opts
}

// Ensure attaches to the running platform, or starts one in this process
// when none runs (it needs the cluster and Flux); stop ends the one it
// started and is nil otherwise. progress receives the start's progress.
func Ensure(ctx context.Context, cfg config.Config, progress io.Writer) (*Platform, func(), error) {
	if p, err := Attach(cfg); err == nil {
		return p, nil, nil
	} else if !errors.Is(err, ErrNotRunning) {
		return nil, nil, err
	}
	if !cfg.FluxEnabled() {
		return nil, nil, errors.New("the line needs the cluster and Flux: run as root on Linux (and without --cluster=false or SLIPWAY_FLUX=false)")
	}
	upCtx, cancel := context.WithCancel(context.Background())
	ready := make(chan State, 1)
	done := make(chan error, 1)
	go func() {
		done <- Up(upCtx, cfg, progress, func(st State) { ready <- st })
	}()
	stop := func() {
		cancel()
		<-done
	}
	select {
	case st := <-ready:
		return &Platform{Config: cfg, State: st}, stop, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("the platform stopped before it was ready")
		}
		return nil, nil, err
	case <-ctx.Done():
		stop()
		return nil, nil, ctx.Err()
	}
}

// Credentials are the user a command acts as on the platform: the
// pipeline's (SLIPWAY_REGISTRY_USERNAME and _PASSWORD), else the login
// stored for the platform's registry (slipway login), else ops's own
// admin account when this user can read its password (on the platform's
// machine).
func (p *Platform) Credentials() (user, password string, err error) {
	if u, pw := credentials.EnvCredentials(); u != "" {
		return u, pw, nil
	}
	if reg, err := name.NewRegistry(p.RegistryAddr(), name.Insecure); err == nil {
		if a, err := authn.DefaultKeychain.Resolve(reg); err == nil && a != authn.Anonymous {
			if cfg, err := a.Authorization(); err == nil && cfg.Username != "" && cfg.Password != "" {
				return cfg.Username, cfg.Password, nil
			}
		}
	}
	if pw, err := p.AdminPassword(); err == nil {
		return "admin", pw, nil
	}
	return "", "", fmt.Errorf("no credentials for the platform: log in (slipway login %s -u USER --password-stdin)", p.RegistryAddr())
}
