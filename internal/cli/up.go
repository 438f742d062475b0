package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/opsview"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newUpCmd(g *globals) *cobra.Command {
	var registryAddr, gitAddr string
	var anonymousPull, tokenAuth, withCluster, noMonitoring bool
	var kubeconfig, kubeVersion string
	var existing config.ExistingCluster
	var fleet config.ExternalFleet
	var lineRegistry config.LineRegistry
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the platform and keep it running until Ctrl-C",
		Long: `Start every embedded service in order, each once the one before it is ready,
print where each listens and how to log in, and run until interrupted
(Ctrl-C or SIGTERM, or ` + "`slipway down`" + ` from another shell). If any service fails,
the rest are stopped and the failing one is named.`,
		Example: `  # Start with the defaults (registry on 127.0.0.1:5000, and the cluster as root)
  slipway up

  # The registry alone
  slipway up --cluster=false

  # Another state directory and port, e.g. for a second instance
  slipway up --home /tmp/slipway2 --registry-addr 127.0.0.1:5001

  # On a cluster that runs already (AKS...), reaching this machine at 10.0.0.4
  slipway up --target-kubeconfig ~/.kube/aks --target-context prod-admin --platform-host 10.0.0.4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("registry-addr") {
				cfg.Registry.Addr = registryAddr
			}
			if cmd.Flags().Changed("git-addr") {
				cfg.Git.Addr = gitAddr
			}
			if cmd.Flags().Changed("anonymous-pull") {
				cfg.Registry.AnonymousPull = anonymousPull
			}
			if cmd.Flags().Changed("registry-token-auth") {
				cfg.Registry.TokenAuth = tokenAuth
			}
			if cmd.Flags().Changed("cluster") {
				cfg.Cluster.Enabled = &withCluster
			}
			if noMonitoring {
				off := false
				cfg.Monitoring.Enabled = &off
			}
			if kubeconfig != "" {
				cfg.Cluster.Kubeconfig = kubeconfig
			}
			if kubeVersion != "" {
				cfg.Cluster.KubernetesVersion = kubeVersion
			}
			if fleet != (config.ExternalFleet{}) {
				existing.Fleet = &fleet
			}
			if lineRegistry != (config.LineRegistry{}) {
				existing.Registry = &lineRegistry
			}
			if existing != (config.ExistingCluster{}) {
				cfg.Cluster.Existing = cfg.Cluster.Existing.With(existing)
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			return platform.Up(cmd.Context(), cfg, g.streams.Err, func(st platform.State) {
				printBanner(g, cfg, st)
			})
		},
	}
	cmd.Flags().StringVar(&registryAddr, "registry-addr", config.Default().Registry.Addr, "address the registry listens on")
	cmd.Flags().StringVar(&gitAddr, "git-addr", config.Default().Git.Addr, "address the git server listens on")
	cmd.Flags().BoolVar(&anonymousPull, "anonymous-pull", false, "let clients without credentials pull")
	cmd.Flags().BoolVar(&tokenAuth, "registry-token-auth", false, "challenge registry clients for a token from the registry's token endpoint, as ACR does")
	cmd.Flags().BoolVar(&withCluster, "cluster", true, "start the local Kubernetes cluster too (needs root; default: on as root)")
	cmd.Flags().BoolVar(&noMonitoring, "no-monitoring", false, "leave out Prometheus and Alertmanager")
	cmd.Flags().StringVar(&kubeVersion, "kubernetes-version", "", "the Kubernetes release a new cluster starts on (default: the newest, "+components.KubernetesVersion+"; one of "+strings.Join(components.KubernetesVersions, ", ")+"); an existing cluster keeps its own")
	cmd.Flags().StringVar(&existing.Kubeconfig, "target-kubeconfig", "", "deploy to the existing cluster of this kubeconfig instead of running one (cluster.existing)")
	cmd.Flags().StringVar(&existing.Context, "target-context", "", "the context of --target-kubeconfig to use (default: its current one)")
	cmd.Flags().StringVar(&existing.Flux, "target-flux", "", "on an existing cluster: install (Slipway's pinned Flux, the default) or adopt (the Flux already there, at its own version)")
	cmd.Flags().StringVar(&existing.JobCacheClass, "job-cache-class", "", "on an existing cluster: the StorageClass of the teams' Go cache claims, asked for ReadWriteMany (default: ReadWriteOnce claims of the default class)")
	cmd.Flags().StringVar(&fleet.URL, "fleet-url", "", "on an existing cluster: the fleet repository's https:// URL on a git host of its own (default: the platform's git server)")
	cmd.Flags().StringVar(&fleet.Username, "fleet-username", "", "the account that may push to --fleet-url")
	cmd.Flags().StringVar(&fleet.PasswordFile, "fleet-password-file", "", "a file holding that account's password or token")
	cmd.Flags().StringVar(&fleet.CAFile, "fleet-ca-file", "", "the CA of --fleet-url's host, when the system does not trust it")
	cmd.Flags().StringVar(&fleet.ReaderUsername, "fleet-reader-username", "", "a read-only account of --fleet-url's host, given to Flux instead of the one that pushes")
	cmd.Flags().StringVar(&fleet.ReaderPasswordFile, "fleet-reader-password-file", "", "a file holding that read-only account's password or token")
	cmd.Flags().StringVar(&lineRegistry.Host, "line-registry", "", "on an existing cluster: the registry (HOST[:PORT], such as myacr.azurecr.io) the teams' images and charts go to (default: the platform's)")
	cmd.Flags().StringVar(&lineRegistry.CAFile, "line-registry-ca-file", "", "the CA of --line-registry, when the system does not trust it")
	cmd.Flags().StringVar(&lineRegistry.ReaderUsername, "line-registry-reader-username", "", "the account of --line-registry that may pull the teams' charts, given to Flux")
	cmd.Flags().StringVar(&lineRegistry.ReaderPasswordFile, "line-registry-reader-password-file", "", "a file holding that account's password or token")
	cmd.Flags().StringVar(&lineRegistry.PasswordsDir, "line-registry-passwords-dir", "", "a directory with a file per team, named ci-TEAM, holding the password of that account of --line-registry (which may push under TEAM/ only)")
	cmd.Flags().StringVar(&existing.PlatformHost, "platform-host", "", "the host or address at which the existing cluster reaches this platform")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "merge the cluster's \"slipway\" context into this file (default: $KUBECONFIG or ~/.kube/config)")
	return cmd
}

func printBanner(g *globals, cfg config.Config, st platform.State) {
	w := g.streams.Out
	fmt.Fprintf(w, "slipway is up (pid %d, state in %s)\n\n", st.PID, cfg.Home)
	for _, e := range st.Endpoints {
		url := e.URL
		if url == "" {
			url = "running"
		}
		fmt.Fprintf(w, "  %-24s %s\n", e.Service, url)
		for _, n := range e.Notes {
			fmt.Fprintf(w, "  %-24s %s\n", "", n)
		}
	}
	if st.Kubeconfig != "" {
		fmt.Fprintf(w, "\n  %-24s context \"slipway\" in %s\n", "kubectl", st.Kubeconfig)
	}
	if e := cfg.Cluster.Existing; e != nil {
		which := "its current context"
		if e.Context != "" {
			which = fmt.Sprintf("context %q", e.Context)
		}
		fmt.Fprintf(w, "\n  %-24s the existing cluster: %s of %s (slipway kubectl uses it too)\n", "kubectl", which, e.Kubeconfig)
	}
	fmt.Fprintf(w, "\nnext:\n")
	if cfg.FluxEnabled() {
		fmt.Fprintf(w, "  slipway demo                                       # play the three tracks on this platform\n")
		fmt.Fprintf(w, "  slipway tenant create dev1 --repo hello            # ops: onboard a team (prints its password)\n")
		fmt.Fprintf(w, "  slipway release create dev1/hello                  # ops: release its app in dev1-staging\n")
		scheme, host, _ := strings.Cut(st.Addresses.Git, "://")
		fmt.Fprintf(w, "  git push %s://dev1@%s/dev1/hello.git   # dev: azure-pipelines.yml runs on push\n", scheme, host)
		fmt.Fprintf(w, "  slipway pipeline list; slipway get all -A; slipway history hello\n")
	} else {
		fmt.Fprintf(w, "  slipway user set dev1 --push dev1/                 # a team user; prints its password\n")
		fmt.Fprintf(w, "  slipway build ./cmd/app --image %s/dev1/app   # build and push an app\n", cfg.Registry.Addr)
		fmt.Fprintf(w, "  slipway pipeline run                               # run ./azure-pipelines.yml here\n")
	}
	fmt.Fprintf(w, "\nstop with Ctrl-C or `slipway down`\n")
}

func newDownCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the running platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			st, err := platform.Down(ctx, cfg.RunDir())
			if err == platform.ErrNotRunning {
				fmt.Fprintln(g.streams.Err, "slipway is not running")
				// A slipway killed with SIGKILL leaves its pods' containers
				// running: down ends them.
				if cfg.ClusterEnabled() {
					left, err := cluster.StopLeftovers(platform.ClusterOptions(cfg))
					if left.Any() {
						fmt.Fprintf(g.streams.Err, "ended what a killed run left: %s\n", left)
					}
					if left.NetworkInUse != "" {
						fmt.Fprintf(g.streams.Err, "left the pod network and bridge alone: %s\n", left.NetworkInUse)
					}
					return err
				}
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "stopped slipway (pid %d)\n", st.PID)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for everything to stop")
	return cmd
}

// kubernetesStatus is the cluster's release in `slipway status`.
func newStatusCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the platform runs and whether each service is healthy",
		Long: `Show the running platform's services and probe each one's health.
Exits 0 when all are healthy, 1 when one is not, and 3 when slipway is not running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			st, services, err := platform.Status(cmd.Context(), cfg.RunDir())
			if err == platform.ErrNotRunning {
				return &exitError{code: ExitNotRunning, err: err}
			}
			if err != nil {
				return err
			}
			report := struct {
				PID        int                      `json:"pid"`
				StartedAt  time.Time                `json:"startedAt"`
				Services   []platform.ServiceStatus `json:"services"`
				Dashboard  string                   `json:"dashboard,omitempty"`
				Kubernetes *opsview.KubernetesView  `json:"kubernetes,omitempty"`
			}{st.PID, st.StartedAt, services, dashboardURL(st.Addresses.Git), nil}
			// The versions of the cluster this platform runs (an existing
			// cluster's are its owner's).
			if st.Addresses.AdminKubeconfig != "" && !cfg.ClusterExisting() {
				if v, err := platform.ClusterVersions(cfg); err == nil {
					report.Kubernetes = opsview.Kubernetes(v)
				}
			}
			if !st.Ready {
				return fmt.Errorf("slipway is starting (pid %d, since %s); its progress is on the terminal of `slipway up`", st.PID, st.StartedAt.Local().Format(time.DateTime))
			}
			if done, err := printStructured(g.streams.Out, output, report); !done {
				fmt.Fprintf(g.streams.Out, "slipway is up (pid %d, since %s)\n", st.PID, st.StartedAt.Local().Format(time.DateTime))
				fmt.Fprintf(g.streams.Out, "%-24s %-8s %s\n", "SERVICE", "HEALTH", "URL")
				for _, s := range services {
					health := "ok"
					if !s.Healthy {
						health = "failing"
					}
					fmt.Fprintf(g.streams.Out, "%-24s %-8s %s\n", s.Service, health, s.URL)
					if s.Error != "" {
						fmt.Fprintf(g.streams.Out, "%-24s %-8s %s\n", "", "", s.Error)
					}
				}
				if report.Dashboard != "" {
					fmt.Fprintf(g.streams.Out, "\ndashboard: %s (sign in with a platform user; slipway open)\n", report.Dashboard)
				}
				if k := report.Kubernetes; k != nil {
					fmt.Fprintf(g.streams.Out, "\nKubernetes %s", k.Running)
					if k.UpgradeAvailable {
						fmt.Fprintf(g.streams.Out, "; %s is available: slipway cluster upgrade --plan", k.Newest)
					}
					fmt.Fprintln(g.streams.Out)
				}
			} else if err != nil {
				return err
			}
			for _, s := range services {
				if !s.Healthy {
					return fmt.Errorf("%s is not healthy: %s", s.Service, s.Error)
				}
			}
			return nil
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
