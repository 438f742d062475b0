package release

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipway-dev/slipway/internal/flux"
)

// EnvState is one app's release in one environment: what runs there now
// and the records of every version that went through it.
type EnvState struct {
	Team string `json:"team"`
	App  string `json:"app"`
	Env  string `json:"env"`
	// Running is the chart version Helm last deployed there ("" before
	// the first install).
	Running string `json:"running,omitempty"`
	// Ready is the HelmRelease's Ready condition; Reason and Message say
	// why not, in Flux's words.
	Ready   bool   `json:"ready"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Records are the platform's records, oldest first.
	Records []Record `json:"records,omitempty"`
}

// Overview reads every team app's state in every environment with two
// reads of the API server (the tenants' HelmReleases and the platform's
// records), whatever the number of apps: the line's views call it on
// each change, not once per app.
func Overview(ctx context.Context, c *Clients) ([]EnvState, error) {
	byKey := map[[3]string]*EnvState{}
	get := func(team, app, env string) *EnvState {
		k := [3]string{team, app, env}
		if byKey[k] == nil {
			byKey[k] = &EnvState{Team: team, App: app, Env: env}
		}
		return byKey[k]
	}
	hrs, err := c.Dyn.Resource(flux.HelmRelease.GVR).Namespace("").List(ctx, metav1.ListOptions{LabelSelector: flux.TeamLabel + "," + flux.EnvLabel})
	if err != nil {
		return nil, fmt.Errorf("listing the teams' releases: %w", err)
	}
	for i := range hrs.Items {
		hr := &hrs.Items[i]
		labels := hr.GetLabels()
		team, env := labels[flux.TeamLabel], labels[flux.EnvLabel]
		if flux.TenantNamespace(team, env) != hr.GetNamespace() {
			continue // a label that does not match its namespace is not the platform's
		}
		st := get(team, hr.GetName(), env)
		if snap, ok := latest(hr); ok && snap.Status == "deployed" {
			st.Running = snap.ChartVersion
		}
		status, reason, msg := conditionOf(hr, "Ready")
		st.Ready, st.Reason, st.Message = status == "True", reason, msg
	}
	cms, err := c.Kube.CoreV1().ConfigMaps(EvidenceNamespace).List(ctx, metav1.ListOptions{LabelSelector: "slipway.dev/namespace"})
	if err != nil {
		return nil, fmt.Errorf("reading the release records: %w", err)
	}
	for _, cm := range cms.Items {
		ns := cm.Labels["slipway.dev/namespace"]
		if cm.Name != historyConfigMap(ns) {
			continue
		}
		for _, env := range flux.Environments {
			team := flux.TenantTeam(ns, env)
			if team == ns || flux.ValidTeam(team) != nil {
				continue
			}
			for app, data := range cm.Data {
				var recs []Record
				if err := json.Unmarshal([]byte(data), &recs); err != nil {
					return nil, fmt.Errorf("the history of %s in %s is damaged: %w", app, ns, err)
				}
				get(team, app, env).Records = recs
			}
		}
	}
	out := make([]EnvState, 0, len(byKey))
	for _, st := range byKey {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Team != b.Team {
			return a.Team < b.Team
		}
		if a.App != b.App {
			return a.App < b.App
		}
		return envIndex(a.Env) < envIndex(b.Env)
	})
	return out, nil
}

func envIndex(env string) int {
	for i, e := range flux.Environments {
		if e == env {
			return i
		}
	}
	return len(flux.Environments)
}
