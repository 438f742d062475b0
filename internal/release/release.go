// Package release follows an app's release through its environments, on
// the cluster Flux deploys to: wait until an exact chart version is
// running (or say why it is not), test it, and promote a tested version
// by committing it to the next environment's overlay in the fleet
// repository. What happened to each version — ready, tested, promoted,
// by whom and when — is kept in the cluster, in the platform's namespace
// slipway-system where no team may write, so any machine with access to
// the cluster sees the same history and no team can forge it.
package release

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/flux"
)

// Clients reach one cluster.
type Clients struct {
	Kubeconfig string
	Config     *rest.Config
	Kube       kubernetes.Interface
	Dyn        dynamic.Interface
}

// Connect makes clients from a kubeconfig.
func Connect(kubeconfig string) (*Clients, error) {
	cfg, err := cluster.RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	c, err := ConnectConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.Kubeconfig = kubeconfig
	return c, nil
}

// ConnectConfig makes clients from a client configuration (no
// kubeconfig file: Helm's own client cannot be made from it).
func ConnectConfig(cfg *rest.Config) (*Clients, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{Config: cfg, Kube: kube, Dyn: dyn}, nil
}

// Locate finds the namespace of an app's release in an environment: the
// team's namespace when the team is given, else the one namespace of
// that environment with a release of that name.
func Locate(ctx context.Context, c *Clients, team, app, env string) (string, error) {
	if team != "" {
		return flux.TenantNamespace(team, env), nil
	}
	list, err := c.Dyn.Resource(flux.HelmRelease.GVR).Namespace("").List(ctx, metav1.ListOptions{LabelSelector: "slipway.dev/env=" + env})
	if err != nil {
		return "", fmt.Errorf("looking for %s in %s: %w", app, env, err)
	}
	var found []string
	for _, hr := range list.Items {
		if hr.GetName() == app {
			found = append(found, hr.GetNamespace())
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no release %s in %s (ops creates it: slipway release create TEAM/%s)", app, env, app)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s is released in %s by more than one team (%s): say which with --team", app, env, strings.Join(found, ", "))
}

// Snapshot is the newest entry of a HelmRelease's history.
type Snapshot struct {
	ChartVersion string
	Status       string // deployed, failed, superseded, ...
	Revision     int64
}

func latest(hr *unstructured.Unstructured) (Snapshot, bool) {
	hist := helmHistory(hr)
	if len(hist) == 0 {
		return Snapshot{}, false
	}
	return Snapshot{ChartVersion: hist[0].ChartVersion, Status: hist[0].Status, Revision: hist[0].Revision}, true
}

// Record is what happened to one version in one environment.
type Record struct {
	Version string `json:"version"`
	// Image is the image the release ran, with its digest.
	Image   string    `json:"image,omitempty"`
	ReadyAt time.Time `json:"readyAt,omitzero"`
	ReadyBy string    `json:"readyBy,omitempty"`
	Test    *Test     `json:"test,omitempty"`
	// Promotion: who put this version here, from where, and when.
	PromotedAt   time.Time `json:"promotedAt,omitzero"`
	PromotedBy   string    `json:"promotedBy,omitempty"`
	PromotedFrom string    `json:"promotedFrom,omitempty"`
	Commit       string    `json:"commit,omitempty"`
}

// Test is the outcome of `slipway test` for a version.
type Test struct {
	Passed bool      `json:"passed"`
	At     time.Time `json:"at"`
	By     string    `json:"by,omitempty"`
	Checks []Check   `json:"checks"`
}

// Check is one test: a helm test hook or an HTTP smoke check.
type Check struct {
	Name    string `json:"name"`
	Passed  bool   `json:"passed"`
	Message string `json:"message,omitempty"`
}

// The records of every app of a tenant namespace are kept in a ConfigMap
// of the platform's own namespace, never in the tenant's: a team's account
// is admin in its namespaces and could otherwise write its own "tested".
const (
	// EvidenceNamespace holds the records; only the platform writes there.
	EvidenceNamespace = "slipway-system"
)

// historyConfigMap names the ConfigMap of one tenant namespace's records.
func historyConfigMap(ns string) string { return "history-" + ns }

// maxRecords bounds an app's history in its ConfigMap.
const maxRecords = 50

// Records returns an app's records in a namespace, oldest first.
func Records(ctx context.Context, c *Clients, ns, app string) ([]Record, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps(EvidenceNamespace).Get(ctx, historyConfigMap(ns), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []Record
	if data := cm.Data[app]; data != "" {
		if err := json.Unmarshal([]byte(data), &recs); err != nil {
			return nil, fmt.Errorf("the history of %s in %s is damaged: %w", app, ns, err)
		}
	}
	return recs, nil
}

// update changes the record of one version (adding it if new), retrying
// when someone else wrote the ConfigMap in between.
func update(ctx context.Context, c *Clients, ns, app, version string, change func(*Record)) error {
	for attempt := 0; attempt < 5; attempt++ {
		cms := c.Kube.CoreV1().ConfigMaps(EvidenceNamespace)
		cm, err := cms.Get(ctx, historyConfigMap(ns), metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		if err != nil && !create {
			return err
		}
		if create {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: historyConfigMap(ns), Namespace: EvidenceNamespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "slipway", "slipway.dev/namespace": ns}}}
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		var recs []Record
		if data := cm.Data[app]; data != "" {
			_ = json.Unmarshal([]byte(data), &recs)
		}
		i := -1
		for j := range recs {
			if recs[j].Version == version {
				i = j
			}
		}
		if i < 0 {
			recs = append(recs, Record{Version: version})
			i = len(recs) - 1
		}
		change(&recs[i])
		if len(recs) > maxRecords {
			recs = recs[len(recs)-maxRecords:]
		}
		data, _ := json.Marshal(recs)
		cm.Data[app] = string(data)
		if create {
			if err = ensureEvidenceNamespace(ctx, c); err != nil {
				return err
			}
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		} else {
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("recording the history of %s in %s: %w", app, ns, err)
		}
	}
	return fmt.Errorf("recording the history of %s in %s: too many concurrent writers", app, ns)
}

// Entry is a record with its environment, for `slipway history`.
type Entry struct {
	Env string `json:"env"`
	Record
}

// History gathers an app's records across environments, newest first.
func History(ctx context.Context, c *Clients, team, app string) ([]Entry, error) {
	var out []Entry
	for _, env := range flux.Environments {
		recs, err := Records(ctx, c, flux.TenantNamespace(team, env), app)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out = append(out, Entry{Env: env, Record: r})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return when(out[i].Record).After(when(out[j].Record)) })
	return out, nil
}

func when(r Record) time.Time {
	t := r.ReadyAt
	if r.PromotedAt.After(t) {
		t = r.PromotedAt
	}
	if r.Test != nil && r.Test.At.After(t) {
		t = r.Test.At
	}
	return t
}

// ensureEvidenceNamespace makes the platform's namespace for the records
// once. No tenant account has rights there.
func ensureEvidenceNamespace(ctx context.Context, c *Clients) error {
	_, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: EvidenceNamespace,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "slipway"}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("making the namespace %s for the release records: %w", EvidenceNamespace, err)
	}
	return nil
}
