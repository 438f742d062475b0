package cli

import "github.com/spf13/cobra"

func newTenantCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Onboard teams: namespaces, accounts and chart sources, through the fleet repository",
		Long: `A tenant is a team: a namespace per environment (TEAM-staging, TEAM-prod),
a ServiceAccount that is admin there and nowhere else (helm-controller acts
as it for the team's releases), an OCI HelmRepository for the team's charts,
and a user for the team's git repositories and registry prefix. Each change
is one commit to the fleet repository, which Flux applies.`,
	}
	cmd.AddCommand(newTenantCreateCmd(g), newTenantListCmd(g), newTenantDeleteCmd(g))
	return cmd
}
