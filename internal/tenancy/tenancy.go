// Package tenancy is ops's onboarding work on a running platform: teams
// (tenants), their chart sources and their apps' releases. Each change is
// one commit to the fleet repository, which Flux then applies; the
// commands of the CLI are thin wrappers over these functions, and tests
// call them directly.
package tenancy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/gitserver"
	"github.com/slipway-dev/slipway/internal/platform"
)

// applyTimeout bounds the wait for Flux to apply one fleet change.
const applyTimeout = 3 * time.Minute

// Onboarded is what CreateTenant did.
type Onboarded struct {
	Team       string   `json:"team"`
	Namespaces []string `json:"namespaces"`
	// Password is the new team user's password; empty when the user
	// existed already. It is shown once and kept nowhere in clear.
	Password string `json:"password,omitempty"`
	// Repos are the git repositories created now.
	Repos  []string `json:"repos,omitempty"`
	Commit string   `json:"commit"`
}

// Namespaces are a team's namespaces, one per environment.
func Namespaces(team string) []string {
	var out []string
	for _, env := range flux.Environments {
		out = append(out, flux.TenantNamespace(team, env))
	}
	return out
}

// TenantPreview is what CreateTenant would commit for a team, without
// changing anything.
func TenantPreview(p *platform.Platform, team string) (flux.Tenant, error) {
	if err := flux.ValidTeam(team); err != nil {
		return flux.Tenant{}, err
	}
	url, err := p.ChartsURL(team)
	if err != nil {
		return flux.Tenant{}, err
	}
	events, err := p.FluxEventsURL(team)
	if err != nil {
		return flux.Tenant{}, err
	}
	return flux.Tenant{Team: team, ChartsURL: url, PlatformCA: p.ChartsCA(), EventsURL: events}, nil
}

// CreateTenant onboards a team: its user (pushes under TEAM/ in git and
// the registry), the repositories named, its namespaces, account and chart
// source through the fleet repository, and Flux's registry credentials in
// its namespaces. It is idempotent: onboarding a team again changes only
// what is missing.
func CreateTenant(ctx context.Context, p *platform.Platform, team string, repos []string, progress io.Writer) (*Onboarded, error) {
	t, err := TenantPreview(p, team)
	if err != nil {
		return nil, err
	}
	// On a line registry of its own, the team's account there is its CI
	// account: it must be there, and may push, before anything is written.
	if r := p.Config.LineRegistry(); r != nil {
		if err := platform.CheckLineRegistryAccount(ctx, *r, "ci-"+team, progress); err != nil {
			return nil, err
		}
	}
	out := &Onboarded{Team: team, Namespaces: append(Namespaces(team), flux.TenantNamespace(team, flux.CIOverlay))}
	users := p.Users()
	if out.Password, err = ensureTeamUser(users, team); err != nil {
		return nil, err
	}
	if out.Password != "" {
		fmt.Fprintf(progress, "created user %s (pushes to %s/ in git and the registry)\n", team, team)
	}
	if len(repos) > 0 {
		srv, err := gitserver.New(p.Config.GitDir(), users)
		if err != nil {
			return nil, err
		}
		for _, r := range repos {
			name := team + "/" + r
			created, err := srv.Ensure(name)
			if err != nil {
				return nil, err
			}
			if created {
				out.Repos = append(out.Repos, name)
				fmt.Fprintf(progress, "created repository %s\n", name)
			}
		}
	}
	message := "tenants: onboard " + team + " (namespaces " + strings.Join(out.Namespaces, ", ") + ")"
	if out.Commit, err = change(ctx, p, message, progress, func(dir string) error { return flux.AddTenant(dir, t) }); err != nil {
		return nil, err
	}
	rc, err := p.RESTConfig()
	if err != nil {
		return nil, err
	}
	if err := apply(ctx, p, progress); err != nil {
		return nil, err
	}
	// Flux reads the team's charts with its read-only account and signs
	// its events with the team's key; the Secrets are made here, never
	// committed.
	for _, ns := range Namespaces(team) {
		secrets, err := platform.TenantFluxSecrets(p.Config, team, ns)
		if err != nil {
			return nil, err
		}
		if err := cluster.Apply(ctx, rc, secrets); err != nil {
			return nil, fmt.Errorf("giving Flux its Secrets in %s: %w", ns, err)
		}
	}
	return out, nil
}

// ensureTeamUser makes the team's user if it does not exist and returns
// its new password ("" when it existed).
func ensureTeamUser(users *auth.Store, team string) (string, error) {
	if _, ok, err := users.Get(team); err != nil || ok {
		return "", err
	}
	password := auth.RandomPassword()
	if err := users.Set(team, password, false, []string{team + "/"}); err != nil {
		return "", err
	}
	return password, nil
}

// DeleteTenant offboards a team: Flux prunes its namespaces and
// everything in them.
func DeleteTenant(ctx context.Context, p *platform.Platform, team string, progress io.Writer) (string, error) {
	return change(ctx, p, "tenants: offboard "+team, progress, func(dir string) error {
		return flux.RemoveTenant(dir, team)
	})
}

// ListTenants lists the teams in the fleet repository.
func ListTenants(ctx context.Context, p *platform.Platform) ([]string, error) {
	remote, err := p.FleetRemote()
	if err != nil {
		return nil, err
	}
	var teams []string
	err = remote.Read(ctx, func(dir string) error {
		teams, err = flux.Tenants(dir)
		return err
	})
	return teams, err
}

// CreateSource adds an OCI HelmRepository to a team's base.
func CreateSource(ctx context.Context, p *platform.Platform, team, name, url string, progress io.Writer) (string, error) {
	return change(ctx, p, "sources: "+team+"/"+name+" from "+url, progress, func(dir string) error {
		return flux.AddSource(dir, team, name, url, true)
	})
}

// CreateRelease adds (or changes) an app's release in an environment and
// waits until Flux has applied it.
func CreateRelease(ctx context.Context, p *platform.Platform, r flux.Release, progress io.Writer) (string, error) {
	commit, err := change(ctx, p, fmt.Sprintf("releases: %s/%s in %s follows %s", r.Team, r.App, r.Env, r.Version), progress, func(dir string) error {
		return flux.SetRelease(dir, r)
	})
	if err != nil {
		return "", err
	}
	return commit, apply(ctx, p, progress)
}

// change commits one edit to the fleet repository as ops. An edit that
// changes nothing is not an error: the head commit is returned.
func change(ctx context.Context, p *platform.Platform, message string, progress io.Writer, edit func(dir string) error) (string, error) {
	remote, err := p.FleetRemote()
	if err != nil {
		return "", err
	}
	commit, err := remote.Change(ctx, gitrepo.Platform, message, edit)
	if errors.Is(err, gitrepo.ErrNoChange) {
		fmt.Fprintln(progress, "the fleet repository already says so: nothing to commit")
		commit, err = remote.Head(ctx)
	}
	if err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "committed %.12s to %s: %s\n", commit, platform.FleetRepo, strings.SplitN(message, "\n", 2)[0])
	return commit, nil
}

// apply asks Flux to apply the fleet now and waits until it has.
func apply(ctx context.Context, p *platform.Platform, progress io.Writer) error {
	dyn, err := dynamicClient(p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	return flux.ApplyFleet(ctx, dyn, p.FleetSync(), progress)
}

// kubeClient reaches the platform's cluster as ops.
func kubeClient(p *platform.Platform) (kubernetes.Interface, error) {
	rc, err := p.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// dynamicClient reaches the platform's cluster as ops.
func dynamicClient(p *platform.Platform) (dynamic.Interface, error) {
	rc, err := p.RESTConfig()
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(rc)
}
