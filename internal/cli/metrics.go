package cli

import (
	"fmt"
	"math"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/monitoring"
)

func newMetricsCmd(g *globals) *cobra.Command {
	var (
		team, env string
		output    outputFormat
	)
	cmd := &cobra.Command{
		Use:   "metrics APP",
		Short: "Show an app's requests, errors, latency, restarts and memory over the last 15 minutes",
		Long: `Show, from the platform's Prometheus, an app's request rate, 5xx ratio, p50
and p95 latency (from the app's own http_requests_total and
http_request_duration_seconds, scraped where its pods declare a port named
"metrics"), its pods' restarts and memory, over the last 15 minutes, one
line each: the last value and a small chart.

A team's user sees its own team's apps; ops names the team with --team.`,
		Example: "  slipway metrics quotes --env staging\n  slipway metrics hello --team dev1 --env prod -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, user, password, err := g.caller()
			if err != nil {
				return err
			}
			m, err := p.AppMetrics(cmd.Context(), user, password, team, args[0], env)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, m); done {
				return err
			}
			fmt.Fprintf(g.streams.Out, "%s in %s, last 15 minutes\n", m.App, m.Namespace)
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			for _, s := range m.Series {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, lastValue(s.Points), monitoring.Sparkline(s.Points))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "the app's team (a team's user: its own)")
	cmd.Flags().StringVar(&env, "env", "staging", "the environment: staging or prod")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// lastValue is a series' latest value, "-" when it has none.
func lastValue(points []monitoring.Point) string {
	for i := len(points) - 1; i >= 0; i-- {
		if v := points[i].Value; !math.IsNaN(v) {
			return strconv.FormatFloat(v, 'g', 4, 64)
		}
	}
	return "-"
}
