package release

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/slipway-dev/slipway/internal/flux"
)

// Detail is an app's release in one environment as a developer looks at
// it: what runs, whether it is Ready and, when not, why in plain words,
// and Helm's history of it.
type Detail struct {
	Env       string `json:"env"`
	Namespace string `json:"namespace"`
	// Exists is false when the environment has no release of the app.
	Exists    bool   `json:"exists"`
	Suspended bool   `json:"suspended,omitempty"`
	Running   string `json:"running,omitempty"`
	// Attempted is the chart version Flux last tried.
	Attempted string `json:"attempted,omitempty"`
	Ready     bool   `json:"ready"`
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
	// Explanation says what Reason means and what to do about it.
	Explanation string `json:"explanation,omitempty"`
	// Pods names the release's pods that cannot run, and why.
	Pods    string       `json:"pods,omitempty"`
	History []HelmRecord `json:"history,omitempty"`
}

// HelmRecord is one entry of a HelmRelease's history (Helm's release
// revisions, newest first, as helm-controller keeps them).
type HelmRecord struct {
	Revision      int64     `json:"revision"`
	ChartVersion  string    `json:"chartVersion"`
	Status        string    `json:"status"`
	FirstDeployed time.Time `json:"firstDeployed,omitzero"`
	LastDeployed  time.Time `json:"lastDeployed,omitzero"`
}

// Describe reads an app's release in every environment of the line.
func Describe(ctx context.Context, c *Clients, team, app string) ([]Detail, error) {
	var out []Detail
	for _, env := range flux.Environments {
		ns := flux.TenantNamespace(team, env)
		d := Detail{Env: env, Namespace: ns}
		o, hr, err := flux.Get(ctx, c.Dyn, flux.HelmRelease, ns, app)
		if apierrors.IsNotFound(err) {
			out = append(out, d)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading HelmRelease %s/%s: %w", ns, app, err)
		}
		d.Exists, d.Suspended, d.Attempted, d.Ready = true, o.Suspended, o.Revision, o.Ready == "True"
		if snap, ok := latest(hr); ok && snap.Status == "deployed" {
			d.Running = snap.ChartVersion
		}
		_, d.Reason, d.Message = conditionOf(hr, "Ready")
		if !d.Ready {
			d.Explanation = Explain(d.Reason, d.Suspended)
			d.Pods = strings.TrimSpace(podTrouble(ctx, c, ns, app))
		}
		d.History = helmHistory(hr)
		out = append(out, d)
	}
	return out, nil
}

func helmHistory(hr *unstructured.Unstructured) []HelmRecord {
	hist, _, _ := unstructured.NestedSlice(hr.Object, "status", "history")
	var out []HelmRecord
	for _, h := range hist {
		m, _ := h.(map[string]any)
		var r HelmRecord
		r.ChartVersion, _ = m["chartVersion"].(string)
		r.Status, _ = m["status"].(string)
		switch v := m["version"].(type) {
		case int64:
			r.Revision = v
		case float64:
			r.Revision = int64(v)
		}
		for key, t := range map[string]*time.Time{"firstDeployed": &r.FirstDeployed, "lastDeployed": &r.LastDeployed} {
			if s, _ := m[key].(string); s != "" {
				*t, _ = time.Parse(time.RFC3339, s)
			}
		}
		out = append(out, r)
	}
	return out
}

// Explain says what a HelmRelease's Ready reason means for the team,
// and what to do.
func Explain(reason string, suspended bool) string {
	if suspended {
		return "Flux does not act on this release: ops suspended it (slipway reconcile resumes nothing; ask ops)."
	}
	switch reason {
	case "Progressing", "":
		return "Flux is installing or upgrading it now; it becomes Ready when Helm is done and the pods are ready."
	case "InstallFailed":
		return "Helm could not install the chart: the message says which object failed; fix the chart and push a new version."
	case "UpgradeFailed":
		return "Helm could not upgrade to the new version; the previous one keeps serving. Fix the chart or the app and push a new version."
	case "RollbackSucceeded":
		return "The upgrade failed and Helm went back to the previous version, which is serving. Push a fixed version."
	case "RollbackFailed", "UninstallSucceeded", "UninstallFailed":
		return "The upgrade failed and Helm could not go back cleanly: ask ops to look at the release."
	case "RetriesExceeded":
		return "Flux tried the version as many times as it may and gave up: push a fixed version."
	case "TestFailed":
		return "The chart's Helm tests failed for this version."
	case "ArtifactFailed", "HelmChartNotReady", "SourceNotReady":
		return "Flux cannot fetch the chart: has this version been pushed to the team's chart repository, and can the cluster reach the registry?"
	case "DependencyNotReady":
		return "The release waits for another release it depends on."
	case "InitFailed", "ReconciliationFailed":
		return "Flux could not start on the release: the message says why (often the values or the account it acts as)."
	}
	return "Flux reports " + reason + "; the message says why."
}
