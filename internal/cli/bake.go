package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/platform"
)

func newBakeCmd(g *globals) *cobra.Command {
	var (
		team, env string
		duration  time.Duration
		rate      float64
		path      string
		output    outputFormat
	)
	cmd := &cobra.Command{
		Use:   "bake APP --env staging --duration 60s",
		Short: "Let the running version serve traffic for a while, and fail on a critical alert",
		Long: `Ask the platform to bake the version of APP running in --env: for --duration
it sends the app --rate GET requests per second for --path (through the
cluster's API, as the smoke checks; 0 sends none) and watches the app's
critical alerts there, as the promotion gate sees them. An alert that fires
during the bake fails it at once; when the time is up, an alert still
pending, or firing since before the bake (the version this one replaced),
is waited for up to 3 minutes. It exits 1 when the bake fails: a version
that passes its smoke test can still fail under traffic, and the line's
release stage bakes it in staging before promoting it.`,
		Example: "  slipway bake quotes --env staging --duration 60s --rate 5",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plat, user, password, err := g.caller()
			if err != nil {
				return err
			}
			res, err := plat.Bake(cmd.Context(), user, password, platform.BakeRequest{
				Team: team, App: args[0], Env: env, Duration: duration.String(), Rate: rate, Path: path})
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, res); done {
				if err == nil && !res.Passed {
					err = &exitError{code: 1, err: fmt.Errorf("the bake of %s in %s failed: %s", args[0], env, res.Message)}
				}
				return err
			}
			var codes []string
			for code := range res.Answers {
				codes = append(codes, code)
			}
			slices.Sort(codes)
			var answers []string
			for _, code := range codes {
				what := "answered " + code
				if code == "0" {
					what = "got no answer"
				}
				answers = append(answers, fmt.Sprintf("%d %s", res.Answers[code], what))
			}
			if len(answers) > 0 {
				fmt.Fprintf(g.streams.Err, "requests for %s over %s: %s\n", path, time.Duration(res.Seconds*float64(time.Second)).Round(time.Second), strings.Join(answers, ", "))
			}
			if !res.Passed {
				return &exitError{code: 1, err: fmt.Errorf("the bake of %s in %s failed: %s; it will not be promoted", args[0], env, res.Message)}
			}
			fmt.Fprintf(g.streams.Err, "%s in %s baked: %s\n", args[0], env, res.Message)
			return nil
		},
	}
	cmd.Flags().StringVar(&team, "team", os.Getenv("SLIPWAY_TEAM"), "the app's team (default: $SLIPWAY_TEAM in a pipeline; a team's user: its own)")
	cmd.Flags().StringVar(&env, "env", "staging", "environment: staging or prod")
	cmd.Flags().DurationVar(&duration, "duration", time.Minute, "how long to bake (at most 15m)")
	cmd.Flags().Float64Var(&rate, "rate", 5, "GET requests per second to send the app (at most 20; 0: none)")
	cmd.Flags().StringVar(&path, "path", "/", "the path the requests ask for")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
