package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newBaseCmd(g *globals) *cobra.Command {
	var (
		image      string
		checkImage string
		tags       []string
		plats      platformFlags
		reg        registryFlags
		output     outputFormat
	)
	cmd := &cobra.Command{
		Use:   "base",
		Short: "Push Slipway's base image and http-check image, for other tools and charts",
		Long: `Push the base image that slipway build uses (CA certificates, time zone data,
a non-root user, a writable /tmp, no shell), so that other builders (ko,
Dockerfiles, buildpacks) can start from it where no public registry can be
reached, and the http-check image that the test pods of Slipway's charts run.`,
		Example: `  slipway base
  KO_DEFAULTBASEIMAGE=127.0.0.1:5000/slipway/base ko build ./cmd/app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			platforms, err := plats.parse()
			if err != nil {
				return err
			}
			base, check, err := build.BaseImages(cmd.Context(), cfg.CacheDir(), platforms)
			if err != nil {
				return err
			}
			var results []*build.Result
			for _, push := range []struct {
				img  *build.Image
				repo string
			}{
				{base, image},
				{check, checkImage},
			} {
				res, err := build.Publish(cmd.Context(), push.img, build.PublishOptions{
					Repository: withRegistry(push.repo, platform.RegistryAddr(cfg)),
					Tags:       tags,
					Keychain:   reg.keychain(),
					Insecure:   reg.insecure,
					Progress:   g.streams.Err,
				})
				if err != nil {
					return err
				}
				results = append(results, res)
			}
			if done, err := printStructured(g.streams.Out, output, results); done {
				return err
			}
			for _, r := range results {
				fmt.Fprintln(g.streams.Out, r.Image)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&image, "image", "i", build.BuiltinBase, "repository for the base image (the registry may be left out)")
	f.StringVar(&checkImage, "http-check-image", "slipway/http-check", "repository for the http-check image")
	f.StringSliceVarP(&tags, "tag", "t", []string{"latest"}, "tags to set")
	plats.bind(cmd)
	reg.bind(cmd)
	addOutputFlag(f, &output)
	return cmd
}
