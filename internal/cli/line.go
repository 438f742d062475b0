package cli

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/dashboard"
	"github.com/slipway-dev/slipway/internal/lineview"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newLineCmd(g *globals) *cobra.Command {
	var (
		team   string
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "line [TEAM/APP]",
		Short: "Show each app's versions from push to prod: run, image, Ready, tests, promotion",
		Long: `Show the line as the dashboard's Line page does, from the same data: per team
and app, one row per version, newest first, with who pushed it, its pipeline
run, the image and chart it published, when it was Ready and how its tests
went in staging, who promoted it to prod, and where it runs now (*).
-o json gives every field.`,
		Example: "  slipway line\n  slipway line dev1/hello\n  slipway line --team dev2 -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, kubeconfig, err := runningPlatform(g)
			if err != nil {
				return err
			}
			var teams []string
			if team != "" {
				teams = []string{team}
			}
			apps, err := lineview.Gather(cmd.Context(), platform.LineSources(cfg, platform.LazyClients(kubeconfig)), teams)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				t, name, ok := strings.Cut(args[0], "/")
				if !ok {
					return usageError("%q: name the app as TEAM/APP", args[0])
				}
				a, found := lineview.Find(apps, t, name)
				if !found {
					return fmt.Errorf("no app %s on the line (no run and no release of it yet)", args[0])
				}
				apps = []lineview.App{a}
			}
			if apps == nil {
				apps = []lineview.App{}
			}
			if done, err := printStructured(g.streams.Out, output, apps); done {
				return err
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			for i, a := range apps {
				if i > 0 {
					fmt.Fprintln(tw)
				}
				fmt.Fprintf(tw, "%s/%s\n", a.Team, a.Name)
				fmt.Fprintln(tw, "VERSION\tPUSHED\tRUN\tSTAGING\tPROD\tPUSH→READY")
				for _, v := range a.Versions {
					version := v.Version
					if version == "" {
						version = "-"
					}
					pushed := "-"
					if !v.PushedAt.IsZero() {
						pushed = fmt.Sprintf("%s %s %.7s", v.PushedBy, v.PushedAt.Local().Format("01-02 15:04:05"), v.Commit)
					}
					run := "-"
					if v.Run != nil {
						run = fmt.Sprintf("#%d %s", v.Run.ID, v.Run.Status)
					}
					envs := map[string]string{}
					for _, e := range v.Envs {
						var parts []string
						if e.Running {
							parts = append(parts, "*")
						}
						if !e.ReadyAt.IsZero() {
							parts = append(parts, "ready "+e.ReadyAt.Local().Format("15:04:05"))
						}
						if e.Tested != "" {
							parts = append(parts, "tests "+e.Tested)
						}
						if e.PromotedBy != "" {
							parts = append(parts, "promoted by "+e.PromotedBy)
						}
						envs[e.Env] = strings.Join(parts, " ")
					}
					ready := "-"
					if v.PushToReady > 0 {
						ready = v.PushToReady.Round(100 * time.Millisecond).String()
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", version, pushed, run, dash(envs["staging"]), dash(envs["prod"]), ready)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "only this team's apps")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runningPlatform is the running platform's configuration and its
// cluster's admin kubeconfig ("" without a cluster).
func runningPlatform(g *globals) (config.Config, string, error) {
	cfg, p, err := attachRunning(g)
	if err != nil {
		return cfg, "", err
	}
	return cfg, p.State.Addresses.AdminKubeconfig, nil
}

func attachRunning(g *globals) (config.Config, *platform.Platform, error) {
	cfg, err := g.config()
	if err != nil {
		return cfg, nil, err
	}
	p, err := platform.Attach(cfg)
	return cfg, p, err
}

// dashboardURL is the running platform's dashboard.
func dashboardURL(gitURL string) string {
	if gitURL == "" {
		return ""
	}
	return strings.TrimSuffix(gitURL, "/") + dashboard.Path
}

func newOpenCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "open",
		Short: "Open the dashboard in this machine's browser, or print its address",
		Long: `Print the running platform's dashboard address and start the desktop's
browser on it (xdg-open) when there is a display; on a machine without one,
open the printed address from a machine that reaches it. Sign in with a
platform user (slipway user list).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			p, err := platform.Attach(cfg)
			if err != nil {
				return err
			}
			u := dashboardURL(p.GitURL())
			if u == "" {
				return fmt.Errorf("the platform has no git server address, where the dashboard is served")
			}
			fmt.Fprintln(g.streams.Out, u)
			if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
				fmt.Fprintln(g.streams.Err, "no display here: open the address above in a browser (the platform's CA: slipway ca)")
				return nil
			}
			opener, err := exec.LookPath("xdg-open")
			if err != nil {
				fmt.Fprintln(g.streams.Err, "no xdg-open here: open the address above in a browser")
				return nil
			}
			c := exec.Command(opener, u)
			if err := c.Start(); err != nil {
				return fmt.Errorf("starting the browser: %w", err)
			}
			return c.Process.Release()
		},
	}
}
