package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/platform"
)

// kubectlProgram is the kubectl of the job's image in a pipeline job's
// pod (which has no build cache and must not compile Kubernetes), else
// the one built from the cluster's pinned sources.
func kubectlProgram(ctx context.Context, cfg config.Config, g *globals) (string, error) {
	if os.Getenv(platform.PlatformURLEnv) != "" {
		path, err := exec.LookPath("kubectl")
		if err != nil {
			return "", errors.New("no kubectl on PATH: the platform's default job image has one; on an agent of your own, install it (Azure Pipelines: the KubectlInstaller@0 task)")
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
with the cluster's admin kubeconfig unless --kubeconfig or --context is given.
In a pipeline run it acts as the team's CI account: in a job pod by
SLIPWAY_KUBECONFIG; on an agent elsewhere, with only the team's variable
group (SLIPWAY_PLATFORM_URL and the slipway.registry.* account), through the
platform, starting in the team's staging namespace.`,
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
			var cf clusterFlags
			if !chosen {
				// On an agent elsewhere, kubectl reaches the cluster
				// through the platform as the team's CI account.
				rc, ok, err := cf.throughPlatform(g)
				if ok {
					if err != nil {
						return err
					}
					path, cleanup, err := writeTeamKubeconfig(rc)
					if err != nil {
						return err
					}
					defer cleanup()
					args = append([]string{"--kubeconfig", path}, args...)
					chosen = true
				}
			}
			if !chosen {
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

// writeTeamKubeconfig writes rc, the platform's pass-through to the
// cluster as a team's CI account (clusterFlags.throughPlatform), as a
// kubeconfig for kubectl, in a directory only this user reads (it holds
// the account's password); cleanup removes it. Its namespace is the
// team's staging, where a job pod's kubeconfig starts too.
func writeTeamKubeconfig(rc *rest.Config) (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "slipway-kubeconfig-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	kc := clientcmdapi.NewConfig()
	kc.Clusters["slipway"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthority: rc.TLSClientConfig.CAFile}
	kc.AuthInfos["ci"] = &clientcmdapi.AuthInfo{Username: rc.Username, Password: rc.Password}
	kc.Contexts["slipway"] = &clientcmdapi.Context{Cluster: "slipway", AuthInfo: "ci",
		Namespace: flux.TenantNamespace(strings.TrimPrefix(rc.Username, "ci-"), "staging")}
	kc.CurrentContext = "slipway"
	path = filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}
