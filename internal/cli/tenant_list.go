package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/tenancy"
)

func newTenantListCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the teams in the fleet repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.attach()
			if err != nil {
				return err
			}
			teams, err := tenancy.ListTenants(cmd.Context(), p)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, teams); done {
				return err
			}
			for _, t := range teams {
				fmt.Fprintln(g.streams.Out, t)
			}
			return nil
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
