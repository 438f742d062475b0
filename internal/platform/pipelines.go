package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/ci/podexec"
	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/gitserver"
	"github.com/slipway-dev/slipway/internal/release"
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
//
// With the cluster (withCluster), steps also get SLIPWAY_TEAM and
// SLIPWAY_KUBECONFIG: the team's CI account, which slipway wait, test and
// promote read the cluster with.
func PipelineInputs(cfg config.Config, users *auth.Store, gitURL string, withCluster bool) func(repo string) (runner.Inputs, error) {
	return func(repo string) (runner.Inputs, error) {
		team, in, err := ciInputs(cfg, users, repo, cfg.Registry.Addr, gitURL)
		if err != nil {
			return runner.Inputs{}, err
		}
		in.Env = append(os.Environ(), "SLIPWAY_HOME="+cfg.Home)
		if exe, err := os.Executable(); err == nil {
			// Steps call slipway: the very program running them.
			in.Env = append(in.Env, "PATH="+filepath.Dir(exe)+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
		if withCluster {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			kubeconfig, err := CIKubeconfig(ctx, cfg, team)
			cancel()
			switch {
			case err == nil:
				in.Env = append(in.Env, "SLIPWAY_TEAM="+team, "SLIPWAY_KUBECONFIG="+kubeconfig)
			case errors.Is(err, ErrNoCIAccount):
				// Not onboarded with tenant create (a user made by hand):
				// its steps read the cluster as before, with the platform's
				// kubeconfig.
			default:
				return runner.Inputs{}, err
			}
		}
		return in, nil
	}
}

// ciInputs are the variables and secrets every run of a repository's
// pipeline gets, wherever its jobs run: its team's CI account, and the
// registry and git server at the addresses the jobs reach them by
// (gitURL may be empty: not known). registryAddr is the platform's
// registry; with a line registry of its own, the jobs get that one, with
// the team's account there (ciPassword).
func ciInputs(cfg config.Config, users *auth.Store, repo, registryAddr, gitURL string) (string, runner.Inputs, error) {
	registryAddr = lineRegistryNode(cfg, registryAddr)
	team, _, _ := strings.Cut(repo, "/")
	user := "ci-" + team
	password, err := ciPassword(cfg, users, user, team+"/")
	if err != nil {
		return "", runner.Inputs{}, err
	}
	vars := map[string]string{
		"slipway.registry.addr":     registryAddr,
		"slipway.registry.username": user,
		"slipway.git.username":      user,
	}
	if gitURL != "" {
		vars["slipway.git.url"] = gitURL
	}
	return team, runner.Inputs{Variables: vars, Secrets: map[string]string{
		"slipway.registry.password": password,
		"slipway.git.password":      password,
	}}, nil
}

// ciPassword makes a team's CI account once: it may push where the team
// may, nowhere else. The password is kept under the pipelines directory.
// With a line registry of its own, the account is the team's account
// there, with the password its owner gave it: the platform takes that
// password for it too, so one account pushes to that registry and
// reaches this platform's git server and API.
func ciPassword(cfg config.Config, users *auth.Store, user, prefix string) (string, error) {
	if r := cfg.LineRegistry(); r != nil {
		password, err := r.TeamPassword(user)
		if err != nil {
			return "", err
		}
		if _, err := users.Authenticate(user, password); err != nil {
			if err := users.Set(user, password, false, []string{prefix}); err != nil {
				return "", err
			}
		}
		return password, nil
	}
	return accountPassword(users, user, filepath.Join(cfg.Home, "pipelines", "credentials", user), []string{prefix})
}

// lineRegistryNode is the registry the teams' images and charts go to, as
// the cluster's pods reach it: the line's registry of its own, else
// the platform's at platformNode.
func lineRegistryNode(cfg config.Config, platformNode string) string {
	if r := cfg.LineRegistry(); r != nil {
		return r.Host
	}
	return platformNode
}

// PipelineService runs the pipeline runner: every push to the git server
// whose repository has an azure-pipelines.yml may start a run.
type PipelineService struct {
	Config config.Config
	Users  *auth.Store
	// Pods, when set, runs every job in a pod of its team's CI namespace;
	// GitNodeURL is then the git server as pods reach it.
	Pods       *podexec.Executor
	GitNodeURL string
	// GitURL tells the git server's base URL once it listens, for the
	// runs' slipway.git.url variable.
	GitURL func() string
	// Ended, when set, hears of every run of a push that ended.
	Ended  func(*runner.Run)
	runner *runner.Runner
}

// NewPipelineService makes the service; connect the git server's pushes
// to its OnPush.
func NewPipelineService(cfg config.Config, users *auth.Store) *PipelineService {
	return &PipelineService{Config: cfg, Users: users, runner: &runner.Runner{
		Store:        PipelineStore(cfg),
		ParallelJobs: cfg.Pipelines.ParallelJobs,
		RepoDir:      func(repo string) string { return filepath.Join(cfg.GitDir(), filepath.FromSlash(repo)+".git") },
	}}
}

// OnPush queues the pipeline of a pushed repository.
func (s *PipelineService) OnPush(ev gitserver.Event) {
	s.runner.OnPush(runner.Push{Repo: ev.Repo, Ref: ev.Ref, Before: ev.Old, After: ev.New, Pusher: ev.Pusher, ID: ev.ID})
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
	s.runner.Ended = s.Ended
	gitURL := ""
	if s.GitURL != nil {
		gitURL = s.GitURL()
	}
	s.runner.Inputs = PipelineInputs(s.Config, s.Users, gitURL, s.Config.FluxEnabled())
	if s.Pods != nil {
		s.runner.Executor = s.Pods
		s.runner.Inputs = podPipelineInputs(s.Config, s.Users, s.GitNodeURL)
		go cleanUpJobPods(ctx, s.Pods, log)
	}
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

// RunWorkingTree runs a working tree's pipeline at once, on this machine
// as the invoking user, with the inputs a team's pipeline gets on the
// platform, and keeps it in the history. live receives its output.
func RunWorkingTree(ctx context.Context, cfg config.Config, m runner.Manual, live io.Writer) (*runner.Run, error) {
	run, p, err := m.Prepare()
	if err != nil {
		return nil, err
	}
	r := &runner.Runner{Store: PipelineStore(cfg), Inputs: PipelineInputs(cfg, auth.Open(cfg.UsersFile()), "", false)}
	return run, r.RunNow(ctx, run, p, runner.TreeSource{Dir: run.Source}, live)
}

// AgentVariables are what a team's pipelines need to run on an agent
// elsewhere, as Azure DevOps's variable group of the team would hold
// them: the platform's URL (the API, and the cluster through KubePath),
// the registry and git server at the addresses the cluster reaches them
// by, the team, and its CI account, whose password is
// the one secret. On the agent, each non-secret variable is in every
// step's environment (slipway.platform.url as SLIPWAY_PLATFORM_URL), and
// steps map the secret in, as the line's templates do. The team must
// have been onboarded (its CI ServiceAccount exists).
func (p *Platform) AgentVariables(ctx context.Context, team string) (vars, secrets map[string]string, err error) {
	if err := flux.ValidTeam(team); err != nil {
		return nil, nil, err
	}
	kubeconfig, err := p.AdminKubeconfig()
	if err != nil {
		return nil, nil, err
	}
	c, err := release.Connect(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	ns := flux.TenantNamespace(team, flux.CIOverlay)
	if _, err := c.Kube.CoreV1().ServiceAccounts(ns).Get(ctx, flux.CIAccount, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("%w (%s/%s): ops runs `slipway tenant create %s` first", ErrNoCIAccount, ns, flux.CIAccount, team)
		}
		return nil, nil, err
	}
	// The addresses the cluster's nodes and pods reach too: an image the
	// agent pushes is named by that address in the chart it publishes,
	// and the nodes pull it from there.
	registry, git := p.State.Addresses.RegistryNode, p.State.Addresses.GitNode
	if registry == "" || git == "" {
		registry, git = p.RegistryAddr(), p.GitURL()
	}
	_, in, err := ciInputs(p.Config, p.Users(), team+"/", registry, git)
	if err != nil {
		return nil, nil, err
	}
	in.Variables["slipway.platform.url"] = git
	in.Variables["slipway.team"] = team
	return in.Variables, in.Secrets, nil
}
