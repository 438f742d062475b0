package cli

import (
	"os"
	"strconv"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/chart"
	"github.com/slipway-dev/slipway/internal/credentials"
)

// registryFlags are how every command that talks to a registry reaches
// it: plain HTTP or not, and whose credentials (the Docker config, or
// SLIPWAY_REGISTRY_USERNAME and _PASSWORD in a pipeline).
type registryFlags struct {
	insecure bool
}

func (f *registryFlags) bind(cmd *cobra.Command) {
	insecure, _ := strconv.ParseBool(os.Getenv("SLIPWAY_REGISTRY_INSECURE"))
	cmd.Flags().BoolVar(&f.insecure, "insecure", insecure, "use plain HTTP with a registry that is not on loopback (loopback registries always get plain HTTP; default $SLIPWAY_REGISTRY_INSECURE, set in a job's pod)")
}

// keychain finds the credentials for a registry.
func (f *registryFlags) keychain() authn.Keychain { return credentials.Keychain() }

// chartOptions are the same settings for Helm's registry client.
func (f *registryFlags) chartOptions(g *globals) chart.RegistryOptions {
	opts := chart.RegistryOptions{PlainHTTP: f.insecure, Progress: g.streams.Err}
	if u, p := credentials.EnvCredentials(); u != "" {
		opts.Username, opts.Password = u, p
	}
	return opts
}

// platformFlags choose the platforms an image is built for.
type platformFlags struct {
	list []string
}

func (f *platformFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.list, "platform", []string{"linux/amd64", "linux/arm64"}, "platforms to build, OS/ARCH (repeatable)")
}

func (f *platformFlags) parse() ([]v1.Platform, error) {
	p, err := build.ParsePlatforms(f.list)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return p, nil
}
