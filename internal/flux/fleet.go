package flux

import (
	"os"
	"path/filepath"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Fleet describes the fleet repository and how the cluster reaches it.
type Fleet struct {
	// Cluster names the cluster's directory, clusters/<Cluster>.
	Cluster string
	// URL is the repository's URL as the cluster (source-controller)
	// reaches it.
	URL string
	// EventsURL, when set, is the platform's endpoint for the events of
	// the fleet's own objects (see FleetNotificationObjects).
	EventsURL string
	// Adopted says the cluster's Flux is its owner's (cluster.existing.flux:
	// adopt): the fleet holds the sync, not Flux's components, and the
	// sync takes a name of its own (see SyncNameFor).
	Adopted bool
}

// SyncName names the fleet's sync of a Flux the platform installs: its
// GitRepository and Kustomization in flux-system, and the Secret the
// GitRepository reads with (created by Slipway, never committed), as
// flux bootstrap names its own.
const SyncName = "flux-system"

// AdoptedSyncName names the fleet's sync beside an adopted Flux, whose
// owner may keep a sync of their own under SyncName (flux bootstrap's).
const AdoptedSyncName = "slipway"

// SyncNameFor is the name of the fleet's sync with an adopted Flux or
// with the platform's own.
func SyncNameFor(adopted bool) string {
	if adopted {
		return AdoptedSyncName
	}
	return SyncName
}

// SyncName is the name of this fleet's sync objects.
func (f Fleet) SyncName() string { return SyncNameFor(f.Adopted) }

// Dir is the cluster's directory in the fleet repository.
func (f Fleet) Dir() string { return "clusters/" + f.Cluster }

// SystemDir holds Flux's own manifests.
func (f Fleet) SystemDir() string { return f.Dir() + "/flux-system" }

// Tenant environments, each a Kustomize overlay under tenants/.
var Environments = []string{"staging", "prod"}

// CIOverlay is the overlay under tenants/ with each team's CI namespace
// (TEAM-ci) and the account its pipeline jobs act as.
const CIOverlay = "ci"

// Overlays are every overlay under tenants/, each applied by its own Flux
// Kustomization (tenants-NAME).
var Overlays = append(append([]string{}, Environments...), CIOverlay)

// Files is the repository content Slipway owns, by path. Files that hold
// what ops and the teams add later (the tenant overlays) are only written
// when missing, see Seed.
func (f Fleet) Files(components []byte) map[string][]byte {
	resources := []string{"gotk-sync.yaml"}
	files := map[string][]byte{
		f.SystemDir() + "/gotk-sync.yaml": []byte(f.Sync()),
		f.Dir() + "/tenants.yaml":         []byte(f.tenantsSync()),
	}
	if !f.Adopted {
		resources = append([]string{componentsFile}, resources...)
		files[f.SystemDir()+"/"+componentsFile] = components
	}
	if f.EventsURL != "" {
		kustomizations, gitRepositories := f.eventSources()
		files[f.SystemDir()+"/notifications.yaml"] = mustMarshal(FleetNotificationObjects(f.EventsURL, kustomizations, gitRepositories)...)
		resources = append(resources, "notifications.yaml")
	}
	files[f.SystemDir()+"/kustomization.yaml"] = []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + strings.Join(resources, "\n- ") + "\n")
	return files
}

// Seed is the starting content of the files ops and teams own.
func (f Fleet) Seed() map[string][]byte {
	seed := map[string][]byte{"README.md": []byte(f.readme())}
	for _, env := range Overlays {
		seed["tenants/"+env+"/kustomization.yaml"] = kustomizationFile("# The "+env+" overlay: one entry per team, added by `slipway tenant create`.", "", nil)
	}
	return seed
}

// componentsFile holds Flux's own manifests in the fleet, as flux
// bootstrap names it.
const componentsFile = "gotk-components.yaml"

// WriteTree writes Files into a work tree, and Seed where missing. With
// an adopted Flux, no components file is left behind.
func (f Fleet) WriteTree(dir string, components []byte) error {
	if f.Adopted {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(f.SystemDir()+"/"+componentsFile))); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	for path, data := range f.Seed() {
		if _, err := os.Stat(filepath.Join(dir, path)); err == nil {
			continue
		}
		if err := writeFile(dir, path, data); err != nil {
			return err
		}
	}
	for path, data := range f.Files(components) {
		if err := writeFile(dir, path, data); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dir, path string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// Sync is the GitRepository and Kustomization through which Flux keeps
// the cluster, itself included, as the fleet repository says.
func (f Fleet) Sync() string {
	return string(mustMarshal(syncObjects(f.SyncName(), f.URL, "./"+f.Dir())...))
}

// SyncHeld is Sync with the Kustomization suspended: what the platform
// applies when it starts, so that kustomize-controller does not fetch the
// fleet before source-controller serves it (a refused fetch costs the
// fetcher's retry wait, 5 s at least). The platform lifts the suspension
// (SetSuspended) once the artifact can be fetched. The copy in the
// repository has no suspend field, so Flux applying it leaves the
// platform's field alone.
func (f Fleet) SyncHeld() string {
	objs := syncObjects(f.SyncName(), f.URL, "./"+f.Dir())
	for _, o := range objs {
		if ks, ok := o.(*kustomizev1.Kustomization); ok {
			ks.Spec.Suspend = true
		}
	}
	return string(mustMarshal(objs...))
}

// tenantsSync applies each environment's overlay. Tenants' own objects
// inside them (HelmReleases and their sources) are reconciled by
// helm-controller as the tenant's account.
func (f Fleet) tenantsSync() string {
	var objs []runtime.Object
	for _, env := range Overlays {
		objs = append(objs, KustomizationObject("tenants-"+env, f.SyncName(), "./tenants/"+env))
	}
	return string(mustMarshal(objs...))
}

// eventSources are the fleet's objects whose events go to the platform:
// every GitRepository and Kustomization in flux-system when the platform
// installed Flux, and only the fleet's own beside an adopted one, whose
// owner's are none of the platform's business.
func (f Fleet) eventSources() (kustomizations, gitRepositories []string) {
	if !f.Adopted {
		return []string{"*"}, []string{"*"}
	}
	kustomizations = []string{f.SyncName()}
	for _, env := range Overlays {
		kustomizations = append(kustomizations, "tenants-"+env)
	}
	return kustomizations, []string{f.SyncName()}
}

func (f Fleet) readme() string {
	return strings.NewReplacer("<DIR>", f.Dir()).Replace(`# Fleet

What runs in the cluster, as Flux applies it. Ops owns this repository;
every change is a commit.

- <DIR>/flux-system/ — Flux itself (controllers, CRDs, and the sync that
  points Flux at this repository). Written by ` + "`slipway up`" + `.
- <DIR>/tenants.yaml — one Flux Kustomization per environment overlay.
- tenants/staging/, tenants/prod/ — Kustomize overlays: each team's
  namespace, account, chart source and releases for that environment.
- tenants/ci/ — each team's CI namespace and the account its pipeline
  jobs act as (edit in TEAM-staging, view in TEAM-prod).
`)
}
