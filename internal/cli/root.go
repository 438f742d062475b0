// Package cli holds Slipway's commands. Each command turns flags into
// options and calls a package below; nothing here is needed to use Slipway
// from Go.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/trust"
)

// Streams are the command's standard streams: data goes to Out, progress
// and errors to Err.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Exit codes.
const (
	ExitOK         = 0
	ExitError      = 1
	ExitUsage      = 2
	ExitNotRunning = 3
)

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks mistakes in the command line itself.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// globals are the flags every command has.
type globals struct {
	streams    Streams
	home       string
	configFile string
}

// config loads the layered configuration and applies the global flags.
func (g *globals) config() (config.Config, error) {
	cfg, err := config.Load(g.configFile, os.Getenv)
	if err != nil {
		return cfg, err
	}
	if g.home != "" {
		cfg.Home = g.home
	}
	// Every command of this state directory trusts its platform's CA,
	// and so do the programs it starts (git, helm, a step's go).
	if err := trust.Adopt(trust.Files{Dir: cfg.TLSDir()}); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// NewRoot builds the command tree.
func NewRoot(streams Streams) *cobra.Command {
	g := &globals{streams: streams}
	root := &cobra.Command{
		Use:   "slipway",
		Short: "Run a multi-team GitOps delivery line: git, pipelines, registry, Kubernetes and Flux",
		Long: `Slipway runs the whole delivery line of a Kubernetes platform on one machine:
an OCI registry, image and chart builds, and (as they land) the git server,
pipeline runner, cluster and Flux. The same commands run inside hosted
pipelines against ACR and AKS.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	root.PersistentFlags().StringVar(&g.home, "home", "", "state directory (default $SLIPWAY_HOME, or /var/lib/slipway for root)")
	root.PersistentFlags().StringVar(&g.configFile, "config", "", "config file (default $SLIPWAY_CONFIG, or config.yaml in the state directory)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: ExitUsage, err: err} })

	root.AddCommand(
		newVersionCmd(g),
		newUpCmd(g),
		newDownCmd(g),
		newStatusCmd(g),
		newLoginCmd(g),
		newUserCmd(g),
		newRegistryCmd(g),
		newBuildCmd(g),
		newBaseCmd(g),
		newChartCmd(g),
		newClusterCmd(g),
		newKubectlCmd(g),
		newRepoCmd(g),
		newGetCmd(g),
		newReconcileCmd(g),
		newPipelineCmd(g),
		newTenantCmd(g),
		newSourceCmd(g),
		newReleaseCmd(g),
		newDBCmd(g),
		newWaitCmd(g),
		newTestCmd(g),
		newBakeCmd(g),
		newPromoteCmd(g),
		newHistoryCmd(g),
		newLineCmd(g),
		newOpenCmd(g),
		newOpsCmd(g),
		newEventsCmd(g),
		newAlertsCmd(g),
		newSilenceCmd(g),
		newMetricsCmd(g),
		newDemoCmd(g),
		newCACmd(g),
		newTargetCmd(g),
	)
	return root
}

// Execute runs the CLI and returns the exit code. Errors are printed once,
// here.
func Execute(ctx context.Context, args []string, streams Streams) int {
	root := NewRoot(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(streams.Err, "error: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if isCobraUsageError(err) {
		return ExitUsage
	}
	return ExitError
}
