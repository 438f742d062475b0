package cli

import (
	"context"
	"os"
	"os/user"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/platform"
	"github.com/slipway-dev/slipway/internal/release"

	"github.com/spf13/cobra"
)

// who names the person or pipeline acting: the pipeline's requester, else
// the login name.
func who() string {
	for _, k := range []string{"SLIPWAY_ACTOR", "BUILD_REQUESTEDFOR", "USER"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

type appFlags struct {
	team, env string
	cf        clusterFlags
}

func (a *appFlags) add(cmd *cobra.Command, envDefault string) {
	cmd.Flags().StringVar(&a.team, "team", os.Getenv("SLIPWAY_TEAM"), "the app's team (default: $SLIPWAY_TEAM in a pipeline, else the only team with a release of that name)")
	cmd.Flags().StringVar(&a.env, "env", envDefault, "environment: staging or prod")
	a.cf.add(cmd)
}

// viaPlatform is the running platform and the caller's credentials, when
// the command works on the local cluster: its records are then written by
// the platform, which checks for itself. It is nil with --kubeconfig (a
// cluster of the user's own, whose records the user's rights write).
func (a *appFlags) viaPlatform(g *globals) (*platform.Platform, string, string, error) {
	if a.cf.kubeconfig != "" {
		return nil, "", "", nil
	}
	return g.caller()
}

// caller is the running platform and the credentials this command acts
// with there (see Platform.Credentials).
func (g *globals) caller() (*platform.Platform, string, string, error) {
	p, err := g.attach()
	if err != nil {
		return nil, "", "", err
	}
	user, password, err := p.Credentials()
	return p, user, password, err
}

// confirmReady has a version that WaitReady saw ready recorded for
// promote: by the platform, which checks it again, when there is one;
// else with c's own rights (a cluster of the user's own).
func confirmReady(ctx context.Context, c *release.Clients, plat *platform.Platform, user, password, ns, app, env, version string) (*release.Deployed, error) {
	if plat == nil {
		return release.ConfirmReady(ctx, c, ns, app, version, who())
	}
	return plat.ConfirmReady(ctx, user, password, platform.ReadinessRequest{
		Team: flux.TenantTeam(ns, env), App: app, Env: env, Version: version, For: who()})
}
