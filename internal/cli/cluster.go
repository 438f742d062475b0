package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "The local Kubernetes cluster: up, status, down, reset, upgrade, snapshot, restore",
		Long: `The local single-node cluster, assembled from the upstream Kubernetes
programs (built once from pinned sources), Debian's containerd and runc, the
CNI bridge, kube-proxy and CoreDNS. It runs with the registry, whose images
its pods pull.`,
	}
	up := newUpCmd(g)
	up.Use = "up"
	up.Short = "Start the platform with the cluster (the same as `slipway up --cluster`)"
	up.Example = "  slipway cluster up\n  kubectl --context slipway get nodes"
	_ = up.Flags().Set("cluster", "true")
	down := newDownCmd(g)
	down.Short = "Stop the platform and the cluster (the same as `slipway down`)"
	cmd.AddCommand(up, newClusterStatusCmd(g), down, newClusterResetCmd(g), newClusterUpgradeCmd(g), newClusterSnapshotCmd(g), newClusterRestoreCmd(g))
	return cmd
}

func newClusterStatusCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the node and every pod, like kubectl get nodes and get pods -A",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.attach()
			if err != nil {
				return err
			}
			rest, err := p.RESTConfig()
			if err != nil {
				return err
			}
			client, err := clusterClient(rest)
			if err != nil {
				return err
			}
			report, err := cluster.ReadStatus(cmd.Context(), client)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, report); done {
				return err
			}
			w := g.streams.Out
			fmt.Fprintf(w, "%-12s %-8s %s\n", "NODE", "READY", "VERSION")
			for _, n := range report.Nodes {
				fmt.Fprintf(w, "%-12s %-8v %s\n", n.Name, n.Ready, n.Version)
			}
			fmt.Fprintf(w, "\n%-16s %-40s %-10s %s\n", "NAMESPACE", "POD", "PHASE", "READY")
			for _, p := range report.Pods {
				fmt.Fprintf(w, "%-16s %-40s %-10s %v\n", p.Namespace, p.Name, p.Phase, p.Ready)
			}
			return nil
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newClusterResetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reset",
		Short: "Delete the cluster's state (etcd data, certificates, node directories)",
		Long: `Delete everything the cluster keeps: etcd's data (every object), the
certificates and kubeconfigs, the kubelet's and containerd's directories.
The registry's images stay. The platform must be stopped first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if _, err := platform.ReadState(cfg.RunDir()); !errors.Is(err, platform.ErrNotRunning) {
				return errors.New("slipway is running (or starting): stop it with `slipway down` first")
			}
			start := time.Now()
			if err := cluster.Reset(platform.ClusterOptions(cfg)); err != nil {
				return err
			}
			if _, err := os.Stat(cfg.ClusterDir()); err == nil {
				return fmt.Errorf("%s is still there", cfg.ClusterDir())
			}
			fmt.Fprintf(g.streams.Err, "reset the cluster (%s)\n", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func clusterClient(cfg *rest.Config) (*kubernetes.Clientset, error) {
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}
