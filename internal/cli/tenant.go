package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/gitserver"
	"github.com/slipway-dev/slipway/internal/platform"
)

// fleetChange commits one change to the fleet repository as ops, then
// asks Flux to apply it at once and waits until it has.
func fleetChange(ctx context.Context, g *globals, message string, edit func(dir string) error) (string, error) {
	cfg, err := g.config()
	if err != nil {
		return "", err
	}
	remote, err := platform.FleetRemote(cfg)
	if err != nil {
		return "", fmt.Errorf("%w (is the platform set up? slipway up)", err)
	}
	commit, err := remote.Change(ctx, platform.SlipwayAuthor, message, edit)
	if errors.Is(err, gitrepo.ErrNoChange) {
		fmt.Fprintln(g.streams.Err, "the fleet repository already says so: nothing to commit")
		commit, err = remote.Head(ctx)
	}
	if err != nil {
		return "", err
	}
	fmt.Fprintf(g.streams.Err, "committed %.12s to %s: %s\n", commit, platform.FleetRepo, strings.SplitN(message, "\n", 2)[0])
	return commit, nil
}

// applyFleet asks Flux to fetch the fleet and apply the tenant overlays,
// and waits until it has.
func applyFleet(ctx context.Context, g *globals, dyn dynamic.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := reconcileOne(ctx, g, dyn, flux.GitRepository, flux.Namespace, "flux-system"); err != nil {
		return err
	}
	for _, env := range flux.Environments {
		if err := reconcileOne(ctx, g, dyn, flux.Kustomization, flux.Namespace, "tenants-"+env); err != nil {
			return err
		}
	}
	return nil
}

// chartsURL is where the cluster reads a team's charts: the registry at
// the node address.
func chartsURL(cfg config.Config, team string) string {
	_, port, _ := net.SplitHostPort(cfg.Registry.Addr)
	return "oci://" + cluster.Defaults(cfg.ClusterDir()).NodeIP + ":" + port + "/" + team + "/charts"
}

func newTenantCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Onboard teams: namespaces, accounts and chart sources, through the fleet repository",
		Long: `A tenant is a team: a namespace per environment (TEAM-staging, TEAM-prod),
a ServiceAccount that is admin there and nowhere else (helm-controller acts
as it for the team's releases), an OCI HelmRepository for the team's charts,
and a user for the team's git repositories and registry prefix. Each change
is one commit to the fleet repository, which Flux applies.`,
	}
	cmd.AddCommand(newTenantCreateCmd(g), newTenantListCmd(g), newTenantDeleteCmd(g))
	return cmd
}

func newTenantCreateCmd(g *globals) *cobra.Command {
	var (
		dryRun bool
		repos  []string
		cf     clusterFlags
	)
	cmd := &cobra.Command{
		Use:     "create TEAM",
		Short:   "Onboard a team",
		Example: "  slipway tenant create dev1 --repo hello\n  slipway tenant create dev2 --dry-run",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			team := args[0]
			if err := flux.ValidTeam(team); err != nil {
				return usageError("%v", err)
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			t := flux.Tenant{Team: team, ChartsURL: chartsURL(cfg, team), Insecure: true}
			if dryRun {
				fmt.Fprint(g.streams.Out, flux.TenantObjects(t))
				return nil
			}
			users := auth.Open(cfg.UsersFile())
			if err := ensureTeamUser(g, users, team); err != nil {
				return err
			}
			if len(repos) > 0 {
				srv, err := gitserver.New(cfg.GitDir(), users)
				if err != nil {
					return err
				}
				existing, _ := srv.List()
				for _, r := range repos {
					name := team + "/" + r
					if slices.Contains(existing, name) {
						continue
					}
					if err := srv.Create(name); err != nil {
						return err
					}
					fmt.Fprintf(g.streams.Err, "created repository %s\n", name)
				}
			}
			if _, err := fleetChange(cmd.Context(), g, "tenants: onboard "+team+" (namespaces "+strings.Join(tenantNamespaces(team), ", ")+")", func(dir string) error {
				return flux.AddTenant(dir, t)
			}); err != nil {
				return err
			}
			rc, err := cf.rest(g)
			if err != nil {
				return err
			}
			dyn, err := dynamic.NewForConfig(rc)
			if err != nil {
				return err
			}
			if err := applyFleet(cmd.Context(), g, dyn); err != nil {
				return err
			}
			// Flux reads the team's charts with its read-only account; the
			// Secret is made here, never committed.
			for _, ns := range tenantNamespaces(team) {
				secret, err := platform.FluxReaderSecret(cfg, "registry", ns)
				if err != nil {
					return err
				}
				if err := cluster.Apply(cmd.Context(), rc, []byte(secret)); err != nil {
					return fmt.Errorf("giving Flux its registry credentials in %s: %w", ns, err)
				}
			}
			fmt.Fprintf(g.streams.Err, "tenant %s is ready: namespaces %s\n", team, strings.Join(tenantNamespaces(team), ", "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the objects instead of committing them")
	cmd.Flags().StringArrayVar(&repos, "repo", nil, "also create the git repository TEAM/NAME (repeatable)")
	cf.add(cmd)
	return cmd
}

func tenantNamespaces(team string) []string {
	var out []string
	for _, env := range flux.Environments {
		out = append(out, flux.TenantNamespace(team, env))
	}
	return out
}

// ensureTeamUser makes the team's user (pushes under TEAM/) if it does
// not exist, and prints its password once.
func ensureTeamUser(g *globals, users *auth.Store, team string) error {
	list, err := users.List()
	if err != nil {
		return err
	}
	for _, u := range list {
		if u.Name == team {
			return nil
		}
	}
	password := auth.RandomPassword()
	if err := users.Set(team, password, false, []string{team + "/"}); err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Err, "created user %s (pushes to %s/ in git and the registry); its password:\n", team, team)
	fmt.Fprintln(g.streams.Out, password)
	return nil
}

func newTenantListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the teams in the fleet repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			remote, err := platform.FleetRemote(cfg)
			if err != nil {
				return err
			}
			var teams []string
			if err := remote.Read(cmd.Context(), func(dir string) error {
				teams, err = flux.Tenants(dir)
				return err
			}); err != nil {
				return err
			}
			for _, t := range teams {
				fmt.Fprintln(g.streams.Out, t)
			}
			return nil
		},
	}
}

func newTenantDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TEAM",
		Short: "Offboard a team: Flux prunes its namespaces and everything in them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fleetChange(cmd.Context(), g, "tenants: offboard "+args[0], func(dir string) error {
				return flux.RemoveTenant(dir, args[0])
			})
			return err
		},
	}
}

func newSourceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "source", Short: "Chart sources of a team (OCI HelmRepositories), through the fleet repository"}
	var (
		url    string
		dryRun bool
	)
	create := &cobra.Command{
		Use:     "create TEAM NAME",
		Short:   "Add an OCI HelmRepository to a team's base (tenant create adds \"charts\")",
		Example: "  slipway source create dev1 shared --url oci://10.244.0.1:5000/dev1/shared",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if url == "" {
				return usageError("give the repository with --url oci://REGISTRY/PATH")
			}
			if dryRun {
				fmt.Fprintf(g.streams.Out, "%s", strings.Replace(flux.TenantObjects(flux.Tenant{Team: args[0], ChartsURL: url, Insecure: true}), "name: charts", "name: "+args[1], -1))
				return nil
			}
			_, err := fleetChange(cmd.Context(), g, "sources: "+args[0]+"/"+args[1]+" from "+url, func(dir string) error {
				return flux.AddSource(dir, args[0], args[1], url, true)
			})
			return err
		},
	}
	create.Flags().StringVar(&url, "url", "", "oci://REGISTRY/PATH of the charts")
	create.Flags().BoolVar(&dryRun, "dry-run", false, "print the objects instead of committing them")
	cmd.AddCommand(create)
	return cmd
}

func newReleaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "An app's HelmReleases, through the fleet repository"}
	var (
		chartName, source, versionRange string
		dryRun                          bool
		cf                              clusterFlags
	)
	create := &cobra.Command{
		Use:   "create TEAM/APP",
		Short: "Release an app in its team's staging namespace, following a semver range",
		Long: `Add a HelmRelease for the app to the team's staging overlay: it follows the
version range (pre-releases included by default, as pipelines publish
X.Y.Z-build.N), so every chart the pipeline pushes is deployed there. Prod gets
a release only through slipway promote, pinned to a tested version.`,
		Example: "  slipway release create dev1/hello\n  slipway release create dev2/quotes --range '>=1.0.0-0 <2.0.0-0'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			team, app, ok := strings.Cut(args[0], "/")
			if !ok || flux.ValidTeam(team) != nil || app == "" {
				return usageError("name the release TEAM/APP, such as dev1/hello")
			}
			r := flux.Release{Team: team, App: app, Env: "staging", Chart: chartName, Source: source, Version: versionRange}
			if dryRun {
				fmt.Fprint(g.streams.Out, flux.ReleaseObject(r))
				return nil
			}
			if _, err := fleetChange(cmd.Context(), g, fmt.Sprintf("releases: %s/%s in staging follows %s", team, app, versionRange), func(dir string) error {
				return flux.SetRelease(dir, r)
			}); err != nil {
				return err
			}
			dyn, err := cf.dynamic(g)
			if err != nil {
				return err
			}
			return applyFleet(cmd.Context(), g, dyn)
		},
	}
	create.Flags().StringVar(&chartName, "chart", "", "chart name in the source (default: APP)")
	create.Flags().StringVar(&source, "source", "charts", "the team's HelmRepository to read")
	create.Flags().StringVar(&versionRange, "range", ">=0.0.0-0", "semver range of chart versions staging follows")
	create.Flags().BoolVar(&dryRun, "dry-run", false, "print the object instead of committing it")
	cf.add(create)
	cmd.AddCommand(create)
	return cmd
}
