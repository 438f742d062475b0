package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/platform"
)

// kubectlProgram is the kubectl of the job's image in a pipeline job's
// pod (which has no build cache and must not compile Kubernetes), else
// the one built from the cluster's pinned sources.
func kubectlProgram(ctx context.Context, cfg config.Config, g *globals) (string, error) {
	if os.Getenv(platform.PlatformURLEnv) != "" {
		path, err := exec.LookPath("kubectl")
		if err != nil {
			return "", errors.New("this job's image has no kubectl (the platform's default image has one)")
		}
		return path, nil
	}
	bins, _, err := platform.ClusterTools(ctx, cfg, g.streams.Err)
	if err != nil {
		return "", err
	}
	return bins["kubectl"], nil
}

func newKubectlCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl [ARGS...]",
		Short: "Run the kubectl built with the cluster, against the cluster",
		Long: `Run kubectl, built from the same pinned Kubernetes sources as the cluster,
with the cluster's admin kubeconfig unless --kubeconfig or --context is given
(in a pipeline run, SLIPWAY_KUBECONFIG: the team's CI account).`,
		Example:            "  slipway kubectl get pods -A",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			kubectl, err := kubectlProgram(cmd.Context(), cfg, g)
			if err != nil {
				return err
			}
			chosen := false
			for _, a := range args {
				chosen = chosen || strings.HasPrefix(a, "--kubeconfig") || strings.HasPrefix(a, "--context")
			}
			if !chosen {
				var cf clusterFlags
				path, err := cf.path(g)
				if errors.Is(err, platform.ErrNoCluster) {
					return err
				}
				if err != nil {
					// Nothing runs (or it is starting): kubectl says itself
					// that nothing answers.
					path = platform.ClusterOptions(cfg).AdminKubeconfig()
				}
				args = append([]string{"--kubeconfig", path}, args...)
			}
			run := exec.CommandContext(cmd.Context(), kubectl, args...)
			run.Stdin, run.Stdout, run.Stderr = g.streams.In, g.streams.Out, g.streams.Err
			run.Env = os.Environ()
			if err := run.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					// kubectl has printed its own error.
					return &exitError{code: ee.ExitCode(), err: errors.New("kubectl failed")}
				}
				return err
			}
			return nil
		},
	}
}
