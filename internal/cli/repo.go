package cli

import (
	"fmt"

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
push prefixes (the same as in the registry: team dev1 pushes to dev1/…).`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "create NAME",
		Short:   "Create an empty repository (default branch main)",
		Example: "  slipway repo create dev1/hello\n  git clone http://dev1@127.0.0.1:3000/dev1/hello.git",
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
	}, &cobra.Command{
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
				fmt.Fprintln(g.streams.Out, n)
			}
			return nil
		},
	})
	return cmd
}

func repoServer(g *globals) (*gitserver.Server, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	return gitserver.New(cfg.GitDir(), auth.Open(cfg.UsersFile()))
}
