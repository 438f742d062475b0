package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

// TestAdoptingTheClustersFlux: a platform on an existing cluster that has
// a Flux of its owner's (installed as `flux install` does, from Flux's own
// images in a registry of the owner's, with the lockdown flags) uses that
// Flux with cluster.existing.flux: adopt. It installs nothing of Flux's,
// adds its fleet's sync beside it, and the demo's tracks pass through it,
// with the teams' Go caches on ReadWriteMany claims of a class named for
// them (cluster.existing.jobCacheClass), as on a cluster of several nodes.
// A class the cluster lacks, a cluster with no Flux to adopt, and a Flux
// that keeps itself from another repository under the sync's name, are
// refused before anything is written.
func TestAdoptingTheClustersFlux(t *testing.T) {
	a := clusterEnv(t)
	b, bRegPort, pullPassword := platformForACluster(t)

	// The owner's registry, holding Flux's images in Flux's own layout.
	owners := registrytest.Start(t)
	if err := owners.Users.Set("puller", "owner-secret", false, nil); err != nil {
		t.Fatal(err)
	}
	prefix := owners.Addr + "/fluxcd"
	publishFluxLayout(t, prefix)

	const nodeHost = "10.244.0.1"
	bPasswordFile, ownerPasswordFile := filepath.Join(t.TempDir(), "aks-puller"), filepath.Join(t.TempDir(), "owner")
	writeFile(t, bPasswordFile, pullPassword+"\n")
	writeFile(t, ownerPasswordFile, "owner-secret\n")
	writeFile(t, filepath.Join(a.home, "config.yaml"), fmt.Sprintf(`cluster:
  registries:
  - {host: %q, caFile: %s, username: aks-puller, passwordFile: %s}
  - {host: %q, plainHTTP: true, username: puller, passwordFile: %s}
`, net.JoinHostPort(nodeHost, bRegPort), b.caFile(), bPasswordFile, owners.Addr, ownerPasswordFile))
	a.vars = append(a.vars, "SLIPWAY_FLUX=false")
	a.startUpWithin(45*time.Minute, "--registry-addr", freeAddr(t), "--git-addr", freeAddr(t))
	b.vars = append(b.vars, "SLIPWAY_TARGET_KUBECONFIG="+filepath.Join(a.home, "kubeconfig"), "SLIPWAY_TARGET_CONTEXT=slipway",
		"SLIPWAY_PLATFORM_HOST="+nodeHost, "SLIPWAY_REGISTRY_TOKEN_AUTH=true", "SLIPWAY_TARGET_FLUX=adopt")

	// A class for the jobs' caches the cluster lacks: refused, nothing
	// written. The teams' caches then go to a ReadWriteMany claim of the
	// class it has (on AKS, azurefile-csi: any node can mount it).
	noClass := b.runWithin(5*time.Minute, "up", "--job-cache-class", "azurefile-csi")
	if noClass.code == 0 || !strings.Contains(noClass.stderr, `cluster.existing.jobCacheClass "azurefile-csi" is not a StorageClass of the existing cluster (it has: slipway-local)`) {
		t.Fatalf("up with a job cache class the cluster lacks: exit %d\n%s", noClass.code, noClass.stderr)
	}
	b.vars = append(b.vars, "SLIPWAY_JOB_CACHE_CLASS=slipway-local")

	// Nothing to adopt yet: refused, nothing written.
	none := b.runWithin(5*time.Minute, "up")
	if none.code == 0 || !strings.Contains(none.stderr, "there is no Flux in flux-system to adopt") {
		t.Fatalf("adopting on a cluster without Flux: exit %d\n%s", none.code, none.stderr)
	}
	if out, _ := a.kubectl("get", "namespace", "flux-system"); !strings.Contains(out, "NotFound") {
		t.Fatalf("a refused adoption wrote Flux's namespace:\n%s", out)
	}

	// The owner installs Flux, without a sync.
	crds, err := flux.CRDs(context.Background(), components.Options{CacheDir: config.Default().CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	install, err := flux.Components(crds, flux.UpstreamImages(prefix))
	if err != nil {
		t.Fatal(err)
	}
	installFile := filepath.Join(t.TempDir(), "flux-install.yaml")
	writeFile(t, installFile, string(install))
	a.mustKubectl("apply", "--server-side", "-f", installFile)
	controllers := func() string {
		var b strings.Builder
		for _, c := range flux.Controllers {
			b.WriteString(a.mustKubectl("-n", flux.Namespace, "get", "deployment", c.Name, "-o",
				"jsonpath={.metadata.name} {.metadata.generation} {.spec.template.spec.containers[0].image} {.metadata.labels.kustomize\\.toolkit\\.fluxcd\\.io/name}") + "\n")
		}
		return b.String()
	}
	for _, c := range flux.Controllers {
		a.mustKubectl("-n", flux.Namespace, "rollout", "status", "deployment/"+c.Name, "--timeout=5m")
	}
	before := controllers()

	up := b.startUpWithin(30 * time.Minute)
	if out := up.stderr.String(); !strings.Contains(out, "Slipway adopts it, at its own version and settings") ||
		!strings.Contains(out, "the ones on the existing cluster (cluster.existing.flux: adopt), not built here") {
		t.Errorf("up did not say it adopts the Flux there:\n%s", out)
	}
	if out := up.stderr.String(); !strings.Contains(out, "each team's Go caches are a ReadWriteMany claim of StorageClass slipway-local (cluster.existing.jobCacheClass)") {
		t.Errorf("up did not name the class of the jobs' caches:\n%s", out)
	}
	if !strings.Contains(up.stdout.String(), "the cluster's own Flux (adopted)") {
		t.Errorf("the banner does not name the adopted Flux:\n%s", up.stdout)
	}
	if url := a.mustKubectl("-n", flux.Namespace, "get", "gitrepository", "flux-system", "-o", "jsonpath={.spec.url}"); !strings.HasPrefix(url, "https://"+nodeHost+":") {
		t.Errorf("the adopted Flux reads the fleet from %q", url)
	}

	demo := b.run("", "demo")
	t.Logf("slipway demo through B, with the cluster's own Flux:\n%s", demo.stdout)
	if demo.code != 0 || !strings.Contains(demo.stdout, "every step passed") {
		t.Fatalf("slipway demo: exit %d\n%s\n%s", demo.code, demo.stdout, demo.stderr)
	}
	// The owner's controllers are as the owner left them: same images
	// from the owner's registry, same generation, applied by no
	// Kustomization.
	if after := controllers(); after != before {
		t.Errorf("the adopted controllers changed:\nbefore:\n%safter:\n%s", before, after)
	}
	if !strings.Contains(before, " "+prefix+"/source-controller:") {
		t.Errorf("the owner's Flux does not run from the owner's images:\n%s", before)
	}
	hello := a.mustKubectl("-n", "dev1-prod", "get", "deployment", "-o", "jsonpath={.items[0].spec.template.spec.containers[0].image}")
	if !strings.HasPrefix(hello, net.JoinHostPort(nodeHost, bRegPort)+"/dev1/hello@sha256:") {
		t.Errorf("hello in prod runs %s", hello)
	}
	for _, ns := range []string{"dev1-ci", "dev2-ci"} {
		if claim := a.mustKubectl("-n", ns, "get", "pvc", "go-cache", "-o", "jsonpath={.spec.accessModes} {.spec.storageClassName} {.status.phase}"); claim != `["ReadWriteMany"] slipway-local Bound` {
			t.Errorf("the Go cache claim in %s: %s", ns, claim)
		}
	}
	b.mustRun("", "down")
	up.wait(t)

	// A Flux that keeps itself from another repository under the sync's
	// name (as flux bootstrap leaves it) is refused, and left alone.
	a.mustKubectl("-n", flux.Namespace, "patch", "gitrepository", "flux-system", "--type=merge",
		"-p", `{"spec":{"url":"https://git.example.com/owner/fleet.git"}}`)
	bootstrapped := b.runWithin(5*time.Minute, "up")
	if bootstrapped.code == 0 || !strings.Contains(bootstrapped.stderr, "keeps itself from https://git.example.com/owner/fleet.git") {
		t.Fatalf("adopting a bootstrapped Flux: exit %d\n%s", bootstrapped.code, bootstrapped.stderr)
	}
	if url := a.mustKubectl("-n", flux.Namespace, "get", "gitrepository", "flux-system", "-o", "jsonpath={.spec.url}"); url != "https://git.example.com/owner/fleet.git" {
		t.Errorf("the refused start changed the owner's sync to %q", url)
	}
}
