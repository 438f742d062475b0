package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newClusterUpgradeCmd(g *globals) *cobra.Command {
	var plan, force bool
	var to string
	var apiArgs []string
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Plan or perform the node's upgrade to another Kubernetes release (ops)",
		Long: `Upgrade the running cluster to another pinned Kubernetes release, one minor
at a time, in the order of the version-skew policy: etcd (after a snapshot),
the control plane (kube-apiserver, then kube-controller-manager and
kube-scheduler, which run in its process), then kube-proxy and the kubelet
with the node drained. Each program must be healthy on the
new release before the next moves; when one is not, the upgrade rolls back
(old programs, and etcd's data from the snapshot once etcd had moved).
Interrupted, it finishes when run again. CoreDNS and Flux keep their own
pins.

--plan shows what would change and checks first: the skew policy, the node
and every Flux object Ready, disk space, containerd, and the objects in the
fleet and in live Helm releases whose APIs the target deprecates or no
longer serves (from the target's own API lifecycle data).

The target's programs are built first when the cache lacks them (minutes,
once). Only ops (an admin user) may upgrade.`,
		Example: `  slipway cluster upgrade --plan
  slipway cluster upgrade --to ` + components.KubernetesVersion + `
  slipway cluster upgrade --to ` + components.KubernetesVersion + ` --apiserver-arg feature-gates=SomeGate=true`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := platform.UpgradeRequest{To: to, Plan: plan, Force: force}
			for _, a := range apiArgs {
				k, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if !ok {
					return fmt.Errorf("--apiserver-arg %q: want name=value, such as feature-gates=SomeGate=true", a)
				}
				if req.APIServerArgs == nil {
					req.APIServerArgs = map[string]string{}
				}
				req.APIServerArgs[k] = v
			}
			p, user, password, err := g.caller()
			if err != nil {
				return err
			}
			progress := g.streams.Err
			if output != outputText {
				progress = io.Discard
			}
			start := time.Now()
			thePlan, rep, err := p.UpgradeCluster(cmd.Context(), user, password, req, progress)
			if plan && thePlan != nil {
				if done, perr := printStructured(g.streams.Out, output, thePlan); done {
					return errors.Join(perr, err)
				}
				printPlan(g.streams.Out, thePlan)
				return err
			}
			if rep != nil {
				if done, perr := printStructured(g.streams.Out, output, rep); done {
					return errors.Join(perr, err)
				}
				printReport(g.streams.Out, rep, time.Since(start))
			} else if err != nil && thePlan != nil && output == outputText {
				printPlan(g.streams.Out, thePlan)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&plan, "plan", false, "show what the upgrade would do and what stands in its way; change nothing")
	cmd.Flags().StringVar(&to, "to", "", "the target release (default: the newest pinned, "+components.KubernetesVersion+")")
	cmd.Flags().BoolVar(&force, "force", false, "upgrade although preflight checks fail (the skew policy still holds)")
	cmd.Flags().StringArrayVar(&apiArgs, "apiserver-arg", nil, "an extra flag for the upgraded API server, name=value (repeatable; kept for later starts)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func printPlan(w io.Writer, p *platform.UpgradePlan) {
	fmt.Fprintf(w, "Cluster: %s\nTarget:  %s (pinned: %s)\n\n", p.Current, p.Target, strings.Join(p.Available, ", "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tCURRENT\tTARGET\tNOTE")
	for _, c := range p.Components {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Current, c.Target, c.Note)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nPreflight:")
	for _, c := range p.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
	}
	if len(p.Objects) == 0 {
		fmt.Fprintf(w, "\nNo object in the fleet or in a Helm release uses an API %s deprecates or removes.\n", p.Target)
	} else {
		fmt.Fprintf(w, "\nObjects whose APIs %s deprecates or no longer serves:\n", p.Target)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  WHERE\tAPI\tNAME\tSTATUS\tUSE INSTEAD")
		for _, o := range p.Objects {
			status := "deprecated in " + o.Deprecated
			if o.Removed != "" {
				status += ", removed in " + o.Removed
			}
			if o.Blocks {
				status = "NOT SERVED: removed in " + o.Removed
			}
			name := o.Name
			if o.Namespace != "" {
				name = o.Namespace + "/" + o.Name
			}
			repl := o.Replacement
			if repl == "" {
				repl = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s %s\t%s\t%s\t%s\n", o.Source, o.APIVersion, o.Kind, name, status, repl)
		}
		tw.Flush()
	}
	if p.Ready {
		fmt.Fprintf(w, "\nReady: slipway cluster upgrade --to %s\n", p.Target)
	} else {
		fmt.Fprintln(w, "\nNot ready: fix what failed above (or upgrade anyway with --force).")
	}
}

func printReport(w io.Writer, r *cluster.UpgradeReport, took time.Duration) {
	switch {
	case r.Nothing:
		fmt.Fprintf(w, "the cluster runs %s already\n", r.To)
		return
	case r.RolledBack:
		step, _, _ := strings.Cut(r.Reason, ":")
		fmt.Fprintf(w, "rolled back to %s: the upgrade to %s failed at %s\n", r.From, r.To, step)
	default:
		fmt.Fprintf(w, "upgraded the cluster from %s to %s in %s\n", r.From, r.To, took.Round(100*time.Millisecond))
	}
	for _, ph := range r.Phases {
		mark := ""
		if ph.Failed {
			mark = "  (failed)"
		}
		fmt.Fprintf(w, "  %-24s %8s%s\n", ph.Name, ph.Took.Round(10*time.Millisecond), mark)
	}
	if r.Snapshot != "" {
		fmt.Fprintf(w, "etcd's snapshot from before: %s\n", r.Snapshot)
	}
}

func newClusterSnapshotCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshot [FILE]",
		Short: "Save etcd's data (every object of the cluster) to a file, while it runs",
		Long: `Save a snapshot of etcd's whole keyspace through etcd's snapshot API, while
the cluster runs. Without FILE it goes under the cluster's snapshots
directory, named after the time. Restore it with ` + "`slipway cluster restore`" + `.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if _, err := platform.ReadState(cfg.RunDir()); err != nil {
				return fmt.Errorf("the cluster must run to take a snapshot: %w", err)
			}
			versions, err := platform.ClusterVersions(cfg)
			if err != nil {
				return err
			}
			// etcdctl goes with the etcd that runs.
			tools, err := platform.NodePrograms(cmd.Context(), versions, componentsOptions(cfg.CacheDir(), g))
			if err != nil {
				return err
			}
			opts := platform.ClusterOptions(cfg)
			path := filepath.Join(opts.SnapshotDir(), "snapshot-"+time.Now().UTC().Format("20060102T150405Z")+".db")
			if len(args) == 1 {
				if path, err = filepath.Abs(args[0]); err != nil {
					return err
				}
			}
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists: name another file", path)
			}
			start := time.Now()
			if err := cluster.Snapshot(cmd.Context(), opts, tools["etcdctl"], path); err != nil {
				return err
			}
			info, _ := os.Stat(path)
			fmt.Fprintf(g.streams.Err, "saved etcd's data (Kubernetes %s) to %s: %d KiB in %s\n", versions.Summary(), path, info.Size()>>10, time.Since(start).Round(time.Millisecond))
			fmt.Fprintln(g.streams.Out, path)
			return nil
		},
	}
}

func newClusterRestoreCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace etcd's data with a snapshot (the platform must be stopped)",
		Long: `Replace the cluster's etcd data with a snapshot saved by ` + "`slipway cluster snapshot`" + `
(or by an upgrade). The data it replaces is kept beside it. The platform
must be stopped first; the next ` + "`slipway up`" + ` starts from the snapshot.
The restored keyspace's revision is moved past anything clients saw, so
every controller starts its watches over.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if _, err := platform.ReadState(cfg.RunDir()); !errors.Is(err, platform.ErrNotRunning) {
				return errors.New("slipway is running (or starting): stop it with `slipway down` first")
			}
			versions, err := platform.ClusterVersions(cfg)
			if err != nil {
				return err
			}
			bins, err := platform.NodePrograms(cmd.Context(), versions, componentsOptions(cfg.CacheDir(), g))
			if err != nil {
				return err
			}
			start := time.Now()
			kept, err := cluster.RestoreSnapshot(cmd.Context(), platform.ClusterOptions(cfg), bins["etcdutl"], args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "restored etcd's data from %s in %s", args[0], time.Since(start).Round(time.Millisecond))
			if kept != "" {
				fmt.Fprintf(g.streams.Err, "; the data it replaced is in %s", kept)
			}
			fmt.Fprintln(g.streams.Err)
			return nil
		},
	}
}

func componentsOptions(cacheDir string, g *globals) components.Options {
	return components.Options{CacheDir: cacheDir, Progress: g.streams.Err}
}
