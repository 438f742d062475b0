package platform

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/lineview"
	"github.com/slipway-dev/slipway/internal/opsview"
	"github.com/slipway-dev/slipway/internal/release"
)

// LineSources are where this platform's line is read from: its runs'
// store, its git server's repositories and, given the cluster's admin
// kubeconfig, the releases ("": a platform without a cluster).
func LineSources(cfg config.Config, kubeconfig string) lineview.Sources {
	src := lineview.Sources{Runs: PipelineStore(cfg), Subjects: commitSubjects(cfg.GitDir())}
	if kubeconfig != "" {
		clients := LazyClients(kubeconfig)
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
// once that worked.
func LazyClients(kubeconfig string) func() (*release.Clients, error) {
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
		var in bytes.Buffer
		for _, c := range commits {
			if commitID.MatchString(c) {
				in.WriteString(c + "\n")
			}
		}
		if in.Len() == 0 || !filepath.IsLocal(repo) {
			return out
		}
		cmd := exec.Command("git", "--git-dir", filepath.Join(gitDir, filepath.FromSlash(repo)+".git"), "cat-file", "--batch")
		cmd.Stdin = &in
		data, err := cmd.Output()
		if err != nil {
			return out
		}
		// Each object: "ID TYPE SIZE\n" CONTENT "\n", or "ID missing\n".
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			header, err := r.ReadString('\n')
			if err != nil {
				return out
			}
			f := strings.Fields(header)
			if len(f) != 3 {
				continue
			}
			size, err := strconv.Atoi(f[2])
			if err != nil || size < 0 {
				return out
			}
			body := make([]byte, size+1)
			if _, err := io.ReadFull(r, body); err != nil {
				return out
			}
			if f[1] != "commit" {
				continue
			}
			if _, msg, ok := strings.Cut(string(body[:size]), "\n\n"); ok {
				subject, _, _ := strings.Cut(msg, "\n")
				if len(subject) > 200 {
					subject = subject[:200]
				}
				out[f[0]] = subject
			}
		}
	}
}

// Rerun runs a run's commit of its pipeline again, as a push by the
// user who asks (the dashboard's "Run again").
func (s *PipelineService) Rerun(run *runner.Run, by string) error {
	s.runner.OnPush(runner.Push{Repo: run.Repository(), Ref: run.Ref, Before: run.Before, After: run.Commit, Pusher: by, Pipeline: run.Pipeline})
	return nil
}

// OpsSources are where this platform's ops view is read from (kubeconfig
// "": a platform without a cluster).
func OpsSources(cfg config.Config, kubeconfig string) opsview.Sources {
	src := opsview.Sources{FleetDir: filepath.Join(cfg.GitDir(), filepath.FromSlash(FleetRepo)+".git"),
		Flux: cfg.FluxEnabled(), Databases: cfg.DatabasesEnabled()}
	if kubeconfig != "" {
		src.Clients = LazyClients(kubeconfig)
		src.Versions = func() (cluster.Versions, error) { return ClusterVersions(cfg) }
	}
	if cfg.MonitoringEnabled() && cfg.Monitoring.AlertmanagerAddr != "" {
		src.AlertmanagerURL = "http://" + cfg.Monitoring.AlertmanagerAddr
	}
	return src
}
