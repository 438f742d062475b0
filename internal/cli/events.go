package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newEventsCmd(g *globals) *cobra.Command {
	var (
		team   string
		since  string
		limit  int
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the line's timeline: pushes, pipeline runs, chart pushes and Flux's events",
		Long: `Show what happened on the line, oldest first: pushes to the git server,
pipeline runs that ended, charts pushed to the registry, and every event
Flux's notification-controller sent about the teams' releases and sources
and the fleet's Kustomizations.

A team's user sees its own team's events; ops sees every team's and the
platform's own (--team narrows it).`,
		Example: "  slipway events\n  slipway events --team dev1 --since 15m\n  slipway events -o json --limit 50",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, user, password, err := g.caller()
			if err != nil {
				return err
			}
			list, err := p.Events(cmd.Context(), user, password, team, since, limit)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, list); done {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintln(g.streams.Out, "no events")
				return nil
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tTEAM\tSOURCE\tOBJECT\tREASON\tMESSAGE")
			for _, e := range list {
				team := e.Team
				if team == "" {
					team = "-"
				}
				object := e.Name
				if e.Kind != "" {
					object = e.Kind + "/" + e.Name
				}
				if e.Namespace != "" {
					object = e.Namespace + "/" + object
				}
				msg := strings.Join(strings.Fields(e.Message), " ")
				if e.Severity == "error" {
					msg = "error: " + msg
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), team, e.Source, object, e.Reason, msg)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "only this team's events")
	cmd.Flags().StringVar(&since, "since", "", "only events newer than this: a duration (15m) or a time (RFC 3339)")
	cmd.Flags().IntVar(&limit, "limit", 200, "at most this many, the newest")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
