package platform

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/gitcmd"
	"github.com/slipway-dev/slipway/internal/lineview"
	"github.com/slipway-dev/slipway/internal/opsview"
	"github.com/slipway-dev/slipway/internal/release"
)

// LineSources are where this platform's line is read from: its runs'
// store, its git server's repositories and, with clients (LazyClients),
// the releases (nil: a platform without a cluster).
func LineSources(cfg config.Config, clients func() (*release.Clients, error)) lineview.Sources {
	src := lineview.Sources{Runs: PipelineStore(cfg), Subjects: commitSubjects(cfg.GitDir())}
	if clients != nil {
		src.Releases = func(ctx context.Context) ([]release.EnvState, error) {
			c, err := clients()
			if err != nil {
				return nil, err
			}
			return release.Overview(ctx, c)
		}
	}
	return src
}

// LazyClients connects to a cluster on first use, and keeps the clients
// once that worked; nil for no kubeconfig (a platform without a
// cluster).
func LazyClients(kubeconfig string) func() (*release.Clients, error) {
	if kubeconfig == "" {
		return nil
	}
	var (
		mu sync.Mutex
		c  *release.Clients
	)
	return func() (*release.Clients, error) {
		mu.Lock()
		defer mu.Unlock()
		if c == nil {
			var err error
			if c, err = release.Connect(kubeconfig); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
}

var commitID = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// commitSubjects reads commits' first message lines from the git
// server's bare repositories, all of one repository with one git
// process; a commit the repository does not have gets none.
func commitSubjects(gitDir string) func(repo string, commits []string) map[string]string {
	return func(repo string, commits []string) map[string]string {
		out := map[string]string{}
		args := []string{"log", "--no-walk=unsorted", "--ignore-missing", "--format=%H%x00%s"}
		for _, c := range commits {
			if commitID.MatchString(c) {
				args = append(args, c)
			}
		}
		if len(args) == 4 || !filepath.IsLocal(repo) {
			return out
		}
		log, err := gitcmd.Run(context.Background(), filepath.Join(gitDir, filepath.FromSlash(repo)+".git"), nil, args...)
		if err != nil {
			return out
		}
		for _, line := range strings.Split(log, "\n") {
			if id, subject, ok := strings.Cut(line, "\x00"); ok {
				if len(subject) > 200 {
					subject = subject[:200]
				}
				out[id] = subject
			}
		}
		return out
	}
}

// Rerun runs a run's commit of its pipeline again, as a push by the
// user who asks (the dashboard's "Run again").
func (s *PipelineService) Rerun(run *runner.Run, by string) error {
	s.runner.OnPush(runner.Push{Repo: run.Repository(), Ref: run.Ref, Before: run.Before, After: run.Commit, Pusher: by, Pipeline: run.Pipeline})
	return nil
}

// OpsSources are where this platform's ops view is read from (clients
// nil: a platform without a cluster).
func OpsSources(cfg config.Config, clients func() (*release.Clients, error)) opsview.Sources {
	src := opsview.Sources{FleetDir: filepath.Join(cfg.GitDir(), filepath.FromSlash(FleetRepo)+".git"),
		Flux: cfg.FluxEnabled(), Databases: cfg.DatabasesEnabled(), Clients: clients}
	if f := cfg.ExternalFleet(); f != nil {
		// On a git host of its own, its commits are read there (ops edits
		// the fleet there too); without its password file, none are (up
		// reports the file).
		src.FleetDir = ""
		if remote, err := externalFleetRemote(*f); err == nil {
			src.FleetRemote = &remote
		}
	}
	if clients != nil && !cfg.ClusterExisting() { // an existing cluster's versions are its owner's
		src.Versions = func() (cluster.Versions, error) { return ClusterVersions(cfg) }
	}
	if am, ok := runningAlertmanager(cfg); ok {
		src.AlertmanagerURL = am.URL
	}
	return src
}
