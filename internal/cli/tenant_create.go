package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/tenancy"
)

func newTenantCreateCmd(g *globals) *cobra.Command {
	var (
		dryRun bool
		repos  []string
	)
	cmd := &cobra.Command{
		Use:   "create TEAM",
		Short: "Onboard a team",
		Long: `Onboard a team: its user (printed password, pushes under TEAM/ in git and
the registry), the git repositories named with --repo, and one commit to the
fleet repository with its namespaces, account and chart source, which Flux
applies before the command returns. Running it again adds only what is
missing. With --dry-run, print the objects instead.`,
		Example: "  slipway tenant create dev1 --repo hello\n  slipway tenant create dev2 --dry-run",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			team := args[0]
			if err := flux.ValidTeam(team); err != nil {
				return usageError("%v", err)
			}
			if dryRun {
				p, err := g.planned()
				if err != nil {
					return err
				}
				t, err := tenancy.TenantPreview(p, team)
				if err != nil {
					return err
				}
				return printObjects(g.streams.Out, flux.TenantObjects(t))
			}
			p, err := g.attach()
			if err != nil {
				return err
			}
			res, err := tenancy.CreateTenant(cmd.Context(), p, team, repos, g.streams.Err)
			if err != nil {
				return err
			}
			if res.Password != "" {
				fmt.Fprintf(g.streams.Err, "the password of user %s (shown once):\n", team)
				fmt.Fprintln(g.streams.Out, res.Password)
			}
			fmt.Fprintf(g.streams.Err, "tenant %s is ready: namespaces %s\n", team, strings.Join(res.Namespaces, ", "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the objects instead of committing them")
	cmd.Flags().StringArrayVar(&repos, "repo", nil, "also create the git repository TEAM/NAME (repeatable)")
	return cmd
}
