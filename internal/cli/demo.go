package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/demo"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		keep        bool
		extraPushes int
		timeout     time.Duration
		upgrade     bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play the three tracks end to end: ops onboards two teams, both ship, one ships again",
		Long: `Bring the platform up (registry, git server, pipeline runner, cluster, Flux)
unless it runs already, then play the scenario the way the people would, with
slipway and git: ops onboards dev1 and dev2 and releases their apps in
staging; each developer pushes a small Go app (examples/hello, examples/quotes)
with its azure-pipelines.yml; each pipeline builds and publishes the image and
the chart, waits for the new version in staging, tests it and promotes it to
prod; then dev2 pushes a second version, which flows through the same way.
With monitoring (the default), ops then makes the 5xx alert stricter and has
every version bake 60 s in staging under traffic; dev2 pushes a version that
fails every other request: it passes its tests, fails its bake, is refused
promotion by hand while its alert fires, and its fix reaches prod.
With databases (SLIPWAY_DATABASES=true), ops gives quotes a PostgreSQL 15
database before its first release; near the end dev2 stores quotes in
staging and prod, ops upgrades the database to PostgreSQL 17 in staging
while quotes is read in both, dev2's tests run against it, ops upgrades
prod, every quote is checked, ops confirms, and dev2 ships again.
With --upgrade, ops then plans and performs the cluster's upgrade to the
newest pinned Kubernetes while both apps are probed in staging and prod
(a new cluster starts one release back), and dev1 ships through the
upgraded line.
Prints the timeline and exits non-zero if any step failed. Needs root (the
cluster) and the source checkout (the example apps and the pinned programs).`,
		Example: "  slipway demo\n  slipway demo --keep      # leave the platform running afterwards\n  slipway demo --upgrade   # and upgrade the cluster near the end",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			examples, err := findExamples()
			if err != nil {
				return err
			}
			target := ""
			if upgrade {
				// A new cluster starts one release back, so there is
				// an upgrade to show; one that runs keeps its own.
				target = components.KubernetesVersion
				if cfg.Cluster.KubernetesVersion == "" && len(components.KubernetesVersions) > 1 {
					cfg.Cluster.KubernetesVersion = components.KubernetesVersions[len(components.KubernetesVersions)-2]
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			start := time.Now()
			if _, err := platform.Attach(cfg); errors.Is(err, platform.ErrNotRunning) {
				fmt.Fprintln(g.streams.Out, "starting the platform (the first time, Kubernetes, CoreDNS and Flux are compiled from source: allow 20-30 minutes)")
			}
			plat, stop, err := platform.Ensure(ctx, cfg, &prefixWriter{w: g.streams.Err, prefix: "  up: "})
			if err != nil {
				return err
			}
			upTook := time.Since(start)
			stopped := false
			defer func() {
				if stop != nil && !stopped {
					stop()
				}
			}()
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "the platform is up (%s); playing the scenario\n\n", upTook.Round(100*time.Millisecond))
			fleet, err := plat.FleetRemote()
			if err != nil {
				return err
			}
			d := &demo.Demo{Bin: exe, Env: []string{"SLIPWAY_HOME=" + cfg.Home}, Examples: examples, Store: platform.PipelineStore(cfg),
				GitURL: plat.GitURL(), Fleet: fleet, ExtraPushes: extraPushes, Upgrade: target, Databases: cfg.DatabasesEnabled(), Out: g.streams.Out}
			res, runErr := d.Run(ctx)
			demo.PrintTimeline(g.streams.Out, d.Start(), res.Events)
			fmt.Fprintf(g.streams.Out, "\nplatform up: %s; scenario: %s; total: %s\n", upTook.Round(100*time.Millisecond),
				time.Since(d.Start()).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
			if len(res.StagingReady) > 0 {
				var parts []string
				for _, s := range res.StagingReady {
					parts = append(parts, s.Round(100*time.Millisecond).String())
				}
				fmt.Fprintf(g.streams.Out, "push to ready in staging: median %s over %d pushes (%s)\n", demo.Median(res.StagingReady).Round(100*time.Millisecond), len(res.StagingReady), strings.Join(parts, ", "))
			}
			for _, o := range res.DatabaseOutages {
				fmt.Fprintf(g.streams.Out, "reads unanswered during the database upgrade: %s/%s %s (%d of %d probes failed)\n", o.Namespace, o.App, o.Longest.Round(100*time.Millisecond), o.Failed, o.Probes)
			}
			for _, o := range res.Outages {
				fmt.Fprintf(g.streams.Out, "unavailable during the upgrade: %s/%s %s (%d of %d probes failed)\n", o.Namespace, o.App, o.Longest.Round(100*time.Millisecond), o.Failed, o.Probes)
			}
			if stop != nil && keep {
				stopped = true
				fmt.Fprintf(g.streams.Out, "\nthe platform keeps running (pid %d): see slipway get all -A, slipway pipeline list; stop it with slipway down\n", os.Getpid())
				if runErr == nil {
					<-cmd.Context().Done()
				}
				stop()
			}
			if runErr != nil {
				return &exitError{code: 1, err: fmt.Errorf("the scenario failed: %w", runErr)}
			}
			fmt.Fprintln(g.streams.Out, "\nevery step passed")
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the platform running after the scenario (until Ctrl-C)")
	cmd.Flags().BoolVar(&upgrade, "upgrade", false, "then ops upgrades the cluster to "+components.KubernetesVersion+" while the apps are probed (a new cluster starts one release back), and dev1 ships through the upgraded line")
	cmd.Flags().IntVar(&extraPushes, "extra-pushes", 0, "then push hello this many more times, to measure push to ready in staging")
	cmd.Flags().DurationVar(&timeout, "timeout", 90*time.Minute, "give up after this long (the first run builds Kubernetes, CoreDNS and Flux)")
	return cmd
}

// prefixWriter prefixes each line (the platform's progress, under the
// demo's own output).
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !p.mid {
			io.WriteString(p.w, p.prefix)
		}
		io.WriteString(p.w, line)
		p.mid = !strings.HasSuffix(line, "\n")
	}
	return len(b), nil
}

// findExamples finds examples/ in the source checkout, upward from the
// working directory or the program.
func findExamples() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		for dir := s; ; dir = filepath.Dir(dir) {
			candidate := filepath.Join(dir, "examples")
			if _, err := os.Stat(filepath.Join(candidate, "hello", "azure-pipelines.yml")); err == nil {
				return candidate, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", errors.New("cannot find the example apps (examples/hello, examples/quotes): run slipway demo from its source checkout")
}
