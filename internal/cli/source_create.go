package cli

import (
	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/tenancy"
)

func newSourceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "source", Short: "Chart sources of a team (OCI HelmRepositories), through the fleet repository"}
	cmd.AddCommand(newSourceCreateCmd(g))
	return cmd
}

func newSourceCreateCmd(g *globals) *cobra.Command {
	var (
		url    string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:     "create TEAM NAME",
		Short:   "Add an OCI HelmRepository to a team's base (tenant create adds \"charts\")",
		Example: "  slipway source create dev1 shared --url oci://10.244.0.1:5000/dev1/shared",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			team, name := args[0], args[1]
			if err := flux.ValidTeam(team); err != nil {
				return usageError("%v", err)
			}
			if url == "" {
				return usageError("give the repository with --url oci://REGISTRY/PATH")
			}
			if dryRun {
				return printObjects(g.streams.Out, flux.SourceObjects(team, name, url, true))
			}
			p, err := g.attach()
			if err != nil {
				return err
			}
			_, err = tenancy.CreateSource(cmd.Context(), p, team, name, url, g.streams.Err)
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "oci://REGISTRY/PATH of the charts")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the objects instead of committing them")
	return cmd
}
