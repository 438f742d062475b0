package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/release"
)

func newHistoryCmd(g *globals) *cobra.Command {
	var (
		a      appFlags
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:     "history APP",
		Short:   "Show which version ran where, whether it was tested, and who promoted it",
		Example: "  slipway history hello",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.cf.clients(g)
			if err != nil {
				return err
			}
			team := a.team
			if team == "" {
				ns, err := release.Locate(cmd.Context(), c, "", args[0], "staging")
				if err != nil {
					return err
				}
				team = strings.TrimSuffix(ns, "-staging")
			}
			entries, err := release.History(cmd.Context(), c, team, args[0])
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, entries); done {
				return err
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ENV\tVERSION\tREADY\tTESTED\tPROMOTED\tIMAGE")
			for _, e := range entries {
				ready, tested, promoted := "-", "-", "-"
				if !e.ReadyAt.IsZero() {
					ready = e.ReadyAt.Local().Format("01-02 15:04:05")
				}
				if e.Test != nil {
					tested = "failed"
					if e.Test.Passed {
						tested = "passed"
					}
					tested += " " + e.Test.At.Local().Format("15:04:05")
				}
				if !e.PromotedAt.IsZero() {
					promoted = fmt.Sprintf("by %s from %s %s", e.PromotedBy, e.PromotedFrom, e.PromotedAt.Local().Format("15:04:05"))
				}
				image := e.Image
				if i := strings.Index(image, "@sha256:"); i >= 0 {
					image = image[i+1 : i+1+7+12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Env, e.Version, ready, tested, promoted, image)
			}
			return tw.Flush()
		},
	}
	a.add(cmd, "")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
