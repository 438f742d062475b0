package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/platform"
	"github.com/slipway-dev/slipway/internal/release"
)

// who names the person or pipeline acting: the pipeline's requester, else
// the login name.
func who() string {
	for _, k := range []string{"SLIPWAY_ACTOR", "BUILD_REQUESTEDFOR", "USER"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

func (f *clusterFlags) clients(g *globals) (*release.Clients, error) {
	path := f.kubeconfig
	if path == "" {
		if _, err := f.rest(g); err != nil { // says clearly when nothing runs
			return nil, err
		}
		cfg, err := g.config()
		if err != nil {
			return nil, err
		}
		path = cluster.Defaults(cfg.ClusterDir()).AdminKubeconfig()
	}
	return release.Connect(path)
}

type appFlags struct {
	team, env string
	cf        clusterFlags
}

func (a *appFlags) add(cmd *cobra.Command, envDefault string) {
	cmd.Flags().StringVar(&a.team, "team", "", "the app's team (default: the only team with a release of that name)")
	cmd.Flags().StringVar(&a.env, "env", envDefault, "environment: staging or prod")
	a.cf.add(cmd)
}

func newWaitCmd(g *globals) *cobra.Command {
	var (
		a       appFlags
		version string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait APP --version VERSION",
		Short: "Wait until an exact chart version is deployed and ready, or say why it will not be",
		Long: `Block until VERSION of APP is deployed in the environment's namespace — Helm's
latest release is that chart version, Flux says Ready, every replica of the
new Deployment is available — asking Flux to look at once rather than at its
next interval. Fails fast, with the reason, when the upgrade fails or is
rolled back, a pod cannot pull its image or crash-loops, or Flux has moved on
to a newer version. The outcome is recorded: promote needs it.`,
		Example: "  slipway wait hello --env staging --version 0.1.1-build.7",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version == "" {
				return usageError("say which version with --version (the chart version the pipeline pushed)")
			}
			c, err := a.cf.clients(g)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			ns, err := release.Locate(ctx, c, a.team, args[0], a.env)
			if err != nil {
				return err
			}
			start := time.Now()
			d, err := release.Wait(ctx, c, ns, args[0], version, who(), g.streams.Err)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "%s %s is ready in %s after %s (image %s)\n", d.App, d.Version, d.Namespace, time.Since(start).Round(10*time.Millisecond), d.Image)
			return nil
		},
	}
	a.add(cmd, "staging")
	cmd.Flags().StringVar(&version, "version", "", "the chart version to wait for")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

func newTestCmd(g *globals) *cobra.Command {
	var (
		a       appFlags
		appFile string
		output  outputFormat
	)
	cmd := &cobra.Command{
		Use:   "test APP",
		Short: "Run the release's helm tests and the app's smoke checks against the live version",
		Long: `Run the chart's helm test hooks and the HTTP smoke checks of the app's
slipway.yaml (default: ./slipway.yaml) against the version running in the
environment, and record the result for that version: promote lets only a
version that passed go on.`,
		Example: "  slipway test hello --env staging",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := release.ReadAppFile(appFile)
			if err != nil {
				return err
			}
			c, err := a.cf.clients(g)
			if err != nil {
				return err
			}
			ns, err := release.Locate(cmd.Context(), c, a.team, args[0], a.env)
			if err != nil {
				return err
			}
			t, version, err := release.RunTests(cmd.Context(), c, ns, args[0], spec.Smoke, who(), g.streams.Err)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, t); done {
				return err
			}
			for _, ch := range t.Checks {
				mark := "passed"
				if !ch.Passed {
					mark = "FAILED"
				}
				fmt.Fprintf(g.streams.Out, "%-7s %s: %s\n", mark, ch.Name, ch.Message)
			}
			if !t.Passed {
				return &exitError{code: 1, err: fmt.Errorf("%s %s in %s failed its tests: it will not be promoted", args[0], version, ns)}
			}
			fmt.Fprintf(g.streams.Err, "%s %s in %s passed %d check(s)\n", args[0], version, ns, len(t.Checks))
			return nil
		},
	}
	a.add(cmd, "staging")
	cmd.Flags().StringVar(&appFile, "file", "slipway.yaml", "the app's slipway.yaml with its smoke checks")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newPromoteCmd(g *globals) *cobra.Command {
	var (
		a        appFlags
		from, to string
		version  string
		wait     bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "promote APP --from staging --to prod",
		Short: "Commit the tested version running in one environment to the next",
		Long: `Promote the version of APP running in --from, which must have been confirmed
ready (slipway wait) and passed its tests (slipway test) with the same image,
by committing it — the exact chart version, whose chart pins the image digest —
to the --to overlay of the fleet repository, saying who promoted what and
when. Flux applies it; with --wait, wait until it is ready there too.`,
		Example: "  slipway promote hello --from staging --to prod --wait",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.cf.clients(g)
			if err != nil {
				return err
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			team := a.team
			if team == "" {
				ns, err := release.Locate(cmd.Context(), c, "", args[0], from)
				if err != nil {
					return err
				}
				team = strings.TrimSuffix(ns, "-"+from)
			}
			fleet, err := platform.FleetRemote(cfg)
			if err != nil {
				return err
			}
			p, err := release.Promote(cmd.Context(), c, fleet, release.Promotion{Team: team, App: args[0], From: from, To: to, Version: version, By: who()})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "promoted %s/%s %s from %s to %s (commit %.12s, image %s)\n", team, args[0], p.Version, from, to, p.Commit, p.Image)
			if !wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			d, err := release.Wait(ctx, c, team+"-"+to, args[0], p.Version, who(), g.streams.Err)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "%s %s is ready in %s\n", d.App, d.Version, d.Namespace)
			return nil
		},
	}
	cmd.Flags().StringVar(&a.team, "team", "", "the app's team (default: found from the release)")
	cmd.Flags().StringVar(&from, "from", "staging", "environment the tested version runs in")
	cmd.Flags().StringVar(&to, "to", "prod", "environment to promote it to")
	cmd.Flags().StringVar(&version, "version", "", "refuse unless this is the version running in --from")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until it is ready in --to")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait, give up after this long")
	a.cf.add(cmd)
	return cmd
}

func newHistoryCmd(g *globals) *cobra.Command {
	var (
		a      appFlags
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:     "history APP",
		Short:   "Show which version ran where, whether it was tested, and who promoted it",
		Example: "  slipway history hello",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.cf.clients(g)
			if err != nil {
				return err
			}
			team := a.team
			if team == "" {
				ns, err := release.Locate(cmd.Context(), c, "", args[0], "staging")
				if err != nil {
					return err
				}
				team = strings.TrimSuffix(ns, "-staging")
			}
			entries, err := release.History(cmd.Context(), c, team, args[0])
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, entries); done {
				return err
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ENV\tVERSION\tREADY\tTESTED\tPROMOTED\tIMAGE")
			for _, e := range entries {
				ready, tested, promoted := "-", "-", "-"
				if !e.ReadyAt.IsZero() {
					ready = e.ReadyAt.Local().Format("01-02 15:04:05")
				}
				if e.Test != nil {
					tested = "failed"
					if e.Test.Passed {
						tested = "passed"
					}
					tested += " " + e.Test.At.Local().Format("15:04:05")
				}
				if !e.PromotedAt.IsZero() {
					promoted = fmt.Sprintf("by %s from %s %s", e.PromotedBy, e.PromotedFrom, e.PromotedAt.Local().Format("15:04:05"))
				}
				image := e.Image
				if i := strings.Index(image, "@sha256:"); i >= 0 {
					image = image[i+1 : i+1+7+12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Env, e.Version, ready, tested, promoted, image)
			}
			return tw.Flush()
		},
	}
	a.add(cmd, "")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
