package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

// TestAdoptingTheClustersFlux: a platform on an existing cluster that has
// a Flux of its owner's, bootstrapped as `flux bootstrap` leaves it (its
// components, from Flux's own images in a registry of the owner's, with
// the lockdown flags, kept by the GitRepository and Kustomization
// flux-system from the owner's repository), uses that Flux with
// cluster.existing.flux: adopt. It installs nothing of Flux's, adds its
// fleet's sync beside the owner's under a name of its own, and the demo's
// tracks pass through it, with the teams' Go caches on ReadWriteMany
// claims of a class named for them (cluster.existing.jobCacheClass), as on
// a cluster of several nodes. The owner's Flux, sync and repository's
// objects are as the owner left them. A class the cluster lacks, a
// cluster with no Flux to adopt, and a sync of that name reading another
// fleet (another platform's adoption) are refused before anything is
// written.
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
	// A's registry challenges for tokens, as ACR does: it is the line's
	// registry of its own here.
	a.vars = append(a.vars, "SLIPWAY_FLUX=false", "SLIPWAY_REGISTRY_TOKEN_AUTH=true")
	aGit, aReg := freeAddr(t), freeAddr(t)
	a.startUpWithin(45*time.Minute, "--registry-addr", aReg, "--git-addr", aGit)
	b.vars = append(b.vars, "SLIPWAY_TARGET_KUBECONFIG="+filepath.Join(a.home, "kubeconfig"), "SLIPWAY_TARGET_CONTEXT=slipway",
		"SLIPWAY_PLATFORM_HOST="+nodeHost, "SLIPWAY_TARGET_FLUX=adopt",
		// Monitoring through the API server is TestLineOnAnExistingCluster's;
		// here the teams' databases run on the existing cluster, applied
		// through the adopted Flux.
		"SLIPWAY_MONITORING=false", "SLIPWAY_DATABASES=true")

	// The teams' images and charts go to A's registry, as to an ACR of
	// the owner's, where the cluster's nodes pull them: its owner made an
	// account per team, ci-TEAM, that may push under TEAM/ only (on ACR,
	// a token of a scope map), and one that may only pull, for Flux. B is
	// given their passwords; B's own registry keeps B's images (Flux's
	// sync aside, the CI image, the databases').
	_, aRegPort, _ := net.SplitHostPort(aReg)
	lineRegistry := net.JoinHostPort(nodeHost, aRegPort)
	passwords, chartsReader, wrongReader := t.TempDir(), filepath.Join(t.TempDir(), "charts-reader"), filepath.Join(t.TempDir(), "stale-reader")
	for _, team := range []string{"dev1", "dev2"} {
		password := fmt.Sprintf("%s-acr-%d", team, time.Now().UnixNano())
		a.mustRun(password+"\n", "user", "set", "ci-"+team, "--push", team+"/", "--password-stdin")
		writeFile(t, filepath.Join(passwords, "ci-"+team), password+"\n")
	}
	readerPassword := fmt.Sprintf("charts-read-%d", time.Now().UnixNano())
	a.mustRun(readerPassword+"\n", "user", "set", "charts-reader", "--password-stdin")
	writeFile(t, chartsReader, readerPassword+"\n")
	writeFile(t, wrongReader, "expired-token\n")
	b.vars = append(b.vars, "SLIPWAY_LINE_REGISTRY="+lineRegistry, "SLIPWAY_LINE_REGISTRY_CA_FILE="+a.caFile(),
		"SLIPWAY_LINE_REGISTRY_READER_USERNAME=charts-reader", "SLIPWAY_LINE_REGISTRY_PASSWORDS_DIR="+passwords)
	// A reader the registry refuses: refused before anything is written.
	stale := b.runWithin(5*time.Minute, "up", "--line-registry-reader-password-file", wrongReader)
	if stale.code == 0 || !strings.Contains(stale.stderr, "the line's registry (cluster.existing.registry.readerUsername): registry "+lineRegistry+" refuses the credentials (as charts-reader)") {
		t.Fatalf("up with a line registry reader the registry refuses: exit %d\n%s", stale.code, stale.stderr)
	}
	if out, _ := a.kubectl("get", "namespace", "flux-system"); !strings.Contains(out, "NotFound") {
		t.Fatalf("a refused line registry got Flux's namespace:\n%s", out)
	}
	b.vars = append(b.vars, "SLIPWAY_LINE_REGISTRY_READER_PASSWORD_FILE="+chartsReader)

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

	// The owner bootstraps Flux from a repository of theirs on A's git
	// server, as flux bootstrap does: the components and the sync
	// (GitRepository and Kustomization flux-system) in
	// clusters/owner/flux-system, applied once, then kept by the sync,
	// with one object of the owner's own beside them.
	crds, err := flux.CRDs(context.Background(), components.Options{CacheDir: config.Default().CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	install, err := flux.Components(crds, flux.UpstreamImages(prefix))
	if err != nil {
		t.Fatal(err)
	}
	a.mustRun("", "repo", "create", "ops/owner")
	_, aGitPort, _ := net.SplitHostPort(aGit)
	ownerURL := "https://" + net.JoinHostPort(nodeHost, aGitPort) + "/ops/owner.git"
	aPassword := strings.TrimSpace(readFile(t, filepath.Join(a.home, "admin-password")))
	ownerFleet := flux.Fleet{Cluster: "owner", URL: ownerURL}
	ownerSettings := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owner-settings, namespace: default}\ndata: {kept: by the owner's sync}\n"
	ownerRepo := gitrepo.Remote{URL: ownerURL, Username: "admin", Password: aPassword, CAFile: a.caFile()}
	if _, err := ownerRepo.Change(context.Background(), gitrepo.Author{Name: "owner", Email: "owner@example.com"}, "bootstrap Flux", func(dir string) error {
		for path, data := range map[string]string{
			ownerFleet.SystemDir() + "/gotk-components.yaml": string(install),
			ownerFleet.SystemDir() + "/gotk-sync.yaml":       ownerFleet.Sync(),
			ownerFleet.Dir() + "/owner-settings.yaml":        ownerSettings,
		} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, path), []byte(data), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	installFile, syncFile := filepath.Join(t.TempDir(), "flux-install.yaml"), filepath.Join(t.TempDir(), "flux-sync.yaml")
	writeFile(t, installFile, string(install))
	writeFile(t, syncFile, ownerFleet.Sync())
	a.mustKubectl("apply", "--server-side", "-f", installFile)
	a.mustKubectl("-n", flux.Namespace, "create", "secret", "generic", flux.SyncName, "--from-literal=username=admin",
		"--from-literal=password="+aPassword, "--from-file=ca.crt="+a.caFile())
	a.mustKubectl("apply", "-f", syncFile)
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
	a.mustKubectl("-n", flux.Namespace, "wait", "kustomization/"+flux.SyncName, "--for=condition=Ready", "--timeout=5m")
	// What the owner keeps, to compare after the demo: the sync's specs
	// and the Secret it reads with.
	ownersSync := func() string {
		return a.mustKubectl("-n", flux.Namespace, "get", "gitrepository,kustomization,secret", flux.SyncName, "-o",
			`jsonpath={range .items[*]}{.kind} {.metadata.generation} {.spec.url} {.spec.path} {.data.password}{"\n"}{end}`)
	}
	before, ownersBefore := controllers(), ownersSync()
	if strings.Count(before, " "+flux.SyncName+"\n") != len(flux.Controllers) {
		t.Fatalf("the owner's controllers are not kept by the owner's sync:\n%s", before)
	}

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
	if url := a.mustKubectl("-n", flux.Namespace, "get", "gitrepository", flux.AdoptedSyncName, "-o", "jsonpath={.spec.url}"); !strings.HasPrefix(url, "https://"+nodeHost+":") || url == ownerURL {
		t.Errorf("the adopted Flux reads the fleet from %q", url)
	}

	demo := b.run("", "demo")
	t.Logf("slipway demo through B, with the cluster's own Flux:\n%s", demo.stdout)
	if demo.code != 0 || !strings.Contains(demo.stdout, "every step passed") {
		t.Fatalf("slipway demo: exit %d\n%s\n%s", demo.code, demo.stdout, demo.stderr)
	}
	// The owner's controllers are as the owner left them: same images
	// from the owner's registry, same generation, kept by the owner's
	// sync; so are that sync, its Secret, and the owner's own object.
	if after := controllers(); after != before {
		t.Errorf("the adopted controllers changed:\nbefore:\n%safter:\n%s", before, after)
	}
	if after := ownersSync(); after != ownersBefore {
		t.Errorf("the owner's sync changed:\nbefore:\n%safter:\n%s", ownersBefore, after)
	}
	a.mustKubectl("-n", flux.Namespace, "wait", "gitrepository/"+flux.SyncName, "kustomization/"+flux.SyncName, "--for=condition=Ready", "--timeout=3m")
	if got := a.mustKubectl("-n", "default", "get", "configmap", "owner-settings", "-o", "jsonpath={.data.kept}"); got != "by the owner's sync" {
		t.Errorf("the owner's ConfigMap reads %q", got)
	}
	if !strings.Contains(before, " "+prefix+"/source-controller:") {
		t.Errorf("the owner's Flux does not run from the owner's images:\n%s", before)
	}
	// quotes' database ran on A through the adopted Flux: its engine
	// upgrade is in the timeline ("every step passed" includes finding
	// every quote on 17), the operator's Kustomizations read the fleet
	// through the platform's own sync, and the database's volume is a
	// claim of A's default StorageClass.
	if !strings.Contains(demo.stdout, "upgrades prod: slipway db upgrade dev2/quotes --to 17 --env prod") {
		t.Errorf("the timeline lacks the database's engine upgrade")
	}
	for _, ks := range []string{"cnpg", "databases"} {
		if src := a.mustKubectl("-n", flux.Namespace, "get", "kustomization", ks, "-o", "jsonpath={.spec.sourceRef.name}"); src != flux.AdoptedSyncName {
			t.Errorf("Kustomization %s reads the fleet through %q", ks, src)
		}
	}
	if claims := a.mustKubectl("-n", "dev2-prod", "get", "pvc", "-o", "jsonpath={range .items[*]}{.spec.storageClassName} {.status.phase}{\"\\n\"}{end}"); !strings.Contains(claims, "slipway-local Bound") {
		t.Errorf("quotes' database in dev2-prod has no bound volume of A's default class:\n%s", claims)
	}
	// The teams' images and charts went to the line's registry, A's, and
	// were pulled from there: by the nodes, and by Flux as its reader.
	hello := a.mustKubectl("-n", "dev1-prod", "get", "deployment", "-o", "jsonpath={.items[0].spec.template.spec.containers[0].image}")
	if !strings.HasPrefix(hello, lineRegistry+"/dev1/hello@sha256:") {
		t.Errorf("hello in prod runs %s, not an image of the line's registry %s", hello, lineRegistry)
	}
	for _, ns := range []string{"dev1-staging", "dev1-prod"} {
		if url := a.mustKubectl("-n", ns, "get", "helmrepository", "charts", "-o", "jsonpath={.spec.url}"); url != "oci://"+lineRegistry+"/dev1/charts" {
			t.Errorf("dev1's charts in %s are read from %s", ns, url)
		}
		if user := a.mustKubectl("-n", ns, "get", "secret", "registry", "-o", "jsonpath={.data.username}"); user != base64.StdEncoding.EncodeToString([]byte("charts-reader")) {
			t.Errorf("Flux pulls dev1's charts in %s as %s (base64), not the line registry's reader", ns, user)
		}
	}
	for _, repo := range []string{"dev1/hello", "dev1/charts/hello", "dev2/quotes"} {
		if _, err := os.Stat(filepath.Join(a.home, "registry", "docker", "registry", "v2", "repositories", repo)); err != nil {
			t.Errorf("the line's registry has no %s: %v", repo, err)
		}
		if _, err := os.Stat(filepath.Join(b.home, "registry", "docker", "registry", "v2", "repositories", repo)); err == nil {
			t.Errorf("B's own registry holds %s too", repo)
		}
	}
	// A team's pipelines get its account there, which is its CI account
	// on B too.
	if vars := b.mustRun("", "pipeline", "variables", "dev1").stdout; !strings.Contains(vars, lineRegistry) || !strings.Contains(vars, "ci-dev1") {
		t.Errorf("dev1's variable group does not name the line's registry and its account there:\n%s", vars)
	}
	// A team whose account there may push only under another team's
	// prefix (a scope map set up wrong) is not onboarded: refused before
	// anything is written.
	a.mustRun("dev3-acr\n", "user", "set", "ci-dev3", "--push", "dev1/", "--password-stdin")
	writeFile(t, filepath.Join(passwords, "ci-dev3"), "dev3-acr\n")
	dev3 := b.run("", "tenant", "create", "dev3")
	if dev3.code == 0 || !strings.Contains(dev3.stderr, "refuses a push to dev3/slipway-check as ci-dev3") {
		t.Errorf("onboarding a team whose account may not push under its prefix: exit %d\n%s", dev3.code, dev3.stderr)
	}
	if out, _ := a.kubectl("get", "namespace", "dev3-staging"); !strings.Contains(out, "NotFound") {
		t.Errorf("a refused team got its namespace:\n%s", out)
	}
	os.Remove(filepath.Join(passwords, "ci-dev3"))
	for _, ns := range []string{"dev1-ci", "dev2-ci"} {
		if claim := a.mustKubectl("-n", ns, "get", "pvc", "go-cache", "-o", "jsonpath={.spec.accessModes} {.spec.storageClassName} {.status.phase}"); claim != `["ReadWriteMany"] slipway-local Bound` {
			t.Errorf("the Go cache claim in %s: %s", ns, claim)
		}
	}
	b.mustRun("", "down")
	up.wait(t)

	// Another platform's adoption of the same Flux (the adopted sync's
	// name reading another fleet) is refused, and left alone.
	const otherFleet = "https://git.example.com/other/fleet.git"
	a.mustKubectl("-n", flux.Namespace, "patch", "gitrepository", flux.AdoptedSyncName, "--type=merge",
		"-p", `{"spec":{"url":"`+otherFleet+`"}}`)
	second := b.runWithin(5*time.Minute, "up")
	if second.code == 0 || !strings.Contains(second.stderr, "GitRepository flux-system/slipway reads another fleet, "+otherFleet) {
		t.Fatalf("adopting a Flux another platform adopted: exit %d\n%s", second.code, second.stderr)
	}
	if url := a.mustKubectl("-n", flux.Namespace, "get", "gitrepository", flux.AdoptedSyncName, "-o", "jsonpath={.spec.url}"); url != otherFleet {
		t.Errorf("the refused start changed the other sync to %q", url)
	}
}
