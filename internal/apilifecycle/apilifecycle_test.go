package apilifecycle

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"os"
	"testing"
)

// The data is what the api-lifecycle program built from the v1.37.2 pins
// printed (regenerate it with that program when the pins move).
func load(t *testing.T) *Data {
	t.Helper()
	raw, err := os.ReadFile("testdata/lifecycle-v1.37.2.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCheckFindsDeprecatedAndRemovedAPIs(t *testing.T) {
	d := load(t)
	objects := ObjectsInYAML([]byte(`apiVersion: v1
kind: Endpoints
metadata:
  name: legacy
  namespace: ops
---
# a comment only
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fine
---
apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
kind: FlowSchema
metadata:
  name: gone
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: long-gone
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: custom
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ComponentStatus
  metadata:
    name: in-a-list
`), "fleet:ops/legacy.yaml")
	if len(objects) != 6 {
		t.Fatalf("read %d objects, want 6: %+v", len(objects), objects)
	}
	got := map[string]Finding{}
	for _, f := range d.Check(objects, "v1.37.2") {
		got[f.Name] = f
	}
	if f, ok := got["legacy"]; !ok || f.Blocks || f.Deprecated != "1.33" || f.Replacement != "discovery.k8s.io/v1 EndpointSlice" {
		t.Errorf("v1 Endpoints: %+v, want deprecated in 1.33 in favour of EndpointSlice", f)
	}
	if f, ok := got["gone"]; !ok || !f.Blocks {
		t.Errorf("flowcontrol v1beta3 FlowSchema (removed in 1.32): %+v, want blocking", f)
	}
	if f, ok := got["long-gone"]; !ok || !f.Blocks || f.Removed != "1.22" {
		t.Errorf("extensions/v1beta1 Ingress: %+v, want removed in 1.22", f)
	}
	if _, ok := got["in-a-list"]; !ok {
		t.Error("an object inside a List was missed")
	}
	for _, name := range []string{"fine", "custom"} {
		if f, ok := got[name]; ok {
			t.Errorf("%s was flagged: %+v", name, f)
		}
	}
}

func TestCheckJudgesByTheTargetRelease(t *testing.T) {
	d := load(t)
	// MutatingAdmissionPolicy v1beta1 is deprecated from 1.37: a 1.36
	// target does not flag it, 1.37 does.
	objs := []Object{{APIVersion: "admissionregistration.k8s.io/v1beta1", Kind: "MutatingAdmissionPolicy", Name: "p"}}
	if f := d.Check(objs, "v1.36.3"); len(f) != 0 {
		t.Errorf("for v1.36.3: %+v", f)
	}
	if f := d.Check(objs, "v1.37.2"); len(f) != 1 || f[0].Blocks {
		t.Errorf("for v1.37.2: %+v", f)
	}
	// A version of a built-in group the target has no kind of at all.
	gone := []Object{{APIVersion: "apps/v1beta9", Kind: "Deployment", Name: "x"}}
	if f := d.Check(gone, "v1.37.2"); len(f) != 1 || !f[0].Blocks {
		t.Errorf("an unknown version of a built-in group: %+v", f)
	}
}

func TestHelmReleaseManifest(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write([]byte(`{"name":"hello","manifest":"apiVersion: v1\nkind: Service\nmetadata:\n  name: hello\n"}`))
	_ = zw.Close()
	m, err := HelmReleaseManifest([]byte(base64.StdEncoding.EncodeToString(z.Bytes())))
	if err != nil || len(ObjectsInYAML([]byte(m), "x")) != 1 {
		t.Fatalf("%q %v", m, err)
	}
	if _, err := HelmReleaseManifest([]byte("not base64!")); err == nil {
		t.Error("garbage was read as a release")
	}
}
