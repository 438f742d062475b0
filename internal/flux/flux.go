// Package flux installs the real Flux controllers into Slipway's cluster,
// lays out and bootstraps the fleet repository Flux then manages itself
// from, and reads and nudges Flux objects (get, reconcile).
//
// The controllers are compiled from the pinned modules under
// components/flux and packed into images with Slipway's own base; the
// CRDs come from the same modules' config/crd files. The manifests are
// Slipway's, shaped like Flux's own install, with the multi-tenancy
// lockdown on.
package flux

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/components"
)

// Namespace is where the controllers run and the fleet's own objects live.
const Namespace = "flux-system"

// Version is the Flux distribution the controllers belong to.
const Version = components.FluxVersion

// Controller is one of Flux's controllers as Slipway runs it.
type Controller struct {
	Name    string
	Version string
	// Args are added to the flags every controller gets.
	Args []string
	// Ports are the named container ports besides healthz and metrics.
	Ports []Port
	// ReadyPath is the readiness probe's path on ReadyPort.
	ReadyPath, ReadyPort string
	// Storage: the controller keeps artifacts under /data.
	Storage bool
}

// Port is a named container port, exposed by a Service when Service is
// set (the Service listens on 80).
type Port struct {
	Name    string
	Number  int
	Service string
}

// eventsAddr is where a controller sends its events: notification-controller,
// which passes them to the Alerts and Providers that select them.
const eventsAddr = "--events-addr=http://notification-controller.$(RUNTIME_NAMESPACE).svc.cluster.local./"

// Controllers are the four controllers, in the order they are started.
// The lockdown flags follow Flux's multi-tenancy guidance: no references
// across namespaces, no remote Kustomize bases, and objects without a
// service account act as their namespace's "default" account, which has
// no rights unless a tenant's RoleBinding gives them.
var Controllers = []Controller{
	{
		Name: "source-controller", Version: "v1.9.5",
		Args: []string{
			eventsAddr,
			"--storage-path=/data",
			"--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.",
		},
		Ports:     []Port{{Name: "http", Number: 9090, Service: "source-controller"}},
		ReadyPath: "/", ReadyPort: "http",
		Storage: true,
	},
	{
		Name: "kustomize-controller", Version: "v1.9.5",
		Args:      []string{eventsAddr, "--no-cross-namespace-refs=true", "--no-remote-bases=true", "--default-service-account=default"},
		ReadyPath: "/readyz", ReadyPort: "healthz",
	},
	{
		Name: "helm-controller", Version: "v1.6.4",
		Args:      []string{eventsAddr, "--no-cross-namespace-refs=true", "--default-service-account=default"},
		ReadyPath: "/readyz", ReadyPort: "healthz",
	},
	{
		Name: "notification-controller", Version: "v1.9.3",
		Args: []string{"--no-cross-namespace-refs=true"},
		Ports: []Port{
			{Name: "http", Number: 9090, Service: "notification-controller"},
			{Name: "http-webhook", Number: 9292, Service: "webhook-receiver"},
		},
		ReadyPath: "/readyz", ReadyPort: "healthz",
	},
}

// Programs are the built controllers and their CRD files.
type Programs struct {
	// Executable runs every controller: it runs the one it is called as
	// (see components.FluxControllers).
	Executable string
	// CRDFiles are every controller's CRD files, sorted.
	CRDFiles []string
}

// Build compiles the controllers (or takes them from the cache) and
// collects their CRDs.
func Build(ctx context.Context, opts components.Options) (*Programs, error) {
	paths, err := components.Ensure(ctx, components.FluxControllers, opts)
	if err != nil {
		return nil, err
	}
	p := &Programs{Executable: paths[executable]}
	if p.CRDFiles, err = filepath.Glob(filepath.Join(paths["crds"], "*.yaml")); err != nil {
		return nil, err
	}
	sort.Strings(p.CRDFiles)
	return p, nil
}

// CRDs fetches the controllers' CRD files from the pinned modules without
// building anything: what a cluster running Flux's own images needs.
func CRDs(ctx context.Context, opts components.Options) ([]string, error) {
	paths, err := components.Ensure(ctx, components.FluxCRDs, opts)
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(paths["crds"], "*.yaml"))
	sort.Strings(files)
	return files, err
}

// ControllerImages says which image each controller's container runs,
// and with what command (none: the image's own entrypoint).
type ControllerImages func(Controller) (image string, command []string)

// ForControllers runs every controller from this one image, each by its
// link.
func (i Image) ForControllers(c Controller) (string, []string) {
	return i.Ref(), []string{c.Command()}
}

// UpstreamImages are Flux's own images under prefix (ghcr.io/fluxcd, or a
// registry mirroring it): PREFIX/NAME:VERSION, one per controller, each
// run by its entrypoint, as Flux's install runs them.
func UpstreamImages(prefix string) ControllerImages {
	return func(c Controller) (string, []string) {
		return prefix + "/" + c.Name + ":" + c.Version, nil
	}
}

// executable is the controllers' one program, and its path in the image.
const executable = "flux-controllers"

// Image is the controllers' image, which holds the one executable and a
// link to it named after each controller; every controller's Deployment
// runs its link. One image, not four, so that the node unpacks the
// executable once and the four processes share its pages.
type Image struct {
	Image *build.Image
	// Repository is where it is pushed (REGISTRY/flux/controllers); it
	// is tagged with the Flux distribution's version.
	Repository string
}

// Tag is the image's tag: the Flux distribution its controllers belong to.
func (i Image) Tag() string { return Version }

// Ref is the image reference the cluster pulls: repository, tag and digest.
func (i Image) Ref() string {
	return i.Repository + ":" + i.Tag() + "@" + i.Image.Digest.String()
}

// Command is what a controller's container runs: its link.
func (c Controller) Command() string { return "/" + c.Name }

// ControllersImage packs the controllers into their image for the host's platform.
func ControllersImage(ctx context.Context, p *Programs, cacheDir, registry string, platform v1.Platform) (Image, error) {
	links := make([]string, 0, len(Controllers))
	for _, c := range Controllers {
		links = append(links, c.Command())
	}
	img, err := build.BinaryImageAt(ctx, cacheDir, p.Executable, "/"+executable, links, platform)
	if err != nil {
		return Image{}, fmt.Errorf("building the image of Flux's controllers: %w", err)
	}
	return Image{Image: img, Repository: registry + "/flux/controllers"}, nil
}
