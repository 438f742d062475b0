package flux

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/golden"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The tenant overlays build with Kustomize into each team's namespaced
// objects, with the account bound in its own namespace only.
func TestTenantOverlaysBuild(t *testing.T) {
	dir := t.TempDir()
	f := Fleet{Cluster: "slipway"}
	if err := f.WriteTree(dir, []byte("---\n")); err != nil {
		t.Fatal(err)
	}
	for _, team := range []string{"dev1", "dev2"} {
		if err := AddTenant(dir, Tenant{Team: team, ChartsURL: "oci://10.244.0.1:5000/" + team + "/charts", PlatformCA: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetRelease(dir, Release{Team: "dev1", App: "hello", Env: "staging", Version: ">=0.1.0-0"}); err != nil {
		t.Fatal(err)
	}
	if err := SetRelease(dir, Release{Team: "dev1", App: "hello", Env: "prod", Version: "0.1.3",
		Annotations: map[string]string{"slipway.dev/promoted-by": "dev1"}}); err != nil {
		t.Fatal(err)
	}
	// Idempotent: adding again changes nothing.
	before, _ := os.ReadFile(filepath.Join(dir, "tenants/staging/kustomization.yaml"))
	if err := AddTenant(dir, Tenant{Team: "dev1", ChartsURL: "oci://10.244.0.1:5000/dev1/charts", PlatformCA: true}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "tenants/staging/kustomization.yaml")); string(after) != string(before) {
		t.Fatalf("adding a tenant twice changed the overlay:\n%s\n%s", before, after)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	got := map[string]string{}
	for _, env := range Overlays {
		res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "tenants", env))
		if err != nil {
			t.Fatalf("kustomize build tenants/%s: %v", env, err)
		}
		for _, r := range res.Resources() {
			y, _ := r.AsYAML()
			got[env+"/"+r.GetKind()+"/"+r.GetNamespace()+"/"+r.GetName()] = string(y)
		}
	}
	for _, want := range []string{
		"staging/Namespace//dev1-staging", "staging/ServiceAccount/dev1-staging/dev1", "staging/RoleBinding/dev1-staging/dev1-admin",
		"staging/HelmRepository/dev1-staging/charts", "staging/HelmRelease/dev1-staging/hello", "staging/Namespace//dev2-staging",
		"prod/HelmRelease/dev1-prod/hello", "prod/ServiceAccount/dev2-prod/dev2",
		"ci/Namespace//dev1-ci", "ci/ServiceAccount/dev1-ci/ci", "staging/RoleBinding/dev1-staging/ci-edit", "prod/RoleBinding/dev1-prod/ci-view",
	} {
		if _, ok := got[want]; !ok {
			t.Errorf("missing %s; have %v", want, keys(got))
		}
	}
	// The CI account is bound where its team deploys, by its own
	// namespace: Kustomize must not move the subject into the overlay's.
	for _, key := range []string{"staging/RoleBinding/dev1-staging/ci-edit", "prod/RoleBinding/dev1-prod/ci-view"} {
		if rb := got[key]; !strings.Contains(rb, "namespace: dev1-ci") {
			t.Errorf("%s:\n%s", key, rb)
		}
	}
	if rb := got["staging/RoleBinding/dev2-staging/dev2-admin"]; !strings.Contains(rb, "namespace: dev2-staging") || strings.Contains(rb, "dev1") {
		t.Errorf("dev2's binding:\n%s", rb)
	}
	if hr := got["prod/HelmRelease/dev1-prod/hello"]; !strings.Contains(hr, "version: 0.1.3") || !strings.Contains(hr, "serviceAccountName: dev1") || !strings.Contains(hr, "promoted-by") {
		t.Errorf("prod release:\n%s", hr)
	}
	if hr := got["staging/HelmRelease/dev1-staging/hello"]; !strings.Contains(hr, "version: '>=0.1.0-0'") && !strings.Contains(hr, `version: ">=0.1.0-0"`) {
		t.Errorf("staging release:\n%s", hr)
	}
	teams, _ := Tenants(dir)
	if strings.Join(teams, ",") != "dev1,dev2" {
		t.Errorf("tenants %v", teams)
	}
	if err := RemoveTenant(dir, "dev2"); err != nil {
		t.Fatal(err)
	}
	if res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "tenants", "staging")); err != nil || len(res.Resources()) != 6 {
		t.Fatalf("after removing dev2: %v", err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The fleet repository's files, as Slipway writes them for two teams and a
// promoted release, against testdata/fleet/ (go test -update rewrites it).
func TestFleetFilesGolden(t *testing.T) {
	dir := t.TempDir()
	f := Fleet{Cluster: "slipway", URL: "https://10.244.0.1:3000/ops/fleet.git"}
	if err := f.WriteTree(dir, []byte("# components\n")); err != nil {
		t.Fatal(err)
	}
	for _, team := range []string{"dev1", "dev2"} {
		if err := AddTenant(dir, Tenant{Team: team, ChartsURL: "oci://10.244.0.1:5000/" + team + "/charts", PlatformCA: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := AddSource(dir, "dev2", "shared", "oci://10.244.0.1:5000/dev2/shared", true); err != nil {
		t.Fatal(err)
	}
	if err := SetRelease(dir, Release{Team: "dev1", App: "hello", Env: "staging", Version: ">=0.1.0-0"}); err != nil {
		t.Fatal(err)
	}
	if err := SetRelease(dir, Release{Team: "dev1", App: "hello", Env: "prod", Version: "0.1.3",
		Annotations: map[string]string{"slipway.dev/promoted-by": "dev1", "slipway.dev/image": "10.244.0.1:5000/dev1/hello@sha256:0000"}}); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		golden.Check(t, filepath.Join("testdata", "fleet", rel), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Files ops wrote into an environment overlay by hand stay listed when a
// tenant is added or removed.
func TestEnvOverlayKeepsOpsFiles(t *testing.T) {
	dir := t.TempDir()
	if err := (Fleet{Cluster: "slipway"}).WriteTree(dir, []byte("---\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tenants/staging/legacy.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := AddTenant(dir, Tenant{Team: "dev3"}); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTenant(dir, "dev3"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "tenants/staging/kustomization.yaml"))
	if !strings.Contains(string(data), "- legacy.yaml") || strings.Contains(string(data), "dev3") {
		t.Fatalf("staging overlay:\n%s", data)
	}
}

// A fleet written when the registry spoke plain HTTP is moved to HTTPS
// with the platform's CA; a source Slipway did not write is left alone.
func TestTrustPlatformCAMovesOldSources(t *testing.T) {
	dir := t.TempDir()
	old := "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\nspec:\n  insecure: true\n  interval: 10m0s\n  secretRef:\n    name: registry\n  type: oci\n  url: oci://10.244.0.1:5000/dev1/charts\n"
	foreign := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
	writeTestFile(t, filepath.Join(dir, "tenants/base/dev1/source-charts.yaml"), old)
	writeTestFile(t, filepath.Join(dir, "tenants/base/dev1/source-other.yaml"), foreign)
	changed, err := TrustPlatformCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0] != filepath.FromSlash("tenants/base/dev1/source-charts.yaml") {
		t.Fatalf("changed %v", changed)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "tenants/base/dev1/source-charts.yaml"))
	if want := mustMarshal(HelmRepositoryObject("charts", "oci://10.244.0.1:5000/dev1/charts", true)); string(got) != string(want) {
		t.Fatalf("moved source:\n%s\nwant:\n%s", got, want)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tenants/base/dev1/source-other.yaml")); string(got) != foreign {
		t.Fatalf("a file Slipway did not write was changed:\n%s", got)
	}
	if changed, err := TrustPlatformCA(dir); err != nil || len(changed) != 0 {
		t.Fatalf("a second pass changed %v (%v)", changed, err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The fleet's own files beside an adopted Flux, against
// testdata/fleet-adopted/: no Flux components, the sync under a name of
// its own (the owner's flux-system is left alone), every Kustomization
// reading through it, and only the fleet's own objects' events sent to
// the platform.
func TestAdoptedFleetFilesGolden(t *testing.T) {
	dir := t.TempDir()
	f := Fleet{Cluster: "slipway", URL: "https://10.244.0.1:3000/ops/fleet.git", EventsURL: "https://10.244.0.1:3000/-/flux-events/fleet", Adopted: true}
	if err := f.WriteTree(dir, []byte("# components\n")); err != nil {
		t.Fatal(err)
	}
	for path, data := range f.Files(nil) {
		golden.Check(t, filepath.Join("testdata", "fleet-adopted", path), data)
	}
	if _, err := os.Stat(filepath.Join(dir, f.SystemDir(), componentsFile)); !os.IsNotExist(err) {
		t.Errorf("an adopted fleet holds %s: %v", componentsFile, err)
	}
}
