package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/database"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/tenancy"
)

func newDBCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "The teams' PostgreSQL databases (CloudNativePG), through the fleet repository"}
	cmd.AddCommand(newDBCreateCmd(g), newDBStatusCmd(g))
	return cmd
}

// teamAndName reads TEAM/NAME.
func teamAndName(arg, example string) (string, string, error) {
	team, name, ok := strings.Cut(arg, "/")
	if !ok || flux.ValidTeam(team) != nil || name == "" {
		return "", "", usageError("name the database TEAM/NAME, such as %s", example)
	}
	return team, name, nil
}

func newDBCreateCmd(g *globals) *cobra.Command {
	var (
		major  int
		wait   time.Duration
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "create TEAM/NAME",
		Short: "Give a team a PostgreSQL database in each of its environments",
		Long: `Commit a CloudNativePG Cluster named NAME to the fleet, in the team's staging
and prod namespaces, and wait until both serve. The app reads its
credentials from the Secret NAME-app there (keys username, password, host,
port, dbname, uri); the database is "app", owned by the user "app".`,
		Example: "  slipway db create dev2/quotes --version 15",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			team, name, err := teamAndName(args[0], "dev2/quotes")
			if err != nil {
				return err
			}
			if err := (database.Database{Team: team, Name: name, Major: major}).Check(); err != nil {
				return usageError("%s", err)
			}
			p, err := g.attach()
			if err != nil {
				return err
			}
			created, err := tenancy.CreateDatabase(cmd.Context(), p, team, name, major, wait, g.streams.Err)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, created); done {
				return err
			}
			return printDatabases(g, created.Status)
		},
	}
	cmd.Flags().IntVar(&major, "version", 17, "PostgreSQL major version: 15 or 17")
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the database to serve (0: do not wait)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newDBStatusCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:     "status [TEAM]",
		Short:   "The databases, their PostgreSQL version and state in each environment",
		Example: "  slipway db status\n  slipway db status dev2 -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			team := ""
			if len(args) == 1 {
				team = args[0]
				if err := flux.ValidTeam(team); err != nil {
					return usageError("%s", err)
				}
			}
			p, err := g.attach()
			if err != nil {
				return err
			}
			list, err := tenancy.Databases(cmd.Context(), p, team)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, list); done {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintln(g.streams.Err, "no databases (slipway db create TEAM/NAME)")
				return nil
			}
			return printDatabases(g, list)
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func printDatabases(g *globals, list []tenancy.DatabaseStatus) error {
	tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tENV\tPOSTGRESQL\tREADY\tSTATE\tSECRET")
	for _, s := range list {
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.Team, s.Name, s.Env, s.Version, s.ReadyInstances, s.Instances, s.Phase, s.Secret)
	}
	return tw.Flush()
}
