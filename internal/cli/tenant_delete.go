package cli

import (
	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/tenancy"
)

func newTenantDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete TEAM",
		Short:   "Offboard a team: Flux prunes its namespaces and everything in them",
		Example: "  slipway tenant delete dev2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flux.ValidTeam(args[0]); err != nil {
				return usageError("%v", err)
			}
			p, err := g.attach()
			if err != nil {
				return err
			}
			_, err = tenancy.DeleteTenant(cmd.Context(), p, args[0], g.streams.Err)
			return err
		},
	}
}
