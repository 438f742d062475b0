package flux

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/slipway-dev/slipway/internal/build"
)

func decodeAll(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("manifests do not parse: %v", err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func testImage() Image {
	return Image{Repository: "127.0.0.1:5000/flux/controllers",
		Image: &build.Image{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}}
}

func testCRD(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "crd.yaml")
	os.WriteFile(path, []byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.example.com
spec:
  group: example.com
  names: {kind: Thing, plural: things}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`), 0o644)
	return path
}

func TestComponentsCarryTheLockdownAndFluxLabels(t *testing.T) {
	data, err := Components([]string{testCRD(t)}, testImage().ForControllers)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, data)
	if objs[0].GetKind() != "Namespace" || objs[0].GetName() != Namespace {
		t.Fatalf("first object is %s %s, want the namespace", objs[0].GetKind(), objs[0].GetName())
	}
	kinds := map[string]int{}
	args := map[string]string{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		if o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Deployment" {
			if l := o.GetLabels(); l["app.kubernetes.io/part-of"] != "flux" || l["app.kubernetes.io/version"] != Version {
				t.Errorf("%s %s lacks Flux's labels: %v", o.GetKind(), o.GetName(), l)
			}
		}
		if o.GetKind() == "Deployment" {
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := containers[0].(map[string]any)
			var list []string
			for _, a := range c["args"].([]any) {
				list = append(list, a.(string))
			}
			args[o.GetName()] = strings.Join(list, " ")
			if c["image"] != testImage().Ref() || !strings.Contains(c["image"].(string), "@sha256:") {
				t.Errorf("%s image %v is not the controllers' image pinned by digest", o.GetName(), c["image"])
			}
			// The one executable runs the controller it is called as.
			if cmd, _ := c["command"].([]any); len(cmd) != 1 || cmd[0] != "/"+o.GetName() {
				t.Errorf("%s runs %v, want its link /%s", o.GetName(), c["command"], o.GetName())
			}
		}
	}
	if kinds["Deployment"] != 4 || kinds["ServiceAccount"] != 4 || kinds["CustomResourceDefinition"] != 1 || kinds["Service"] != 3 {
		t.Fatalf("objects by kind: %v", kinds)
	}
	for name, want := range map[string][]string{
		"kustomize-controller":    {"--no-cross-namespace-refs=true", "--no-remote-bases=true", "--default-service-account=default"},
		"helm-controller":         {"--no-cross-namespace-refs=true", "--default-service-account=default"},
		"notification-controller": {"--no-cross-namespace-refs=true"},
		"source-controller":       {"--storage-path=/data"},
	} {
		for _, w := range want {
			if !strings.Contains(args[name], w) {
				t.Errorf("%s runs with %q, lacking %s", name, args[name], w)
			}
		}
		if strings.Contains(args[name], "leader-election") {
			t.Errorf("%s elects a leader: %s", name, args[name])
		}
	}
}

// The fleet tree builds with Kustomize, as kustomize-controller builds it.
func TestFleetTreeBuildsWithKustomize(t *testing.T) {
	components, err := Components([]string{testCRD(t)}, testImage().ForControllers)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := Fleet{Cluster: "slipway", URL: "http://10.244.0.1:3000/ops/fleet.git"}
	if err := f.WriteTree(dir, components); err != nil {
		t.Fatal(err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(dir, f.SystemDir()))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", f.SystemDir(), err)
	}
	var sync []string
	for _, r := range res.Resources() {
		if r.GetName() == "flux-system" && (r.GetKind() == "GitRepository" || r.GetKind() == "Kustomization") {
			sync = append(sync, r.GetKind())
		}
	}
	if len(sync) != 2 {
		t.Fatalf("flux-system builds without its sync objects: %v", sync)
	}
	for _, env := range Environments {
		if _, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "tenants", env)); err != nil {
			t.Errorf("kustomize build tenants/%s: %v", env, err)
		}
	}
	// Writing again keeps what ops added to the overlays.
	overlay := filepath.Join(dir, "tenants/staging/kustomization.yaml")
	os.WriteFile(overlay, []byte("resources: [dev1.yaml]\n"), 0o644)
	if err := f.WriteTree(dir, components); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(overlay); string(got) != "resources: [dev1.yaml]\n" {
		t.Fatalf("the staging overlay was overwritten: %q", got)
	}
}

func TestKindByName(t *testing.T) {
	for name, want := range map[string]string{"hr": "HelmRelease", "HelmRelease": "HelmRelease", "ks": "Kustomization", "gitrepo": "GitRepository", "helmchart": "HelmChart"} {
		if k, ok := KindByName(name); !ok || k.Kind != want {
			t.Errorf("%s: %v %v", name, k.Kind, ok)
		}
	}
	if _, ok := KindByName("pod"); ok {
		t.Error("pod is not a Flux kind")
	}
}

func TestSummarize(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "hello", "namespace": "dev1-staging", "generation": int64(3)},
		"spec":     map[string]any{"suspend": false},
		"status": map[string]any{
			"observedGeneration":    int64(3),
			"lastAttemptedRevision": "0.3.1",
			"conditions":            []any{map[string]any{"type": "Ready", "status": "False", "message": "upgrade failed"}},
		},
	}}
	o := Summarize(HelmRelease, u)
	if o.Ready != "False" || o.Revision != "0.3.1" || o.Message != "upgrade failed" || !o.Current {
		t.Fatalf("%+v", o)
	}
}

// TestSyncHeldDiffersOnlyBySuspend: what the platform applies at start
// is the repository's sync with the Kustomization suspended, and the
// repository's copy never carries the field (Flux applying it must leave
// the platform's suspension to the platform).
func TestSyncHeldDiffersOnlyBySuspend(t *testing.T) {
	f := Fleet{Cluster: "slipway", URL: "https://10.244.0.1:3000/ops/fleet.git"}
	held, plain := decodeAll(t, []byte(f.SyncHeld())), decodeAll(t, []byte(f.Sync()))
	if len(held) != 2 || len(plain) != 2 {
		t.Fatalf("objects: held %d, plain %d; want 2 each", len(held), len(plain))
	}
	for i := range plain {
		_, inRepo, _ := unstructured.NestedFieldNoCopy(plain[i].Object, "spec", "suspend")
		suspend, _, _ := unstructured.NestedBool(held[i].Object, "spec", "suspend")
		switch plain[i].GetKind() {
		case "Kustomization":
			if inRepo || !suspend {
				t.Errorf("Kustomization: suspend in the repository %v (want absent), held %v (want true)", inRepo, suspend)
			}
		default:
			if suspend {
				t.Errorf("%s is suspended too", plain[i].GetKind())
			}
		}
		unstructured.RemoveNestedField(held[i].Object, "spec", "suspend")
		if !equalJSON(t, held[i], plain[i]) {
			t.Errorf("%s differs by more than suspend", plain[i].GetKind())
		}
	}
}

func equalJSON(t *testing.T, a, b *unstructured.Unstructured) bool {
	t.Helper()
	ja, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	jb, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}
