package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/targets"
)

func newTargetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Existing parts the line can use: a Kubernetes cluster, an OCI registry, a git host",
	}
	cmd.AddCommand(newTargetCheckCmd(g))
	return cmd
}

func newTargetCheckCmd(g *globals) *cobra.Command {
	var (
		kubeconfig, kubeContext string
		registryHost, repo      string
		reg                     registryFlags
		gitURL                  string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check an existing cluster, registry and git repository before using them",
		Long: `Check each named target the way the line will use it, writing nothing:

  cluster   the kubeconfig context exists, its API server answers and
            takes its credentials, its user is a cluster admin, and a
            Flux already in flux-system is new enough and runs with the
            multi-tenancy lockdown (each controller is listed)
  registry  the registry takes the credentials (Basic or the token flow,
            as ACR) and would let them push to --registry-repo: an
            upload is begun and cancelled
  git       the host would take a push to the repository from the
            credentials in the URL or SLIPWAY_GIT_USERNAME and
            SLIPWAY_GIT_PASSWORD

Each problem is named with what to do; the exit code is 1 if any target
fails.`,
		Example: `  slipway target check --context my-aks --registry myacr.azurecr.io \
    --git https://dev.azure.com/org/project/_git/fleet
  slipway target check --kubeconfig ./a.kubeconfig --context slipway`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clusterNamed := kubeconfig != "" || kubeContext != ""
			if !clusterNamed && registryHost == "" && gitURL == "" {
				return usageError("name at least one target: --context/--kubeconfig, --registry or --git")
			}
			// The CA of this machine's platform is trusted too, as by
			// every command (its parts can stand in for external ones).
			if _, err := g.config(); err != nil {
				return err
			}
			var results []targets.Result
			if clusterNamed {
				results = append(results, targets.Cluster{Kubeconfig: kubeconfig, Context: kubeContext}.Check(cmd.Context()))
			}
			if registryHost != "" {
				results = append(results, targets.Registry{Host: registryHost, Repository: repo, Insecure: reg.insecure, Keychain: reg.keychain()}.Check(cmd.Context()))
			}
			if gitURL != "" {
				results = append(results, targets.Git{URL: gitURL, Username: os.Getenv("SLIPWAY_GIT_USERNAME"), Password: os.Getenv("SLIPWAY_GIT_PASSWORD")}.Check(cmd.Context()))
			}
			return targets.WriteReport(g.streams.Out, results)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "the cluster's kubeconfig (default $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "the cluster's context in the kubeconfig (default its current one)")
	cmd.Flags().StringVar(&registryHost, "registry", "", "the registry's host[:port], such as myacr.azurecr.io")
	cmd.Flags().StringVar(&repo, "registry-repo", "slipway/check", "the repository a push is tried in")
	reg.bind(cmd)
	cmd.Flags().StringVar(&gitURL, "git", "", "a repository's https:// clone URL, such as the fleet's")
	return cmd
}
