package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/ci/pipeline"
	"github.com/slipway-dev/slipway/internal/ci/runner"
)

// Pipeline definitions: more than one pipeline per repository, each a
// YAML file of its own, as `az pipelines create --yaml-path` makes them.

func newPipelineCreateCmd(g *globals) *cobra.Command {
	var d runner.Definition
	cmd := &cobra.Command{
		Use:   "create NAME --repo TEAM/REPO --yaml PATH",
		Short: "Define a pipeline that runs a YAML file of a repository on push",
		Long: `Define a pipeline: pushes to the repository run the YAML file at PATH, with
that file's own trigger and path filters, queue and history (the runs are
listed under NAME). A repository's root azure-pipelines.yml needs no
definition: it runs as the pipeline named as the repository. NAME is
TEAM/NAME, under the repository's team.`,
		Example: `  slipway pipeline create dev1/web --repo dev1/shop --yaml web/azure-pipelines.yml
  slipway pipeline create dev1/api --repo dev1/shop --yaml api/azure-pipelines.yml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d.Name = args[0]
			if err := d.Check(); err != nil {
				return usageError("%v", err)
			}
			repos, err := repositories(g)
			if err != nil {
				return err
			}
			if !slices.Contains(repos, d.Repo) {
				return fmt.Errorf("no repository %s (slipway repo list shows them)", d.Repo)
			}
			if slices.Contains(repos, d.Name) {
				return fmt.Errorf("%s is a repository: its root azure-pipelines.yml is the pipeline of that name; pick another name", d.Name)
			}
			store, err := pipelineStore(g)
			if err != nil {
				return err
			}
			if err := store.AddDefinition(d); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "defined pipeline %s: pushes to %s run %s\n", d.Name, d.Repo, d.File)
			return nil
		},
	}
	cmd.Flags().StringVar(&d.Repo, "repo", "", "the repository (TEAM/REPO)")
	cmd.Flags().StringVar(&d.File, "yaml", "", "the pipeline file, relative to the repository's root")
	_ = cmd.MarkFlagRequired("repo")
	_ = cmd.MarkFlagRequired("yaml")
	return cmd
}

func newPipelineDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Forget a pipeline definition (its runs stay in the history)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := pipelineStore(g)
			if err != nil {
				return err
			}
			if err := store.RemoveDefinition(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "deleted pipeline %s\n", args[0])
			return nil
		},
	}
}

func newPipelineDefinitionsCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "definitions",
		Short: "List the defined pipelines (each repository's root azure-pipelines.yml runs too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listDefinitions(g, output)
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// listDefinitions prints the defined pipelines.
func listDefinitions(g *globals, output outputFormat) error {
	store, err := pipelineStore(g)
	if err != nil {
		return err
	}
	defs, err := store.Definitions()
	if err != nil {
		return err
	}
	if defs == nil {
		defs = []runner.Definition{}
	}
	if done, err := printStructured(g.streams.Out, output, defs); done {
		return err
	}
	if len(defs) == 0 {
		fmt.Fprintln(g.streams.Err, "no pipelines defined: each repository's root azure-pipelines.yml runs on push; slipway pipeline create defines more")
		return nil
	}
	tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tREPOSITORY\tYAML")
	for _, d := range defs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, d.Repo, d.File)
	}
	return tw.Flush()
}

func newPipelineRequireCmd(g *globals) *cobra.Command {
	var (
		extends []string
		ref     string
		none    bool
	)
	cmd := &cobra.Command{
		Use:   "require TEAM [--extends PATH@REPO]... [--none]",
		Short: "Show or set the templates a team's pipelines must extend",
		Long: `Require every pipeline of a team to extend one of the given templates,
kept in a repository of the platform (Azure's "required template" check):
a pipeline that does not is refused with its file and line before a step
runs. The pipeline declares the repository under resources: repositories:
(type: git, name: REPO, at --ref, default refs/heads/main) and writes
extends: template: PATH@ALIAS. With --none the rule is lifted; with
neither flag it is shown.`,
		Example: `  slipway pipeline require dev1 --extends build.yml@ops/pipeline-templates
  slipway pipeline require dev1 --none`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			team := args[0]
			store, err := pipelineStore(g)
			if err != nil {
				return err
			}
			if len(extends) == 0 && !none {
				rules, err := store.RequiredTemplates(team)
				if err != nil {
					return err
				}
				if len(rules) == 0 {
					fmt.Fprintf(g.streams.Out, "%s's pipelines may extend any template, or none\n", team)
				}
				for _, r := range rules {
					fmt.Fprintln(g.streams.Out, r)
				}
				return nil
			}
			if none && len(extends) > 0 {
				return usageError("give --extends or --none, not both")
			}
			var rules []pipeline.Template
			repos, err := repositories(g)
			if err != nil {
				return err
			}
			for _, x := range extends {
				path, repo, ok := strings.Cut(x, "@")
				if !ok || path == "" || !slices.Contains(repos, repo) {
					return usageError("--extends %q: give PATH@REPO, a template in a repository of the platform (slipway repo list)", x)
				}
				rules = append(rules, pipeline.Template{Repo: repo, Path: strings.TrimPrefix(path, "/"), Ref: cmp.Or(ref, pipeline.DefaultRef)})
			}
			if err := store.SetRequiredTemplates(team, rules); err != nil {
				return err
			}
			if none {
				fmt.Fprintf(g.streams.Err, "%s's pipelines may extend any template, or none\n", team)
				return nil
			}
			fmt.Fprintf(g.streams.Err, "%s's pipelines must extend %s\n", team, strings.Join(extends, " or "))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&extends, "extends", nil, "a template the team's pipelines may extend: PATH@REPO (repeatable: any one of them)")
	cmd.Flags().StringVar(&ref, "ref", "", "the ref the repository is read at (default refs/heads/main)")
	cmd.Flags().BoolVar(&none, "none", false, "lift the rule")
	return cmd
}
