package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newBuildCmd(g *globals) *cobra.Command {
	var (
		image  string
		tags   []string
		plats  platformFlags
		reg    registryFlags
		opts   build.Options
		static bool
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build an app into a multi-platform OCI image and push it",
		Long: `Build the app in DIR (default: the current directory) into an OCI image index
for linux/amd64 and linux/arm64, without a container engine, and push it.

A Go main package is compiled statically with the Go toolchain; a directory
with index.html and no Go files (or --static) is served by a small file
server. The result is layered onto Slipway's base image (CA certificates,
time zone data, a non-root user, /tmp) or onto --base.

Builds are reproducible: the same source gives the same digest. The creation
time is SOURCE_DATE_EPOCH, or 1970-01-01 when unset.

The image is pushed by digest, and tags are set only after everything is
stored. The digest-pinned reference is printed on standard output.`,
		Example: `  # Build ./cmd/hello and push it as team dev1
  slipway build ./cmd/hello --image 127.0.0.1:5000/dev1/hello --tag 1.0.0

  # The registry may be left out: the embedded one is used
  slipway build ./cmd/hello --image dev1/hello -o json

  # A static site
  slipway build ./site --static --image dev1/docs`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			if opts.Dir == "" {
				opts.Dir = "."
			}
			if static {
				opts.Kind = build.KindStatic
			}
			if opts.Platforms, err = plats.parse(); err != nil {
				return err
			}
			if image == "" {
				abs, _ := filepath.Abs(opts.Dir)
				image = filepath.Base(abs)
			}
			image = withRegistry(image, platform.RegistryAddr(cfg))
			repo, err := build.ParseRepository(image, reg.insecure)
			if err != nil {
				return usageError("%v", err)
			}
			if opts.CacheDir == "" {
				opts.CacheDir = cfg.CacheDir()
			}
			opts.Keychain = reg.keychain()
			opts.Insecure = reg.insecure
			opts.Progress = g.streams.Err

			img, err := build.Build(cmd.Context(), opts)
			if err != nil {
				return err
			}
			res, err := build.Publish(cmd.Context(), img, build.PublishOptions{
				Repository: repo.String(),
				Tags:       tags,
				Keychain:   opts.Keychain,
				Insecure:   reg.insecure,
				Progress:   g.streams.Err,
			})
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
	f.StringVarP(&image, "image", "i", "", "repository to push to, registry/path (the registry may be left out; default: the directory name)")
	f.StringSliceVarP(&tags, "tag", "t", []string{"latest"}, "tags to set after the push (repeatable; --tag= for none)")
	f.StringVar(&opts.Base, "base", "", "base image reference (default: Slipway's built-in base)")
	f.StringVar(&opts.Name, "name", "", "program name in the image (default: the directory name)")
	f.BoolVar(&static, "static", false, "serve DIR as a static site")
	f.StringArrayVarP(&opts.Env, "env", "e", nil, "environment variable KEY=VALUE in the image (repeatable)")
	f.IntSliceVar(&opts.Ports, "port", nil, "TCP port the app listens on (repeatable; static sites default to 8080)")
	f.StringVar(&opts.Revision, "revision", "", "source revision for the annotations (default: git HEAD)")
	f.StringVar(&opts.Source, "source", "", "source URL for the annotations (default: git remote origin)")
	f.StringVar(&opts.Version, "app-version", "", "version for the org.opencontainers.image.version annotation")
	plats.bind(cmd)
	reg.bind(cmd)
	addOutputFlag(f, &output)
	return cmd
}

// withRegistry puts the default registry in front of a repository path
// that does not name one, as docker does with docker.io.
func withRegistry(image, registry string) string {
	first, _, found := strings.Cut(image, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return image
	}
	return registry + "/" + image
}
