package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/release"
	"github.com/slipway-dev/slipway/internal/tenancy"
)

func newReleaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "An app's HelmReleases, through the fleet repository"}
	cmd.AddCommand(newReleaseCreateCmd(g), newReleaseShowCmd(g))
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

func newReleaseShowCmd(g *globals) *cobra.Command {
	var (
		cf     clusterFlags
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "show TEAM/APP",
		Short: "Show an app's release in each environment: what runs, whether it is Ready and why not, Helm's history",
		Long: `Show the HelmRelease of TEAM/APP in each environment as the dashboard's
Release page does, from the same data: the chart version running and the one
Flux last tried, Ready or, when not, Flux's reason explained and the pods that
cannot run, and Helm's history of the release.`,
		Example: "  slipway release show dev1/hello\n  slipway release show dev2/quotes -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			team, app, ok := strings.Cut(args[0], "/")
			if !ok || flux.ValidTeam(team) != nil {
				return usageError("%q: name the release as TEAM/APP", args[0])
			}
			c, err := cf.clients(g)
			if err != nil {
				return err
			}
			details, err := release.Describe(cmd.Context(), c, team, app)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, details); done {
				return err
			}
			w := g.streams.Out
			for i, d := range details {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if !d.Exists {
					fmt.Fprintf(w, "%s (%s): no release of %s\n", d.Env, d.Namespace, app)
					continue
				}
				state := "Ready"
				if !d.Ready {
					state = "not Ready"
				}
				fmt.Fprintf(w, "%s (%s): running %s, %s\n", d.Env, d.Namespace, dash(d.Running), state)
				if d.Attempted != "" && d.Attempted != d.Running {
					fmt.Fprintf(w, "  Flux last tried %s\n", d.Attempted)
				}
				if !d.Ready {
					fmt.Fprintf(w, "  %s\n  Flux: %s: %s\n", d.Explanation, d.Reason, d.Message)
					if d.Pods != "" {
						fmt.Fprintf(w, "  pods: %s\n", d.Pods)
					}
				}
				for _, h := range d.History {
					fmt.Fprintf(w, "  revision %d  %-12s %-10s %s\n", h.Revision, h.ChartVersion, h.Status, h.LastDeployed.Local().Format("01-02 15:04:05"))
				}
			}
			return nil
		},
	}
	cf.add(cmd)
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
