package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/opsview"
	"github.com/slipway-dev/slipway/internal/platform"
	"github.com/slipway-dev/slipway/internal/supervisor"
)

func newOpsCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "ops",
		Short: "Show the platform as ops sees it: tenants, Flux, the fleet's commits, the cluster, databases, alerts",
		Long: `Show what the dashboard's Ops page shows, from the same data: the teams, Flux's
controllers and what they watch, the fleet repository's last commits, the
cluster's version and whether an upgrade is available, the databases and the
alerts (firing and silenced). A part that cannot be read is named, and the
others are still shown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, p, err := attachRunning(g)
			if err != nil {
				return err
			}
			src := platform.OpsSources(cfg, platform.LazyClients(p.State.Addresses.AdminKubeconfig))
			// The running platform says whether it runs Alertmanager (this
			// command's own settings may differ from those of its up).
			if !slices.ContainsFunc(p.State.Endpoints, func(e supervisor.Endpoint) bool { return e.Service == "alertmanager" }) {
				src.AlertmanagerURL = ""
			}
			v := opsview.Read(cmd.Context(), src)
			if done, err := printStructured(g.streams.Out, output, v); done {
				return err
			}
			w := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			fmt.Fprintf(w, "tenants: %s\n", dash(strings.Join(v.Tenants, ", ")))
			if k := v.Kubernetes; k != nil {
				fmt.Fprintf(w, "kubernetes: %s", k.Running)
				if k.UpgradeAvailable {
					fmt.Fprintf(w, " (%s is available: slipway cluster upgrade --plan)", k.Newest)
				}
				fmt.Fprintln(w)
			}
			for _, c := range v.Controllers {
				state := "ready"
				if !c.Ready {
					state = "NOT READY"
				}
				fmt.Fprintf(w, "controller %s\t%s\t%s\n", c.Name, state, c.Image)
			}
			for _, o := range v.Flux {
				fmt.Fprintf(w, "%s %s/%s\tready=%s\t%s\n", o.Kind, o.Namespace, o.Name, o.Ready, o.Revision)
			}
			for _, c := range v.FleetCommits {
				fmt.Fprintf(w, "fleet %.12s\t%s\t%s\t%s\n", c.ID, c.At.Local().Format("01-02 15:04:05"), c.Author, c.Subject)
			}
			for _, d := range v.Databases {
				fmt.Fprintf(w, "database %s/%s\t%s/%s\t%s\n", d.Team, d.Name, d.Namespace, d.Cluster, d.Phase)
			}
			for _, a := range v.Alerts {
				fmt.Fprintf(w, "alert %s\tteam=%s\t%s\n", a.Labels["alertname"], a.Labels["team"], a.Status.State)
			}
			for _, e := range v.Errors {
				fmt.Fprintf(w, "could not read %s\n", e)
			}
			return w.Flush()
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
