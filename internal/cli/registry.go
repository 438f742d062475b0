package cli

import (
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/platform"
	"github.com/slipway-dev/slipway/internal/registry"
)

func newRegistryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Maintain the embedded registry",
	}
	cmd.AddCommand(newRegistryGCCmd(g), newRegistryDeleteCmd(g))
	return cmd
}

func newRegistryGCCmd(g *globals) *cobra.Command {
	var opts registry.GCOptions
	var keepRecent time.Duration
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs that no manifest refers to",
		Long: `Garbage-collect the embedded registry's storage. When slipway is running, the
running registry does it while holding pushes back (as the admin user, whose
password is read from the state directory); otherwise the storage is
collected directly.

Blobs and manifests written within --keep-recent (default 1h) stay even when
nothing refers to them yet: a push uploads its blobs before its manifest, and
a collection in between must not take them. They go at a later collection.`,
		Example: `  slipway registry delete 127.0.0.1:5000/dev1/hello:old
  slipway registry gc --untagged`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if keepRecent < 0 {
				return usageError("--keep-recent %s: give a duration of zero or more", keepRecent)
			}
			opts.KeepRecent = &keepRecent
			res, err := platform.CollectGarbage(cmd.Context(), cfg, opts)
			if err != nil {
				return err
			}
			if done, err := printStructured(g.streams.Out, output, res); done {
				return err
			}
			verb := "freed"
			if res.DryRun {
				verb = "would free (dry run)"
			}
			fmt.Fprintf(g.streams.Out, "%s %d bytes (%d → %d)\n", verb, res.BytesBefore-res.BytesAfter, res.BytesBefore, res.BytesAfter)
			if res.KeptRecent > 0 {
				fmt.Fprintf(g.streams.Out, "kept %d unreferenced blobs and manifests written within %s (a push may still need them)\n", res.KeptRecent, keepRecent)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "report only")
	cmd.Flags().BoolVar(&opts.RemoveUntagged, "untagged", false, "also remove manifests that no tag points to")
	cmd.Flags().DurationVar(&keepRecent, "keep-recent", registry.DefaultKeepRecent, "keep what nothing refers to yet if written within this long (0 keeps nothing)")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func newRegistryDeleteCmd(g *globals) *cobra.Command {
	var reg registryFlags
	cmd := &cobra.Command{
		Use:   "delete REFERENCE",
		Short: "Delete a manifest by tag or digest",
		Long: `Delete a manifest from a registry (deleting by tag removes what the tag points
to). The blobs stay until ` + "`slipway registry gc`" + `.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var nameOpts []name.Option
			if reg.insecure {
				nameOpts = append(nameOpts, name.Insecure)
			}
			ref, err := name.ParseReference(args[0], nameOpts...)
			if err != nil {
				return usageError("reference %q: %v", args[0], err)
			}
			opts := []remote.Option{remote.WithContext(cmd.Context()), remote.WithAuthFromKeychain(reg.keychain())}
			if _, ok := ref.(name.Tag); ok {
				desc, err := remote.Head(ref, opts...)
				if err != nil {
					return build.RegistryError(ref.Context().RegistryStr(), err)
				}
				ref = ref.Context().Digest(desc.Digest.String())
			}
			if err := remote.Delete(ref, opts...); err != nil {
				return build.RegistryError(ref.Context().RegistryStr(), err)
			}
			fmt.Fprintf(g.streams.Err, "deleted %s\n", ref)
			return nil
		},
	}
	reg.bind(cmd)
	return cmd
}
