package cli

import (
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"
)

// agentVariables is `pipeline variables -o json|yaml`.
type agentVariables struct {
	Variables map[string]string `json:"variables"`
	// Secrets are left out unless asked for.
	Secrets map[string]string `json:"secrets,omitempty"`
}

func newPipelineVariablesCmd(g *globals) *cobra.Command {
	var (
		showSecrets bool
		output      outputFormat
	)
	cmd := &cobra.Command{
		Use:   "variables TEAM",
		Short: "Print the variables a team's pipelines need on an agent elsewhere (an Azure DevOps variable group)",
		Long: `Print what a team's pipelines need to run on an agent other than the
platform's runner, such as Azure DevOps's own: the variables of the team's
variable group. The same azure-pipelines.yml then runs there unchanged.

  slipway.platform.url        the platform's API; the steps reach the cluster
                              through it as the team's CI ServiceAccount
  slipway.registry.addr       the registry
  slipway.registry.username   the team's CI account (ci-TEAM)
  slipway.registry.password   its password: a secret variable
  slipway.git.url, .username, .password   the git server, as that account
  slipway.team                the team

The agent must trust the platform's CA (slipway ca; SSL_CERT_FILE and
GIT_SSL_CAINFO name it there) and reach these addresses. Secrets are shown
only with --show-secrets.`,
		Example: "  slipway pipeline variables dev1\n  slipway pipeline variables dev1 --show-secrets -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.attach()
			if err != nil {
				return err
			}
			vars, secrets, err := p.AgentVariables(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := agentVariables{Variables: vars}
			if showSecrets {
				out.Secrets = secrets
			}
			if done, err := printStructured(g.streams.Out, output, out); done {
				return err
			}
			for _, name := range slices.Sorted(maps.Keys(vars)) {
				fmt.Fprintf(g.streams.Out, "%s=%s\n", name, vars[name])
			}
			for _, name := range slices.Sorted(maps.Keys(secrets)) {
				value := "(secret: --show-secrets prints it)"
				if showSecrets {
					value = secrets[name]
				}
				fmt.Fprintf(g.streams.Out, "%s=%s\n", name, value)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "print the CI account's password too")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
