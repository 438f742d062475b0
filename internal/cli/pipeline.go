package cli

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/ci/pipeline"
	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newPipelineCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Run azure-pipelines.yml locally, and see runs and their logs",
		Long: `The pipeline runner reads a repository's azure-pipelines.yml (the subset
of Azure Pipelines YAML that build pipelines use: triggers, variables,
parameters, stages, jobs, steps, templates, conditions) and runs it on every
push to the git server, or at once on a working tree with "pipeline run".
Anything outside the subset is refused with its file and line before a step
runs. Supported tasks: ` + taskList() + `.`,
	}
	cmd.AddCommand(newPipelineRunCmd(g), newPipelineListCmd(g), newPipelineShowCmd(g), newPipelineLogsCmd(g), newPipelineCancelCmd(g),
		newPipelineCreateCmd(g), newPipelineDeleteCmd(g), newPipelineDefinitionsCmd(g), newPipelineRequireCmd(g),
		newPipelineVariablesCmd(g))
	return cmd
}

func taskList() string {
	var names []string
	for name := range pipeline.Tasks {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func pipelineStore(g *globals) (*runner.Store, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	return platform.PipelineStore(cfg), nil
}

func newPipelineRunCmd(g *globals) *cobra.Command {
	var (
		file, name, branch string
		params             []string
		check              bool
	)
	cmd := &cobra.Command{
		Use:   "run [DIR]",
		Short: "Run the pipeline of a working tree now, uncommitted changes included",
		Long: `Run DIR's azure-pipelines.yml (default: the current directory) at once, on a
copy of the working tree (the files git tracks or would track). The run is
kept in the history like a run started by a push. With --check, only load
and check the file.

The steps run here, on this machine, as the user who runs the command, with
that user's rights: this is a person's own machine running their own
pipeline. Pushed pipelines are run by the platform's runner.`,
		Example: "  slipway pipeline run\n  slipway pipeline run ./hello --param env=prod\n  slipway pipeline run --check",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			values := map[string]string{}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					return usageError("--param %q: want NAME=VALUE", p)
				}
				values[k] = v
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			m := runner.Manual{Dir: dir, File: file, Pipeline: name, Branch: branch, Parameters: values, RequestedBy: who(),
				RepoDir: func(repo string) string { return filepath.Join(cfg.GitDir(), filepath.FromSlash(repo)+".git") }}
			if check {
				_, p, err := m.Prepare()
				if err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Err, "%s: %d stage(s), %d job(s), %d step(s); nothing outside the supported subset\n", p.File, len(p.Stages), countJobs(p), countSteps(p))
				return nil
			}
			run, err := platform.RunWorkingTree(cmd.Context(), cfg, m, g.streams.Out)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "\nrun %d of %s: %s in %s\n", run.ID, run.Pipeline, run.Status, run.Duration().Round(10*time.Millisecond))
			if run.Error != "" {
				fmt.Fprintf(g.streams.Err, "%s\n", run.Error)
			}
			if run.Status == runner.Failed || run.Status == runner.Canceled {
				return &exitError{code: 1, err: fmt.Errorf("run %d %s", run.ID, run.Status)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", pipeline.DefaultFile, "pipeline file, relative to DIR")
	cmd.Flags().StringVar(&name, "pipeline", "", "the pipeline's name (default: the repository path of the origin remote, such as dev1/hello)")
	cmd.Flags().StringVar(&branch, "branch", "", "branch the run says it is for (default: the current branch)")
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "a pipeline parameter, NAME=VALUE (repeatable)")
	cmd.Flags().BoolVar(&check, "check", false, "only load and check the pipeline file")
	return cmd
}

func countJobs(p *pipeline.Pipeline) int {
	n := 0
	for _, s := range p.Stages {
		n += len(s.Jobs)
	}
	return n
}

func countSteps(p *pipeline.Pipeline) int {
	n := 0
	for _, s := range p.Stages {
		for _, j := range s.Jobs {
			n += len(j.Steps)
		}
	}
	return n
}

func newPipelineListCmd(g *globals) *cobra.Command {
	var output outputFormat
	var definitions bool
	cmd := &cobra.Command{
		Use:   "list [PIPELINE]",
		Short: "List runs, newest first (--definitions: the defined pipelines)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if definitions {
				if len(args) > 0 {
					return usageError("--definitions lists every defined pipeline; give no name")
				}
				return listDefinitions(g, output)
			}
			store, err := pipelineStore(g)
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			runs, err := store.List(name)
			if err != nil {
				return err
			}
			if runs == nil {
				runs = []*runner.Run{} // [] in JSON, not null
			}
			if done, err := printStructured(g.streams.Out, output, runs); done {
				return err
			}
			if len(runs) == 0 {
				fmt.Fprintln(g.streams.Err, "no runs yet: push to a repository with an azure-pipelines.yml, or run slipway pipeline run")
				return nil
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPIPELINE\tBRANCH\tCOMMIT\tREASON\tSTATUS\tQUEUED\tDURATION")
			for _, r := range runs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%.8s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, strings.TrimPrefix(r.Ref, "refs/heads/"), r.Commit,
					r.Reason, r.Status, r.QueuedAt.Local().Format("2006-01-02 15:04:05"), r.Duration().Round(100*time.Millisecond))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&definitions, "definitions", false, "list the defined pipelines instead of runs (as slipway pipeline definitions)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// findRun reads the run an ID argument names.
func findRun(g *globals, arg string) (*runner.Store, *runner.Run, error) {
	id, err := runID(arg)
	if err != nil {
		return nil, nil, err
	}
	store, err := pipelineStore(g)
	if err != nil {
		return nil, nil, err
	}
	r, err := store.Get(id)
	return store, r, err
}

func runID(s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil || id < 1 {
		return 0, usageError("run ID %q: want a number from slipway pipeline list", s)
	}
	return id, nil
}

func newPipelineShowCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a run's stages, jobs and steps with their results",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, r, err := findRun(g, args[0])
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, r); done {
				return err
			}
			printRun(g.streams.Out, r)
			return nil
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func printRun(w io.Writer, r *runner.Run) {
	fmt.Fprintf(w, "run %d  %s  %s  %.12s  %s  %s  (%s)\n", r.ID, r.Pipeline, strings.TrimPrefix(r.Ref, "refs/heads/"), r.Commit, r.Reason, r.Status, r.Duration().Round(10*time.Millisecond))
	if r.Error != "" {
		fmt.Fprintf(w, "  %s\n", r.Error)
	}
	for _, s := range r.Stages {
		if s.Name != "__default" {
			fmt.Fprintf(w, "  stage %s: %s\n", cmp.Or(s.DisplayName, s.Name), s.Status)
		}
		for _, j := range s.Jobs {
			fmt.Fprintf(w, "    job %s: %s\n", cmp.Or(j.DisplayName, j.Name), j.Status)
			for _, st := range j.Steps {
				d := ""
				if !st.StartedAt.IsZero() && !st.FinishedAt.IsZero() {
					d = " (" + st.FinishedAt.Sub(st.StartedAt).Round(10*time.Millisecond).String() + ")"
				}
				fmt.Fprintf(w, "      %-20s %s%s\n", st.Status, st.DisplayName, d)
				for _, is := range st.Issues {
					fmt.Fprintf(w, "        %s: %s\n", is.Type, is.Message)
				}
			}
		}
	}
}

func newPipelineLogsCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:     "logs ID",
		Short:   "Print a run's logs, step by step",
		Example: "  slipway pipeline logs 12\n  slipway pipeline logs 12 --follow",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := runID(args[0])
			if err != nil {
				return err
			}
			store, err := pipelineStore(g)
			if err != nil {
				return err
			}
			return printLogs(cmd.Context(), g.streams.Out, store, id, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the run finishes")
	return cmd
}

// printLogs prints each step's log once it has one; with follow, it
// waits for steps still to come.
func printLogs(ctx context.Context, w io.Writer, store *runner.Store, id int, follow bool) error {
	printed := map[string]int64{}
	for {
		r, err := store.Get(id)
		if err != nil {
			return err
		}
		for _, s := range r.Stages {
			for _, j := range s.Jobs {
				for _, st := range j.Steps {
					if st.Log == "" {
						continue
					}
					off, seen := printed[st.Log]
					if !seen {
						fmt.Fprintf(w, "==> %s / %s\n", j.Name, st.DisplayName)
					}
					f, err := os.Open(filepath.Join(store.RunDir(id), st.Log))
					if err != nil {
						continue
					}
					_, _ = f.Seek(off, io.SeekStart)
					n, _ := io.Copy(w, bufio.NewReader(f))
					f.Close()
					printed[st.Log] = off + n
				}
			}
		}
		if r.Error != "" && runner.Finished(r.Status) {
			fmt.Fprintf(w, "run %d: %s\n", id, r.Error)
		}
		if !follow || runner.Finished(r.Status) {
			if runner.Finished(r.Status) && follow {
				fmt.Fprintf(w, "run %d: %s\n", id, r.Status)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func newPipelineCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, r, err := findRun(g, args[0])
			if err != nil {
				return err
			}
			id := r.ID
			if runner.Finished(r.Status) {
				return fmt.Errorf("run %d has finished already (%s)", id, r.Status)
			}
			if err := store.RequestCancel(id); err != nil {
				return err
			}
			// Wait for the runner to act, so the user sees the outcome.
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if r, err = store.Get(id); err == nil && runner.Finished(r.Status) {
					fmt.Fprintf(g.streams.Err, "run %d: %s\n", id, r.Status)
					return nil
				}
				time.Sleep(200 * time.Millisecond)
			}
			fmt.Fprintf(g.streams.Err, "asked run %d to stop; it has not finished yet (is slipway up running?)\n", id)
			return nil
		},
	}
}
