package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/auth"
)

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the users of the registry and git server",
	}
	cmd.AddCommand(newUserSetCmd(g), newUserListCmd(g), newUserDeleteCmd(g))
	return cmd
}

func newUserSetCmd(g *globals) *cobra.Command {
	var push []string
	var admin bool
	var pw passwordFlags
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create a user or change one's password and rights",
		Long: `Create a user, or change an existing user's rights and (when given) password.
Every user may pull; --push grants writes under repository prefixes. A new
user without a password gets a random one, printed on standard output.
A running slipway picks the change up at once.`,
		Example: `  # Team dev1 may push only under dev1/
  slipway user set dev1 --push dev1/

  # Set a password from a secret store
  vault read -field=pw secret/dev2 | slipway user set dev2 --push dev2/ --password-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			password, err := pw.read(g.streams.In)
			if err != nil {
				return err
			}
			store := auth.Open(cfg.UsersFile())
			generated := false
			if password == "" {
				_, exists, err := store.Get(args[0])
				if err != nil {
					return err
				}
				if !exists {
					password, generated = auth.RandomPassword(), true
				}
			}
			if err := store.Set(args[0], password, admin, push); err != nil {
				return err
			}
			if generated {
				fmt.Fprintln(g.streams.Out, password)
				fmt.Fprintf(g.streams.Err, "created user %s with the password above\n", args[0])
			} else {
				fmt.Fprintf(g.streams.Err, "saved user %s\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&push, "push", nil, "repository prefix the user may push to, ending in / (repeatable)")
	cmd.Flags().BoolVar(&admin, "admin", false, "may push anywhere and run maintenance")
	pw.bind(cmd)
	return cmd
}

func newUserListCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users and their rights",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			users, err := auth.Open(cfg.UsersFile()).List()
			if err != nil {
				return err
			}
			type row struct {
				Name  string   `json:"name"`
				Admin bool     `json:"admin"`
				Push  []string `json:"push"`
			}
			rows := make([]row, 0, len(users))
			for _, u := range users {
				rows = append(rows, row{u.Name, u.Admin, u.Push})
			}
			if done, err := printStructured(g.streams.Out, output, rows); done {
				return err
			}
			fmt.Fprintf(g.streams.Out, "%-16s %-6s %s\n", "NAME", "ADMIN", "PUSH")
			for _, r := range rows {
				fmt.Fprintf(g.streams.Out, "%-16s %-6v %s\n", r.Name, r.Admin, strings.Join(r.Push, ","))
			}
			return nil
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newUserDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if err := auth.Open(cfg.UsersFile()).Delete(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "deleted user %s\n", args[0])
			return nil
		},
	}
}
