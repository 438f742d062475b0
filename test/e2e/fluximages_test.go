package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

// TestFluxFromItsOwnImages: a cluster that pulls Flux's controller images
// from another registry (cluster.fluxImages), with that registry's
// credentials given to the node (cluster.registries), as AKS pulls
// ghcr.io/fluxcd or a mirror of it in ACR. The stand-in registry runs in
// this test, on plain HTTP, and holds one image per controller in Flux's
// layout (PREFIX/NAME:VERSION, run by its entrypoint). Nothing of Flux is
// compiled or pushed by the platform, and Flux manages the fleet with
// those images.
func TestFluxFromItsOwnImages(t *testing.T) {
	e := clusterEnv(t)
	mirror := registrytest.Start(t)
	const pullPassword = "puller-secret"
	if err := mirror.Users.Set("puller", pullPassword, false, nil); err != nil {
		t.Fatal(err)
	}
	prefix := mirror.Addr + "/fluxcd"
	publishFluxLayout(t, prefix)

	// The password in a file of its own, out of the config file.
	passwordFile := filepath.Join(t.TempDir(), "puller-password")
	writeFile(t, passwordFile, pullPassword+"\n")
	writeFile(t, filepath.Join(e.home, "config.yaml"), fmt.Sprintf(`cluster:
  fluxImages: %s
  registries:
  - {host: %q, plainHTTP: true, username: puller, passwordFile: %s}
`, prefix, mirror.Addr, passwordFile))
	regAddr := freeAddr(t)
	up := e.startUpWithin(45*time.Minute, "--registry-addr", regAddr, "--git-addr", freeAddr(t))

	for _, c := range flux.Controllers {
		image := e.mustKubectl("-n", flux.Namespace, "get", "deployment", c.Name, "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].command}")
		if want := prefix + "/" + c.Name + ":" + c.Version + " "; image != want {
			t.Errorf("%s runs %q, want %q and no command", c.Name, image, want)
		}
	}
	if got := e.mustRun("", "get", "ks", "flux-system", "-n", flux.Namespace).stdout; !strings.Contains(got, "True") {
		t.Fatalf("Flux from its own images does not apply the fleet:\n%s", got)
	}
	check := e.run("", "target", "check", "--context", "slipway")
	if check.code != 0 || !strings.Contains(check.stdout, "✔ helm-controller: v1.6.4, Flux "+flux.Version) {
		t.Errorf("target check (exit %d):\n%s%s", check.code, check.stdout, check.stderr)
	}
	// The platform's registry holds no controller image of its own.
	req, _ := http.NewRequest(http.MethodGet, "https://"+regAddr+"/v2/flux/controllers/tags/list", nil)
	req.SetBasicAuth("admin", strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password"))))
	if resp, err := e.client().Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the platform's registry answers %s for flux/controllers: it pushed its own controller image", resp.Status)
	}
	e.mustRun("", "down")
	up.wait(t)
	if out := up.stderr.String(); !strings.Contains(out, "Flux's controllers: the images under "+prefix+" (cluster.fluxImages), not built here") {
		t.Errorf("up did not say where Flux's images come from:\n%s", out)
	}
}

// publishFluxLayout pushes one image per controller under prefix, the way
// Flux publishes them: NAME:VERSION, starting the controller by its
// entrypoint. They are made from the controllers Slipway builds (from the
// cache the other tests filled), with the entrypoint set.
func publishFluxLayout(t *testing.T, prefix string) {
	t.Helper()
	ctx := context.Background()
	cache := config.Default().CacheDir()
	programs, err := flux.Build(ctx, components.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	built, err := flux.ControllersImage(ctx, programs, cache, "unused.invalid", v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	index, err := built.Image.Index.IndexManifest()
	if err != nil || len(index.Manifests) == 0 {
		t.Fatalf("the controllers' image: %v", err)
	}
	img, err := built.Image.Index.Image(index.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuthFromKeychain(registrytest.Keychain("admin", registrytest.AdminPassword))
	for _, c := range flux.Controllers {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Config.Entrypoint, cf.Config.Cmd = []string{"/" + c.Name}, nil
		own, err := mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(prefix+"/"+c.Name+":"+c.Version, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, own, auth); err != nil {
			t.Fatalf("pushing %s: %v", ref, err)
		}
	}
}
