package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/gitserver"
)

func newRepoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Manage the git server's repositories",
		Long: `Repositories live in the state directory and are served over HTTP by
slipway up. Every user may clone; a user may push to repositories under its
push prefixes (the same as in the registry: team dev1 pushes to dev1/…).
Branch main of every repository is protected: no force-push, no delete
(slipway repo protect changes that per repository).`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "create NAME",
		Short:   "Create an empty repository (default branch main)",
		Example: "  slipway repo create dev1/hello\n  git clone https://dev1@127.0.0.1:3000/dev1/hello.git",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := repoServer(g)
			if err != nil {
				return err
			}
			if err := srv.Create(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "created repository %s\n", args[0])
			return nil
		},
	}, newRepoProtectCmd(g), newRepoLinkCmd(g), newRepoUnlinkCmd(g), &cobra.Command{
		Use:   "list",
		Short: "List repositories",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := repoServer(g)
			if err != nil {
				return err
			}
			names, err := srv.List()
			if err != nil {
				return err
			}
			for _, n := range names {
				if m, ok, _ := srv.MirrorOf(n); ok {
					fmt.Fprintf(g.streams.Out, "%s (%s)\n", n, mirrorNote(srv, n, m))
					continue
				}
				fmt.Fprintln(g.streams.Out, n)
			}
			return nil
		},
	})
	return cmd
}

// repositories lists the git server's repositories.
func repositories(g *globals) ([]string, error) {
	srv, err := repoServer(g)
	if err != nil {
		return nil, err
	}
	return srv.List()
}

func repoServer(g *globals) (*gitserver.Server, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	return gitserver.New(cfg.GitDir(), auth.Open(cfg.UsersFile()))
}

func newRepoProtectCmd(g *globals) *cobra.Command {
	var none bool
	cmd := &cobra.Command{
		Use:   "protect NAME [BRANCH...]",
		Short: "Show or set the branches of a repository that take no force-push and no delete",
		Long: `Protected branches take fast-forward pushes only and cannot be deleted;
a refused push changes nothing and tells the pusher why. Every repository
starts with main protected. With branches, they replace the protected set;
with --none, no branch is protected; with neither, the set is shown.`,
		Example: "  slipway repo protect dev1/hello\n  slipway repo protect dev1/hello main release\n  slipway repo protect dev1/scratch --none",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := repoServer(g)
			if err != nil {
				return err
			}
			name, branches := args[0], args[1:]
			switch {
			case none && len(branches) > 0:
				return usageError("give branches or --none, not both")
			case none || len(branches) > 0:
				if err := srv.SetProtected(name, branches); err != nil {
					return err
				}
			}
			got, err := srv.Protected(name)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				fmt.Fprintf(g.streams.Out, "%s: no protected branch\n", name)
				return nil
			}
			fmt.Fprintf(g.streams.Out, "%s: protected %s\n", name, strings.Join(got, " "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&none, "none", false, "protect no branch")
	return cmd
}
