package flux

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Each kind's own labels come from where Flux's monitoring guide reads
// them.
func TestResourceLabelValues(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		obj  string
		want map[string]string
	}{
		{GitRepository, `
metadata: {name: flux-system, namespace: flux-system}
spec: {url: "https://10.244.0.1:3000/ops/fleet.git"}
status:
  artifact: {revision: "main@sha1:8d31"}
  conditions: [{type: Ready, status: "True", reason: Succeeded}]`,
			map[string]string{"customresource_group": "source.toolkit.fluxcd.io", "customresource_kind": "GitRepository", "customresource_version": "v1",
				"exported_namespace": "flux-system", "name": "flux-system", "ready": "True", "suspended": "false", "revision": "main@sha1:8d31",
				"url": "https://10.244.0.1:3000/ops/fleet.git", "reason": "Succeeded", "chart_name": ""}},
		{Kustomization, `
metadata: {name: tenants-staging, namespace: flux-system}
spec: {suspend: true, sourceRef: {kind: GitRepository, name: flux-system}}
status:
  lastAppliedRevision: "main@sha1:8d31"
  conditions: [{type: Ready, status: "False", reason: BuildFailed}]`,
			map[string]string{"customresource_group": "kustomize.toolkit.fluxcd.io", "ready": "False", "suspended": "true",
				"revision": "main@sha1:8d31", "source_name": "flux-system", "reason": "BuildFailed", "url": ""}},
		{HelmChart, `
metadata: {name: dev1-staging-hello, namespace: dev1-staging}
spec: {chart: hello, version: ">=0.1.0-0", sourceRef: {kind: HelmRepository, name: charts}}
status: {artifact: {revision: "0.1.3"}}`,
			map[string]string{"ready": "Unknown", "chart_name": "hello", "chart_version": ">=0.1.0-0", "revision": "0.1.3", "source_name": "charts", "reason": ""}},
		{HelmRelease, `
metadata: {name: hello, namespace: dev1-prod}
spec: {chart: {spec: {chart: hello, sourceRef: {kind: HelmRepository, name: charts}}}}
status:
  history: [{chartName: hello, chartVersion: 0.1.3, appVersion: 0.1.3}, {chartName: hello, chartVersion: 0.1.2}]
  conditions: [{type: Ready, status: "True", reason: UpgradeSucceeded}]`,
			map[string]string{"customresource_version": "v2", "chart_name": "hello", "chart_version": "0.1.3", "chart_app_version": "0.1.3",
				"chart_source_name": "charts", "revision": "0.1.3", "ready": "True", "reason": "UpgradeSucceeded"}},
	} {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(c.obj), &u.Object); err != nil {
			t.Fatal(err)
		}
		values := ResourceLabelValues(c.kind, &u)
		if len(values) != len(resourceLabels) {
			t.Fatalf("%s: %d values for %d labels", c.kind.Kind, len(values), len(resourceLabels))
		}
		got := map[string]string{}
		for i, l := range resourceLabels {
			got[l] = values[i]
		}
		for l, want := range c.want {
			if got[l] != want {
				t.Errorf("%s: %s=%q, want %q (all: %s)", c.kind.Kind, l, got[l], want, strings.Join(values, ","))
			}
		}
	}
}
