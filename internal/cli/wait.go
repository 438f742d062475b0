package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/release"
)

func newWaitCmd(g *globals) *cobra.Command {
	var (
		a       appFlags
		version string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait APP --version VERSION",
		Short: "Wait until an exact chart version is deployed and ready, or say why it will not be",
		Long: `Block until VERSION of APP is deployed in the environment's namespace — Helm's
latest release is that chart version, Flux says Ready, every replica of the
new Deployment is available — asking Flux to look at once rather than at its
next interval. Fails fast, with the reason, when the upgrade fails or is
rolled back, a pod cannot pull its image or crash-loops, or Flux has moved on
to a newer version. The outcome is recorded: promote needs it. On the
platform, the platform checks the version itself and keeps the record, as
the caller (see slipway promote --help for who that is).`,
		Example: "  slipway wait hello --env staging --version 0.1.1-build.7",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version == "" {
				return usageError("say which version with --version (the chart version the pipeline pushed)")
			}
			c, err := a.cf.clients(g)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			ns, err := release.Locate(ctx, c, a.team, args[0], a.env)
			if err != nil {
				return err
			}
			plat, user, password, err := a.viaPlatform(g)
			if err != nil {
				return err
			}
			start := time.Now()
			d, err := release.WaitReady(ctx, c, ns, args[0], version, g.streams.Err)
			if err != nil {
				return err
			}
			if d, err = confirmReady(ctx, c, plat, user, password, ns, args[0], a.env, version); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "%s %s is ready in %s after %s (image %s)\n", d.App, d.Version, d.Namespace, time.Since(start).Round(10*time.Millisecond), d.Image)
			return nil
		},
	}
	a.add(cmd, "staging")
	cmd.Flags().StringVar(&version, "version", "", "the chart version to wait for")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}
