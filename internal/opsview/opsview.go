// Package opsview is the platform as ops looks at it: the teams, what
// Flux watches and whether its controllers are healthy, what the fleet
// repository last took, the cluster's version, the databases and the
// alerts. The dashboard's Ops page and `slipway ops -o json` read it.
package opsview

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/database"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/gitcmd"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/monitoring"
	"github.com/slipway-dev/slipway/internal/release"
)

// View is what ops sees. A part that cannot be read is left out and
// named in Errors, so one broken part does not hide the others.
type View struct {
	Tenants      []string        `json:"tenants"`
	Flux         []flux.Object   `json:"flux,omitempty"`
	Controllers  []Controller    `json:"controllers,omitempty"`
	FleetCommits []Commit        `json:"fleetCommits,omitempty"`
	Kubernetes   *KubernetesView `json:"kubernetes,omitempty"`
	Databases    []DatabaseView  `json:"databases,omitempty"`
	// Alerts are Alertmanager's (nil when the platform runs without
	// monitoring): firing, silenced or inhibited.
	Alerts []monitoring.Alert `json:"alerts,omitempty"`
	Errors []string           `json:"errors,omitempty"`
}

// Controller is one of Flux's controllers.
type Controller struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	Ready bool   `json:"ready"`
}

// Commit is one commit of the fleet repository.
type Commit struct {
	ID      string    `json:"id"`
	Author  string    `json:"author"`
	At      time.Time `json:"at"`
	Subject string    `json:"subject"`
}

// KubernetesView is the cluster's version and whether a newer one is
// there to upgrade to.
type KubernetesView struct {
	Running          string `json:"running"`
	Newest           string `json:"newest"`
	UpgradeAvailable bool   `json:"upgradeAvailable"`
}

// Kubernetes is what the node runs, against the newest release this
// Slipway knows.
func Kubernetes(vs cluster.Versions) *KubernetesView {
	return &KubernetesView{Running: vs.Summary(), Newest: components.KubernetesVersion,
		UpgradeAvailable: cluster.CompareVersions(vs.Releases()[0], components.KubernetesVersion) < 0}
}

// DatabaseView is one PostgreSQL cluster of a team.
type DatabaseView struct {
	Team      string `json:"team"`
	Name      string `json:"name"`
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Image     string `json:"image"`
	Phase     string `json:"phase"`
}

// NoStatus stands for Ready on an object Flux keeps no status for.
const NoStatus = "n/a"

// maxFleetCommits is how many of the fleet's commits the view shows.
const maxFleetCommits = 10

// Sources are where the view is read from.
type Sources struct {
	// FleetDir is the fleet's bare repository on the git server.
	FleetDir string
	// FleetRemote, when set, is the fleet on a git host of its own
	// (cluster.existing.fleet), read there in place of FleetDir.
	FleetRemote *gitrepo.Remote
	// Clients reach the cluster; nil on a platform without one.
	Clients func() (*release.Clients, error)
	// Versions are the node's Kubernetes versions.
	Versions func() (cluster.Versions, error)
	// Flux and Databases say whether the platform runs them.
	Flux, Databases bool
	// AlertmanagerURL is the platform's Alertmanager; "" without
	// monitoring.
	AlertmanagerURL string
}

// Read reads the view.
func Read(ctx context.Context, src Sources) *View {
	v := &View{Tenants: []string{}}
	fail := func(what string, err error) { v.Errors = append(v.Errors, what+": "+err.Error()) }
	if commits, err := fleetCommits(ctx, src); err != nil {
		fail("the fleet repository", err)
	} else {
		v.FleetCommits = commits
	}
	if src.Clients == nil {
		return v
	}
	c, err := src.Clients()
	if err != nil {
		fail("the cluster", err)
		return v
	}
	if src.Versions != nil {
		if vs, err := src.Versions(); err != nil {
			fail("the cluster's version", err)
		} else {
			v.Kubernetes = Kubernetes(vs)
		}
	}
	nss, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: flux.TeamLabel})
	if err != nil {
		fail("the teams' namespaces", err)
	}
	if nss != nil {
		for _, ns := range nss.Items {
			if team := ns.Labels[flux.TeamLabel]; !slices.Contains(v.Tenants, team) {
				v.Tenants = append(v.Tenants, team)
			}
		}
		sort.Strings(v.Tenants)
	}
	if src.Flux {
		kinds := []flux.Kind{flux.GitRepository, flux.OCIRepository, flux.HelmRepository, flux.Kustomization}
		if objs, err := flux.List(ctx, c.Dyn, kinds, ""); err != nil {
			fail("Flux's objects", err)
		} else {
			for i := range objs {
				// An OCI HelmRepository has no status of its own (Flux
				// treats it as static): its HelmCharts say whether a
				// chart was fetched.
				if objs[i].Kind == flux.HelmRepository.Kind && (objs[i].Ready == "" || objs[i].Ready == "Unknown") {
					objs[i].Ready, objs[i].Message = NoStatus, "an OCI HelmRepository has no status; its HelmCharts do"
				}
			}
			v.Flux = objs
		}
		deps, err := c.Kube.AppsV1().Deployments("flux-system").List(ctx, metav1.ListOptions{})
		if err != nil {
			fail("Flux's controllers", err)
		} else {
			for _, d := range deps.Items {
				ctl := Controller{Name: d.Name, Ready: d.Status.ReadyReplicas > 0 && d.Status.ReadyReplicas == d.Status.Replicas}
				if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
					ctl.Image = cs[0].Image
				}
				v.Controllers = append(v.Controllers, ctl)
			}
		}
	}
	if src.Databases {
		gvr := schema.GroupVersionResource{Group: database.Group, Version: database.Version, Resource: "clusters"}
		list, err := c.Dyn.Resource(gvr).Namespace("").List(ctx, metav1.ListOptions{LabelSelector: database.TeamLabel})
		if err != nil {
			fail("the databases", err)
		} else {
			for _, obj := range list.Items {
				v.Databases = append(v.Databases, databaseView(&obj))
			}
		}
	}
	if src.AlertmanagerURL != "" {
		am := monitoring.Alertmanager{URL: src.AlertmanagerURL}
		if alerts, err := am.Alerts(ctx); err != nil {
			fail("the alerts", err)
		} else {
			v.Alerts = alerts
		}
	}
	return v
}

func databaseView(obj *unstructured.Unstructured) DatabaseView {
	image, _, _ := unstructured.NestedString(obj.Object, "spec", "imageName")
	phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
	return DatabaseView{Team: obj.GetLabels()[database.TeamLabel], Name: obj.GetLabels()[database.DatabaseLabel], Cluster: obj.GetName(),
		Namespace: obj.GetNamespace(), Image: image, Phase: phase}
}

// fleetRemoteTimeout bounds reading a fleet on a host of its own, so a
// slow host leaves the rest of the view to show.
const fleetRemoteTimeout = 15 * time.Second

// fleetCommits are the fleet repository's newest commits, read from the
// platform's git server's directory or, for a fleet on a host of its own,
// from a shallow clone of them made for each view.
func fleetCommits(ctx context.Context, src Sources) ([]Commit, error) {
	const format = "%H%x00%an%x00%aI%x00%s"
	var out string
	var err error
	switch {
	case src.FleetRemote != nil:
		ctx, cancel := context.WithTimeout(ctx, fleetRemoteTimeout)
		defer cancel()
		if out, err = src.FleetRemote.Log(ctx, maxFleetCommits, format); err != nil {
			return nil, fmt.Errorf("%s: %w", src.FleetRemote.URL, err)
		}
	case src.FleetDir != "":
		out, err = gitcmd.Run(ctx, src.FleetDir, nil, "log", "-n", fmt.Sprint(maxFleetCommits), "--format="+format)
		if err != nil {
			if strings.Contains(err.Error(), "does not have any commits") {
				return nil, nil
			}
			return nil, err
		}
	default:
		return nil, nil
	}
	var commits []Commit
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, "\x00", 4)
		if len(f) != 4 {
			continue
		}
		at, _ := time.Parse(time.RFC3339, f[2])
		commits = append(commits, Commit{ID: f[0], Author: f[1], At: at, Subject: f[3]})
	}
	return commits, nil
}
