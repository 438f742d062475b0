package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/platform"
	"github.com/slipway-dev/slipway/internal/release"
)

func newPromoteCmd(g *globals) *cobra.Command {
	var (
		a        appFlags
		from, to string
		version  string
		wait     bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "promote APP --from staging --to prod",
		Short: "Commit the tested version running in one environment to the next",
		Long: `Ask the platform to promote the version of APP running in --from. The
platform checks that the caller belongs to the app's team (ops may promote
any app), and that this version was confirmed ready (slipway wait) and
passed its tests (slipway test) with the image still running, from its own
records; then it commits the exact chart version, whose chart pins the
image digest, to the --to overlay of the fleet repository, naming who asked.
Flux applies it; with --wait, wait until it is ready there too.

The caller is the pipeline's account (SLIPWAY_REGISTRY_USERNAME and
SLIPWAY_REGISTRY_PASSWORD), else the user logged in to the platform's
registry, else ops's admin account on the platform's own machine.`,
		Example: "  slipway promote hello --from staging --to prod --wait",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.cf.clients(g)
			if err != nil {
				return err
			}
			plat, user, password, err := g.caller()
			if err != nil {
				return err
			}
			p, err := plat.RequestPromotion(cmd.Context(), user, password, platform.PromotionRequest{
				Team: a.team, App: args[0], From: from, To: to, Version: version, For: who()})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "promoted %s/%s %s from %s to %s as %s (commit %.12s, image %s)\n", p.Team, args[0], p.Version, from, to, user, p.Commit, p.Image)
			if !wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			ns := flux.TenantNamespace(p.Team, to)
			d, err := release.WaitReady(ctx, c, ns, args[0], p.Version, g.streams.Err)
			if err != nil {
				return err
			}
			if _, err := confirmReady(ctx, c, plat, user, password, ns, args[0], to, p.Version); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "%s %s is ready in %s\n", d.App, d.Version, d.Namespace)
			return nil
		},
	}
	cmd.Flags().StringVar(&a.team, "team", os.Getenv("SLIPWAY_TEAM"), "the app's team (default: $SLIPWAY_TEAM in a pipeline, else found from the release)")
	cmd.Flags().StringVar(&from, "from", "staging", "environment the tested version runs in")
	cmd.Flags().StringVar(&to, "to", "prod", "environment to promote it to")
	cmd.Flags().StringVar(&version, "version", "", "refuse unless this is the version running in --from")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until it is ready in --to")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait, give up after this long")
	a.cf.add(cmd)
	return cmd
}
