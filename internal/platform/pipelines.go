package platform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/gitserver"
	"github.com/slipway-dev/slipway/internal/supervisor"
)

// PipelineStore is where runs and their logs are kept.
func PipelineStore(cfg config.Config) *runner.Store {
	return &runner.Store{Dir: filepath.Join(cfg.Home, "pipelines")}
}

// PipelineInputs are what every run of a team's pipeline gets, as a
// pipeline on Azure DevOps gets them from its definition: the registry's
// address and the team's CI account, whose password is a secret variable
// (so steps map it into env: explicitly, and logs never show it).
//
//	slipway.registry.addr      -> $SLIPWAY_REGISTRY_ADDR (slipway reads it)
//	slipway.registry.username  -> $SLIPWAY_REGISTRY_USERNAME
//	slipway.registry.password  secret: env: {SLIPWAY_REGISTRY_PASSWORD: $(slipway.registry.password)}
//	slipway.git.username, slipway.git.password (secret), slipway.git.url
func PipelineInputs(cfg config.Config, users *auth.Store, gitURL string) func(repo string) (runner.Inputs, error) {
	return func(repo string) (runner.Inputs, error) {
		team, _, _ := strings.Cut(repo, "/")
		user := "ci-" + team
		password, err := ciPassword(cfg, users, user, team+"/")
		if err != nil {
			return runner.Inputs{}, err
		}
		env := os.Environ()
		env = append(env, "SLIPWAY_HOME="+cfg.Home)
		if exe, err := os.Executable(); err == nil {
			// Steps call slipway: the very program running them.
			env = append(env, "PATH="+filepath.Dir(exe)+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
		vars := map[string]string{
			"slipway.registry.addr":     cfg.Registry.Addr,
			"slipway.registry.username": user,
			"slipway.git.username":      user,
		}
		if gitURL != "" {
			vars["slipway.git.url"] = gitURL
		}
		return runner.Inputs{Env: env, Variables: vars, Secrets: map[string]string{
			"slipway.registry.password": password,
			"slipway.git.password":      password,
		}}, nil
	}
}

// ciPassword makes a team's CI account once: it may push where the team
// may, nowhere else. The password is kept under the pipelines directory.
func ciPassword(cfg config.Config, users *auth.Store, user, prefix string) (string, error) {
	return accountPassword(users, user, filepath.Join(cfg.Home, "pipelines", "credentials", user), []string{prefix})
}

// PipelineService runs the pipeline runner: every push to the git server
// whose repository has an azure-pipelines.yml may start a run.
type PipelineService struct {
	Config config.Config
	Users  *auth.Store
	Git    *GitService
	runner *runner.Runner
}

// NewPipelineService makes the service and connects it to the git
// server's push events.
func NewPipelineService(cfg config.Config, users *auth.Store, git *GitService) *PipelineService {
	s := &PipelineService{Config: cfg, Users: users, Git: git}
	s.runner = &runner.Runner{
		Store:   PipelineStore(cfg),
		RepoDir: func(repo string) string { return filepath.Join(cfg.GitDir(), filepath.FromSlash(repo)+".git") },
	}
	git.OnPush = func(ev gitserver.Event) {
		s.runner.OnPush(runner.Push{Repo: ev.Repo, Ref: ev.Ref, Before: ev.Old, After: ev.New, Pusher: ev.Pusher})
	}
	return s
}

func (s *PipelineService) Name() string { return "pipelines" }

func (s *PipelineService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	if err := os.MkdirAll(s.Config.LogDir(), 0o755); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(s.Config.LogDir(), "pipelines.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	s.runner.Log = log
	s.runner.Inputs = PipelineInputs(s.Config, s.Users, s.Git.URL)
	errc := make(chan error, 1)
	go func() { errc <- s.runner.Start(ctx) }()
	ready(supervisor.Endpoint{URL: "runs azure-pipelines.yml on every push", Notes: []string{
		"see:     slipway pipeline list; slipway pipeline logs ID",
	}})
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("pipeline runner: %w", err)
		}
		return nil
	case <-ctx.Done():
		return <-errc
	}
}
