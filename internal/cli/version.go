package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/version"
)

func newVersionCmd(g *globals) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print Slipway's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			if done, err := printStructured(g.streams.Out, output, info); done {
				return err
			}
			fmt.Fprintf(g.streams.Out, "slipway %s (%s, %s)\n", info.Version, info.GoVersion, info.Platform)
			return nil
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
