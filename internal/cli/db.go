package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/database"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/platform"
	"github.com/slipway-dev/slipway/internal/tenancy"
)

func newDBCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "The teams' PostgreSQL databases (CloudNativePG), through the fleet repository"}
	cmd.AddCommand(newDBCreateCmd(g), newDBStatusCmd(g), newDBUpgradeCmd(g), newDBRollbackCmd(g), newDBConfirmCmd(g),
		newDBBackupCmd(g), newDBBackupsCmd(g), newDBRestoreCmd(g))
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
and prod namespaces, and wait until both serve. The app connects to the
Service NAME-db there with the credentials in the Secret NAME-db (keys
host, port, dbname, username, password); the database and its owner are
NAME (with _ for -). Both stay the same when the engine is upgraded.`,
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
	fmt.Fprintln(tw, "DATABASE\tENV\tCLUSTER\tROLE\tPOSTGRESQL\tREADY\tSIZE\tLAST BACKUP\tSTATE")
	for _, s := range list {
		role := s.Role
		switch role {
		case "":
			role = "-"
		case "previous":
			role = "previous (until confirm)"
		}
		size, backup := "-", "-"
		if s.SizeBytes > 0 {
			size = fmt.Sprintf("%.1f MiB", float64(s.SizeBytes)/(1<<20))
		}
		if s.LastBackup != nil {
			backup = s.LastBackup.Taken.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", s.Team, s.Name, s.Env, s.Cluster, role, s.Version, s.ReadyInstances, s.Instances, size, backup, s.Phase)
	}
	return tw.Flush()
}

// dbArgs reads TEAM/NAME and --env (every environment when it is
// empty), then attaches to the platform.
func dbArgs(g *globals, arg, env string) (*platform.Platform, string, string, []string, error) {
	team, name, err := teamAndName(arg, "dev2/quotes")
	if err != nil {
		return nil, "", "", nil, err
	}
	envs, err := dbEnvs(env)
	if err != nil {
		return nil, "", "", nil, err
	}
	p, err := g.attach()
	return p, team, name, envs, err
}

// dbEnvs reads --env: one environment, or all of them in order.
func dbEnvs(env string) ([]string, error) {
	if env == "" {
		return flux.Environments, nil
	}
	if !slices.Contains(flux.Environments, env) {
		return nil, usageError("--env %q: use %s", env, strings.Join(flux.Environments, " or "))
	}
	return []string{env}, nil
}

func newDBUpgradeCmd(g *globals) *cobra.Command {
	var (
		to     int
		env    string
		image  string
		wait   time.Duration
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "upgrade TEAM/NAME --to 17",
		Short: "Move a database to a new major version of PostgreSQL, staging first",
		Long: `Upgrade the database's engine in each environment (staging, then prod, or
the one --env names), through the fleet repository:

  1. back it up (pg_dump, kept in the registry: slipway db backups);
  2. hold its writes (reads go on; the app answers writes with 503);
  3. commit a Cluster of the new version that imports the database
     (CloudNativePG's logical import) and wait until it serves;
  4. check that every table has as many rows as before;
  5. switch the database's Service NAME-db to it and end the app's
     sessions, which reconnect there.

The old Cluster stays, read-only, until 'slipway db confirm' removes it;
'slipway db rollback' sends the app back to it. A failure before the
switch removes the new Cluster and takes writes again: the database stays
where it was, with every row.`,
		Example: "  slipway db upgrade dev2/quotes --to 17 --env staging\n  slipway db upgrade dev2/quotes --to 17",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := database.CheckMajor(to); err != nil {
				return usageError("--to: %s", err)
			}
			p, team, name, envs, err := dbArgs(g, args[0], env)
			if err != nil {
				return err
			}
			done, err := tenancy.UpgradeDatabase(cmd.Context(), p, tenancy.UpgradeOptions{
				Team: team, Name: name, To: to, Envs: envs, Image: image, Wait: wait, Progress: g.streams.Err})
			if printed, perr := printStructured(g.streams.Out, output, done); printed && perr != nil {
				return perr
			} else if !printed {
				for _, u := range done {
					fmt.Fprintf(g.streams.Out, "%s/%s %s: PostgreSQL %s -> %s (Cluster %s -> %s), writes held %s, backup %s\n",
						team, name, u.Env, u.FromVersion, u.ToVersion, u.From, u.To, u.WritesHeld, u.Backup.Ref)
				}
			}
			return err
		},
	}
	cmd.Flags().IntVar(&to, "to", 17, "the new PostgreSQL major version")
	cmd.Flags().StringVar(&env, "env", "", "one environment (default: staging, then prod)")
	cmd.Flags().StringVar(&image, "image", "", "a PostgreSQL image to use instead of the platform's (to try one)")
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "how long each environment's upgrade may take")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newDBRollbackCmd(g *globals) *cobra.Command {
	var (
		env    string
		wait   time.Duration
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "rollback TEAM/NAME --env ENV",
		Short: "Send the app back to the database's Cluster from before its upgrade",
		Long: `Undo the last engine upgrade of a database in one environment, before it is
confirmed: the upgraded Cluster is backed up and removed, and the app goes
back to the old Cluster, which takes writes again. Writes made since the
upgrade are in that backup, not in the database.`,
		Example: "  slipway db rollback dev2/quotes --env staging",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return usageError("name the environment: --env staging or --env prod")
			}
			p, team, name, _, err := dbArgs(g, args[0], env)
			if err != nil {
				return err
			}
			r, err := tenancy.RollbackDatabase(cmd.Context(), p, team, name, env, wait, g.streams.Err)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, r); done {
				return err
			}
			fmt.Fprintf(g.streams.Out, "%s/%s %s: back on %s; %s removed\n", team, name, env, r.Serving, r.Removed)
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "the environment (staging or prod)")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long the rollback may take")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newDBConfirmCmd(g *globals) *cobra.Command {
	var (
		env  string
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:     "confirm TEAM/NAME",
		Short:   "Keep a database's upgrade: the Cluster from before it goes, with its data",
		Example: "  slipway db confirm dev2/quotes --env staging\n  slipway db confirm dev2/quotes",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, team, name, envs, err := dbArgs(g, args[0], env)
			if err != nil {
				return err
			}
			for _, e := range envs {
				if _, err := tenancy.ConfirmDatabase(cmd.Context(), p, team, name, e, wait, g.streams.Err); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "one environment (default: every one)")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for Flux to apply it")
	return cmd
}

func newDBBackupCmd(g *globals) *cobra.Command {
	var (
		env    string
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:     "backup TEAM/NAME",
		Short:   "Back a database up now (pg_dump, kept in the registry as an OCI artifact)",
		Example: "  slipway db backup dev2/quotes --env prod",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, team, name, envs, err := dbArgs(g, args[0], env)
			if err != nil {
				return err
			}
			var all []*database.Backup
			for _, e := range envs {
				b, err := tenancy.BackupDatabase(cmd.Context(), p, team, name, e, g.streams.Err)
				if err != nil {
					return err
				}
				all = append(all, b)
			}
			if done, err := printStructured(g.streams.Out, output, all); done {
				return err
			}
			for _, b := range all {
				fmt.Fprintln(g.streams.Out, b.Ref)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "one environment (default: every one)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newDBBackupsCmd(g *globals) *cobra.Command {
	var (
		env    string
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:     "backups TEAM/NAME",
		Short:   "List a database's backups, newest first",
		Example: "  slipway db backups dev2/quotes --env staging",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, team, name, _, err := dbArgs(g, args[0], env)
			if err != nil {
				return err
			}
			list, err := tenancy.DatabaseBackups(cmd.Context(), p, team, name, env)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, list); done {
				return err
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ENV\tTAKEN\tTAG")
			for _, b := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Env, b.Taken.Local().Format("2006-01-02 15:04:05"), b.Tag)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "one environment's backups")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newDBRestoreCmd(g *globals) *cobra.Command {
	var env, into string
	cmd := &cobra.Command{
		Use:   "restore TEAM/NAME TAG --env ENV --into NEWDB",
		Short: "Restore a backup into a new database beside the live one",
		Long: `Fetch a backup (a tag from slipway db backups) from the registry, check it
against its digest, and restore it with pg_restore into a new database
NEWDB of the same Cluster, owned by the app's user. The live database is
never overwritten: read or compare the copy, then copy back what is needed.`,
		Example: "  slipway db restore dev2/quotes staging-20261205T120000Z --env staging --into quotes_restored",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" || into == "" {
				return usageError("name the environment and the new database: --env staging --into NAME_restored")
			}
			p, team, name, _, err := dbArgs(g, args[0], env)
			if err != nil {
				return err
			}
			rows, err := tenancy.RestoreDatabase(cmd.Context(), p, team, name, env, args[1], into, g.streams.Err)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "restored into %s: %s\n", into, rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "the environment whose Cluster gets the copy")
	cmd.Flags().StringVar(&into, "into", "", "the new database's name")
	return cmd
}
