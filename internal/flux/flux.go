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
	// Binaries maps a controller's name to its program.
	Binaries map[string]string
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
	p := &Programs{Binaries: map[string]string{}}
	for _, c := range Controllers {
		p.Binaries[c.Name] = paths[c.Name]
	}
	if p.CRDFiles, err = filepath.Glob(filepath.Join(paths["crds"], "*.yaml")); err != nil {
		return nil, err
	}
	sort.Strings(p.CRDFiles)
	return p, nil
}

// Image is a controller's image, ready to push.
type Image struct {
	Controller Controller
	Image      *build.Image
	// Repository is where it is pushed (REGISTRY/flux/NAME); it is
	// tagged with the controller's version.
	Repository string
}

// Ref is the image reference the cluster pulls: repository, tag and digest.
func (i Image) Ref() string {
	return i.Repository + ":" + i.Controller.Version + "@" + i.Image.Digest.String()
}

// Images packs each controller into an image for the host's platform.
func Images(ctx context.Context, p *Programs, cacheDir, registry string, platform v1.Platform) ([]Image, error) {
	var out []Image
	for _, c := range Controllers {
		img, err := build.BinaryImage(ctx, cacheDir, p.Binaries[c.Name], c.Name, platform)
		if err != nil {
			return nil, fmt.Errorf("building the %s image: %w", c.Name, err)
		}
		out = append(out, Image{Controller: c, Image: img, Repository: registry + "/flux/" + c.Name})
	}
	return out, nil
}
