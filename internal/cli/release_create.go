package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/tenancy"
)

func newReleaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "An app's HelmReleases, through the fleet repository"}
	cmd.AddCommand(newReleaseCreateCmd(g))
	return cmd
}

func newReleaseCreateCmd(g *globals) *cobra.Command {
	var (
		chartName, source, versionRange string
		dryRun                          bool
	)
	cmd := &cobra.Command{
		Use:   "create TEAM/APP",
		Short: "Release an app in its team's staging namespace, following a semver range",
		Long: `Add a HelmRelease for the app to the team's staging overlay: it follows the
version range (pre-releases included by default, as pipelines publish
X.Y.Z-build.N), so every chart the pipeline pushes is deployed there. Prod gets
a release only through slipway promote, pinned to a tested version.`,
		Example: "  slipway release create dev1/hello\n  slipway release create dev2/quotes --range '>=1.0.0-0 <2.0.0-0'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			team, app, ok := strings.Cut(args[0], "/")
			if !ok || flux.ValidTeam(team) != nil || app == "" {
				return usageError("name the release TEAM/APP, such as dev1/hello")
			}
			r := flux.Release{Team: team, App: app, Env: "staging", Chart: chartName, Source: source, Version: versionRange}
			if dryRun {
				return printObjects(g.streams.Out, flux.ReleaseObjects(r))
			}
			p, err := g.attach()
			if err != nil {
				return err
			}
			_, err = tenancy.CreateRelease(cmd.Context(), p, r, g.streams.Err)
			return err
		},
	}
	cmd.Flags().StringVar(&chartName, "chart", "", "chart name in the source (default: APP)")
	cmd.Flags().StringVar(&source, "source", "charts", "the team's HelmRepository to read")
	cmd.Flags().StringVar(&versionRange, "range", ">=0.0.0-0", "semver range of chart versions staging follows")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the object instead of committing it")
	return cmd
}
