package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/chart"
	"github.com/slipway-dev/slipway/internal/platform"
)

func newChartCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chart",
		Short: "Scaffold, version, package and publish Helm charts as OCI artifacts",
	}
	cmd.AddCommand(newChartInitCmd(g), newChartPushCmd(g), newChartVersionCmd(g), newChartListCmd(g), newChartShowCmd(g))
	return cmd
}

// chartRepository puts the default registry in front of a chart repository
// that does not name one.
func chartRepository(g *globals, repo string) (string, error) {
	cfg, err := g.config()
	if err != nil {
		return "", err
	}
	return "oci://" + withRegistry(strings.TrimPrefix(repo, "oci://"), platform.RegistryAddr(cfg)), nil
}

func newChartInitCmd(g *globals) *cobra.Command {
	var opts chart.InitOptions
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Write a chart for an app that a platform team accepts",
		Long: `Write a Helm chart for one app into DIR: a Deployment with readiness and
liveness probes, resource requests and limits and the restricted security
context (non-root, read-only root file system, no privilege escalation, all
capabilities dropped, seccomp RuntimeDefault), a Service, a ServiceAccount,
a ` + "`helm test`" + ` pod, and values for the image repository and digest.`,
		Example: `  slipway chart init ./chart --name hello --image 127.0.0.1:5000/dev1/hello`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			opts.Dir = args[0]
			reg := platform.RegistryAddr(cfg)
			if opts.Image == "" {
				name := opts.Name
				if name == "" {
					abs, _ := filepath.Abs(opts.Dir)
					name = filepath.Base(abs)
				}
				opts.Image = reg + "/" + name
			} else {
				opts.Image = withRegistry(opts.Image, reg)
			}
			if opts.CheckImage == "" {
				opts.CheckImage = reg + "/slipway/http-check:latest"
			}
			dir, err := chart.Init(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "wrote chart %s\n", dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "", "chart name (default: the directory name)")
	f.StringVar(&opts.Image, "image", "", "the app's image repository (the registry may be left out)")
	f.StringVar(&opts.CheckImage, "http-check-image", "", "image of the helm test pod (default: REGISTRY/slipway/http-check:latest, pushed by `slipway base`)")
	f.BoolVar(&opts.Force, "force", false, "write into a directory that is not empty")
	return cmd
}

func newChartPushCmd(g *globals) *cobra.Command {
	var (
		opts    chart.PackageOptions
		repo    string
		build   string
		force   bool
		reg     registryFlags
		output  outputFormat
		version chart.VersionOptions
	)
	cmd := &cobra.Command{
		Use:   "push [DIR]",
		Short: "Render, lint, version, package and push a chart",
		Long: `Load the chart in DIR (default: ./chart), set its version and app version,
pin the app's image by digest, render and lint it, package it and push it to
REPOSITORY/NAME:VERSION. Nothing is pushed when any step fails, and a version
that is already in the registry is refused unless --force. A chart that
renders its image as REPOSITORY:TAG (image.tag only, as from helm create)
gets TAG = the chart version, which becomes its appVersion too, and that tag
is made to name the pinned image, so the rendered tag is a real one.

Without --version, the version comes from git: at a commit tagged vX.Y.Z it
is X.Y.Z; otherwise it is the next patch after the latest semver tag, with
the build number as a pre-release (X.Y.Z+1-build.N). The build number is
--build-number, else $BUILD_BUILDID (Azure Pipelines), else the commit count.`,
		Example: `  # In a pipeline, after slipway build -o json wrote the image reference
  slipway chart push ./chart --repository dev1/charts --image "$IMAGE"

  # An explicit version
  slipway chart push ./chart --repository oci://127.0.0.1:5000/dev1/charts --version 1.2.0`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = "chart"
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			if repo == "" {
				return usageError("name the chart repository with --repository (for example dev1/charts)")
			}
			parent, err := chartRepository(g, repo)
			if err != nil {
				return err
			}
			if opts.Version == "" {
				version.Dir, version.Build = opts.Dir, build
				version.Fallback = chart.DeclaredVersion(opts.Dir)
				if opts.Version, err = chart.DeriveVersion(version); err != nil {
					return err
				}
			}
			opts.Progress = g.streams.Err
			opts.Registry = reg.chartOptions(g)
			opts.RegistryHost, _, _ = strings.Cut(strings.TrimPrefix(parent, "oci://"), "/")
			pkg, err := chart.Package(cmd.Context(), opts)
			if err != nil {
				return err
			}
			for _, w := range pkg.Warnings {
				fmt.Fprintf(g.streams.Err, "warning: %s\n", w)
			}
			if pkg.ImageTag != "" {
				// The chart renders REPOSITORY:TAG@DIGEST: the tag is made
				// to name the pinned image, so it is a real one.
				if err := tagImage(cmd.Context(), pkg.Image, pkg.ImageTag, reg); err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Err, "tagged %s (the tag the chart renders)\n", pkg.ImageTag)
			}
			res, err := chart.Push(pkg, parent, force, reg.chartOptions(g))
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, res); done {
				return err
			}
			fmt.Fprintf(g.streams.Out, "%s@%s\n", res.Chart, res.Digest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&repo, "repository", "r", "", "where charts go: oci://REGISTRY/PATH (the registry may be left out)")
	f.StringVar(&opts.Version, "version", "", "chart version (default: derived from git)")
	f.StringVar(&build, "build-number", "", "build number for a derived version (default: $BUILD_BUILDID, else the commit count)")
	f.StringVar(&opts.AppVersion, "app-version", "", "app version (default: Chart.yaml's appVersion)")
	f.StringVar(&opts.Image, "image", "", "pin this image: the digest reference slipway build prints")
	f.BoolVar(&force, "force", false, "replace a version that is already in the registry")
	reg.bind(cmd)
	addOutputFlag(f, &output)
	return cmd
}

func newChartVersionCmd(g *globals) *cobra.Command {
	var opts chart.VersionOptions
	cmd := &cobra.Command{
		Use:   "version [DIR]",
		Short: "Print the version the next chart push would derive from git",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			opts.Fallback = chart.DeclaredVersion(opts.Dir)
			v, err := chart.DeriveVersion(opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.streams.Out, v)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Build, "build-number", "", "build number (default: $BUILD_BUILDID, else the commit count)")
	return cmd
}

func newChartListCmd(g *globals) *cobra.Command {
	var reg registryFlags
	var output outputFormat
	cmd := &cobra.Command{
		Use:     "list REPOSITORY",
		Short:   "List a chart's versions in the registry, newest first",
		Example: `  slipway chart list dev1/charts/hello`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := chartRepository(g, args[0])
			if err != nil {
				return err
			}
			versions, err := chart.Versions(repo, reg.chartOptions(g))
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, versions); done {
				return err
			}
			for _, v := range versions {
				fmt.Fprintln(g.streams.Out, v)
			}
			return nil
		},
	}
	reg.bind(cmd)
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newChartShowCmd(g *globals) *cobra.Command {
	var reg registryFlags
	var output outputFormat
	var version string
	cmd := &cobra.Command{
		Use:     "show REPOSITORY",
		Short:   "Show one chart version: app version, pinned image, values",
		Example: `  slipway chart show dev1/charts/hello --version 0.1.1-build.7`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := chartRepository(g, args[0])
			if err != nil {
				return err
			}
			s, err := chart.Show(repo, version, reg.chartOptions(g))
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, s); done {
				return err
			}
			w := g.streams.Out
			fmt.Fprintf(w, "chart:       %s\n", s.Chart)
			fmt.Fprintf(w, "digest:      %s\n", s.Digest)
			fmt.Fprintf(w, "appVersion:  %s\n", s.AppVersion)
			fmt.Fprintf(w, "image:       %s\n", s.Image)
			fmt.Fprintf(w, "values:\n%s", indent(chart.ValuesYAML(s.Values), "  "))
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "version to show (default: the newest)")
	reg.bind(cmd)
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// tagImage makes tag (REPOSITORY:TAG) name the image at digestRef.
func tagImage(ctx context.Context, digestRef, tag string, reg registryFlags) error {
	var nameOpts []name.Option
	if reg.insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	src, err := name.ParseReference(digestRef, nameOpts...)
	if err != nil {
		return err
	}
	dst, err := name.NewTag(tag, nameOpts...)
	if err != nil {
		return fmt.Errorf("the tag the chart renders, %q: %w", tag, err)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(reg.keychain())}
	desc, err := remote.Get(src, opts...)
	if err != nil {
		return build.RegistryError(src.Context().RegistryStr(), fmt.Errorf("reading %s: %w", digestRef, err))
	}
	if err := remote.Tag(dst, desc, opts...); err != nil {
		return build.RegistryError(dst.RegistryStr(), fmt.Errorf("tagging %s: %w (nothing was pushed)", tag, err))
	}
	return nil
}
