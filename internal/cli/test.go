package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/platform"
	"github.com/slipway-dev/slipway/internal/release"
)

func newTestCmd(g *globals) *cobra.Command {
	var (
		a       appFlags
		appFile string
		output  outputFormat
	)
	cmd := &cobra.Command{
		Use:   "test APP",
		Short: "Run the release's helm tests and the app's smoke checks against the live version",
		Long: `Run the chart's helm test hooks and the HTTP smoke checks of the app's
slipway.yaml (default: ./slipway.yaml) against the version running in the
environment, and record the result for that version: promote lets only a
version that passed go on. On the platform, the platform runs them (the
chart's hooks as the release's own account) and keeps the outcome.`,
		Example: "  slipway test hello --env staging",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := release.ReadAppFile(appFile)
			if err != nil {
				return err
			}
			c, err := a.cf.clients(g)
			if err != nil {
				return err
			}
			ns, err := release.Locate(cmd.Context(), c, a.team, args[0], a.env)
			if err != nil {
				return err
			}
			plat, user, password, err := a.viaPlatform(g)
			if err != nil {
				return err
			}
			var (
				t       *release.Test
				version string
			)
			if plat != nil {
				// The platform runs the tests and keeps the outcome, where
				// no team can write it.
				res, err := plat.RunTests(cmd.Context(), user, password, platform.TestRequest{
					Team: flux.TenantTeam(ns, a.env), App: args[0], Env: a.env, Smoke: spec.Smoke, For: who()})
				if err != nil {
					return err
				}
				fmt.Fprint(g.streams.Err, res.Log)
				t, version = res.Test, res.Version
			} else if t, version, err = release.RunTests(cmd.Context(), c, ns, args[0], spec.Smoke, who(), g.streams.Err); err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, t); done {
				return err
			}
			for _, ch := range t.Checks {
				mark := "passed"
				if !ch.Passed {
					mark = "FAILED"
				}
				fmt.Fprintf(g.streams.Out, "%-7s %s: %s\n", mark, ch.Name, ch.Message)
			}
			if !t.Passed {
				return &exitError{code: 1, err: fmt.Errorf("%s %s in %s failed its tests: it will not be promoted", args[0], version, ns)}
			}
			fmt.Fprintf(g.streams.Err, "%s %s in %s passed %d check(s)\n", args[0], version, ns, len(t.Checks))
			return nil
		},
	}
	a.add(cmd, "staging")
	cmd.Flags().StringVar(&appFile, "file", "slipway.yaml", "the app's slipway.yaml with its smoke checks")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
