package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/credentials"
)

func newBaseCmd(g *globals) *cobra.Command {
	var (
		image     string
		tags      []string
		platforms []string
		insecure  bool
		output    outputFormat
	)
	cmd := &cobra.Command{
		Use:   "base",
		Short: "Push Slipway's base image, for other tools to build on",
		Long: `Push the base image that slipway build uses (CA certificates, time zone data,
a non-root user, a writable /tmp, no shell) to a registry, so that other
builders (ko, Dockerfiles, buildpacks) can start from it where no public
registry can be reached.`,
		Example: `  slipway base --image slipway/base
  KO_DEFAULTBASEIMAGE=127.0.0.1:5000/slipway/base ko build ./cmd/app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			plats, err := build.ParsePlatforms(platforms)
			if err != nil {
				return usageError("%v", err)
			}
			idx, err := build.BaseIndex(plats)
			if err != nil {
				return err
			}
			digest, err := idx.Digest()
			if err != nil {
				return err
			}
			var names []string
			for _, p := range plats {
				names = append(names, p.String())
			}
			repo := withRegistry(image, registryAddr(cfg))
			res, err := build.Publish(cmd.Context(), &build.Image{Index: idx, Digest: digest, Platforms: names, Base: build.BuiltinBase},
				build.PublishOptions{Repository: repo, Tags: tags, Keychain: credentials.Keychain(), Insecure: insecure, Progress: g.streams.Err})
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, res); done {
				return err
			}
			fmt.Fprintln(g.streams.Out, res.Image)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&image, "image", "i", build.BuiltinBase, "repository to push to (the registry may be left out)")
	f.StringSliceVarP(&tags, "tag", "t", []string{"latest"}, "tags to set")
	f.StringSliceVar(&platforms, "platform", []string{"linux/amd64", "linux/arm64"}, "platforms")
	f.BoolVar(&insecure, "insecure", false, "use plain HTTP with a registry that is not on loopback")
	addOutputFlag(f, &output)
	return cmd
}
