package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/platform"
	"github.com/slipway-dev/slipway/internal/release"
)

// attach finds the running platform; when none runs, the error exits 3.
func (g *globals) attach() (*platform.Platform, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	p, err := platform.Attach(cfg)
	if errors.Is(err, platform.ErrNotRunning) {
		return nil, &exitError{code: ExitNotRunning, err: err}
	}
	return p, err
}

// planned is the running platform, or the one the configuration
// describes when none runs (for --dry-run).
func (g *globals) planned() (*platform.Platform, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	if p, err := platform.Attach(cfg); err == nil {
		return p, nil
	}
	return platform.Planned(cfg), nil
}

// clusterFlags choose the cluster: the local one by default, or any
// kubeconfig (AKS in a hosted pipeline).
type clusterFlags struct {
	kubeconfig string
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "use this kubeconfig's current context instead of the local cluster")
}

// path is the kubeconfig to use: the flag's, else SLIPWAY_KUBECONFIG (a
// pipeline run's: its team's CI account), else the running local
// cluster's admin kubeconfig.
func (f *clusterFlags) path(g *globals) (string, error) {
	if f.kubeconfig != "" {
		return f.kubeconfig, nil
	}
	if env := os.Getenv("SLIPWAY_KUBECONFIG"); env != "" {
		return env, nil
	}
	p, err := g.attach()
	if err != nil {
		return "", err
	}
	return p.AdminKubeconfig()
}

func (f *clusterFlags) rest(g *globals) (*rest.Config, error) {
	if rc, ok, err := f.throughPlatform(g); ok {
		return rc, err
	}
	path, err := f.path(g)
	if err != nil {
		return nil, err
	}
	return cluster.RESTConfig(path)
}

func (f *clusterFlags) dynamic(g *globals) (dynamic.Interface, error) {
	rc, err := f.rest(g)
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(rc)
}

func (f *clusterFlags) clients(g *globals) (*release.Clients, error) {
	if rc, ok, err := f.throughPlatform(g); ok {
		if err != nil {
			return nil, err
		}
		return release.ConnectConfig(rc)
	}
	path, err := f.path(g)
	if err != nil {
		return nil, err
	}
	return release.Connect(path)
}

// throughPlatform is the cluster as a pipeline's step reaches it with no
// kubeconfig of its own, on an agent elsewhere (Azure DevOps's own): through
// the platform (SLIPWAY_PLATFORM_URL) as the team's CI account
// (SLIPWAY_REGISTRY_USERNAME and _PASSWORD), which the platform lets act
// as the team's CI ServiceAccount and nothing more. ok is false where a
// kubeconfig is named or no platform URL is set.
func (f *clusterFlags) throughPlatform(g *globals) (cfg *rest.Config, ok bool, err error) {
	if f.kubeconfig != "" || os.Getenv("SLIPWAY_KUBECONFIG") != "" || os.Getenv(platform.PlatformURLEnv) == "" {
		return nil, false, nil
	}
	user, password := credentials.EnvCredentials()
	if user == "" || password == "" {
		return nil, true, fmt.Errorf("%s is set, so the cluster is reached through the platform as the team's CI account: set SLIPWAY_REGISTRY_USERNAME and SLIPWAY_REGISTRY_PASSWORD (the slipway.registry.* variables), or SLIPWAY_KUBECONFIG", platform.PlatformURLEnv)
	}
	p, err := g.attach()
	if err != nil {
		return nil, true, err
	}
	cfg, err = p.TeamKubeConfig(user, password)
	return cfg, true, err
}
