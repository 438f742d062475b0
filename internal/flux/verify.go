package flux

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/semver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// Checking a Flux that is already in a cluster, before Slipway writes
// anything for it: every controller there, new enough to serve the API
// versions Slipway writes and reads, and run with the multi-tenancy
// lockdown that keeps each team in its namespace. Without the lockdown a
// team's HelmRelease could name another team's chart source, or act with
// the controller's own cluster-admin rights; so a Flux without it is
// refused rather than adopted.

// MinVersion is the oldest Flux distribution that serves every API version
// Slipway uses (OCIRepository v1 came in v2.6.0).
const MinVersion = "v2.6.0"

// lockdown are the flags each controller must run with, and why.
var lockdown = map[string][]lockdownFlag{
	"kustomize-controller": {
		{"--no-cross-namespace-refs", "true", "a team's Kustomization could use another namespace's source"},
		{"--no-remote-bases", "true", "a team's kustomization.yaml could pull bases from anywhere on the network"},
		{"--default-service-account", "default", "a team's Kustomization without a service account would act with the controller's cluster-admin rights"},
	},
	"helm-controller": {
		{"--no-cross-namespace-refs", "true", "a team's HelmRelease could use another namespace's chart source"},
		{"--default-service-account", "default", "a team's HelmRelease without a service account would act with the controller's cluster-admin rights"},
	},
	"notification-controller": {
		{"--no-cross-namespace-refs", "true", "a team's Alert could watch another namespace's objects"},
	},
}

type lockdownFlag struct{ name, want, why string }

// Installed is what Slipway reads of a Flux already in a cluster.
type Installed struct {
	// Deployments are flux-system's, by name; a controller missing here
	// is not installed.
	Deployments map[string]appsv1.Deployment
	// Missing are the API versions Slipway uses that the cluster does
	// not serve.
	Missing []schema.GroupVersionResource
}

// ReadInstalled reads the controllers' Deployments and which of the API
// versions Slipway uses the cluster serves.
func ReadInstalled(ctx context.Context, client kubernetes.Interface) (Installed, error) {
	in := Installed{Deployments: map[string]appsv1.Deployment{}}
	list, err := client.AppsV1().Deployments(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, fmt.Errorf("reading the Deployments in %s: %w", Namespace, err)
	}
	for _, d := range list.Items {
		in.Deployments[d.Name] = d
	}
	served := map[schema.GroupVersion]map[string]bool{}
	for _, k := range append(Kinds[:len(Kinds):len(Kinds)], NotificationKinds...) {
		gv := k.GVR.GroupVersion()
		if _, ok := served[gv]; !ok {
			served[gv] = map[string]bool{}
			resources, err := client.Discovery().ServerResourcesForGroupVersion(gv.String())
			if err != nil && !apierrors.IsNotFound(err) {
				return in, fmt.Errorf("asking the API server for %s: %w", gv, err)
			}
			if resources != nil {
				for _, r := range resources.APIResources {
					served[gv][r.Name] = true
				}
			}
		}
		if !served[gv][k.GVR.Resource] {
			in.Missing = append(in.Missing, k.GVR)
		}
	}
	return in, nil
}

// Finding is one line of the check: a controller or API and what was
// found; Problem is empty when it is as Slipway needs it.
type Finding struct {
	Subject string
	Found   string
	Problem string
}

// Verify compares an installed Flux with what Slipway needs.
func Verify(in Installed) []Finding {
	var out []Finding
	for _, c := range Controllers {
		d, ok := in.Deployments[c.Name]
		if !ok {
			out = append(out, Finding{Subject: c.Name, Problem: "not installed in " + Namespace + ": Slipway needs all four of Flux's controllers"})
			continue
		}
		f := Finding{Subject: c.Name, Found: describeVersion(d)}
		var problems []string
		if v := d.Labels[versionLabel]; semver.IsValid(v) && semver.Compare(v, MinVersion) < 0 {
			problems = append(problems, fmt.Sprintf("Flux %s is too old: Slipway needs %s or newer", v, MinVersion))
		}
		args := managerArgs(d)
		for _, l := range lockdown[c.Name] {
			got, set := flagValue(args, l.name)
			switch {
			case !set:
				problems = append(problems, fmt.Sprintf("runs without %s=%s: %s", l.name, l.want, l.why))
			case got != l.want:
				problems = append(problems, fmt.Sprintf("runs with %s=%s, not %s: %s", l.name, got, l.want, l.why))
			}
		}
		if d.Status.AvailableReplicas < 1 {
			problems = append(problems, "no replica is available")
		}
		f.Problem = strings.Join(problems, "; ")
		out = append(out, f)
	}
	for _, gvr := range in.Missing {
		out = append(out, Finding{Subject: gvr.Resource + "." + gvr.Group + "/" + gvr.Version,
			Problem: fmt.Sprintf("not served: Slipway writes or reads it (Flux %s or newer serves it)", MinVersion)})
	}
	return out
}

// describeVersion names a controller's version as its Deployment tells it:
// the image's tag when the image is the controller's own (upstream's
// ghcr.io/fluxcd/NAME:vX.Y.Z), and the Flux distribution's label.
func describeVersion(d appsv1.Deployment) string {
	var parts []string
	if c, ok := manager(d); ok {
		ref := c.Image
		if at := strings.Index(ref, "@"); at >= 0 {
			ref = ref[:at]
		}
		if colon := strings.LastIndex(ref, ":"); colon > strings.LastIndex(ref, "/") {
			repo, tag := ref[:colon], ref[colon+1:]
			if strings.HasSuffix(repo, "/"+d.Name) {
				parts = append(parts, tag)
			}
		}
	}
	if v := d.Labels[versionLabel]; v != "" {
		parts = append(parts, "Flux "+v)
	} else {
		parts = append(parts, "Flux version not labelled")
	}
	return strings.Join(parts, ", ")
}

// manager is the controller's container: "manager" in Flux's install and
// Slipway's, else the only one.
func manager(d appsv1.Deployment) (corev1.Container, bool) {
	cs := d.Spec.Template.Spec.Containers
	for _, c := range cs {
		if c.Name == "manager" || len(cs) == 1 {
			return c, true
		}
	}
	return corev1.Container{}, false
}

// managerArgs are the manager's command line, command and arguments.
func managerArgs(d appsv1.Deployment) []string {
	c, _ := manager(d)
	return append(append([]string{}, c.Command...), c.Args...)
}

// flagValue reads a flag as the controllers' flag parser does: the last
// of "--name=value" or a bare "--name" (true) wins.
func flagValue(args []string, name string) (value string, set bool) {
	for _, a := range args {
		switch {
		case a == name:
			value, set = "true", true
		case strings.HasPrefix(a, name+"="):
			value, set = strings.TrimPrefix(a, name+"="), true
		}
	}
	return value, set
}

// String is the finding as one line of a report, as `flux check` prints.
func (f Finding) String() string {
	switch {
	case f.Problem == "":
		return fmt.Sprintf("✔ %s: %s", f.Subject, f.Found)
	case f.Found != "":
		return fmt.Sprintf("✗ %s (%s): %s", f.Subject, f.Found, f.Problem)
	}
	return fmt.Sprintf("✗ %s: %s", f.Subject, f.Problem)
}

// Adopting a Flux that is there (cluster.existing.flux: adopt): Slipway
// then installs nothing of Flux's own and only adds its fleet's sync
// beside whatever the Flux's owner keeps in flux-system, under a name of
// its own (AdoptedSyncName), so that a sync of the owner's under
// flux bootstrap's name (SyncName) is left alone.

// Syncs are the URLs the GitRepositories in flux-system under the two
// names of the fleet's sync read; empty where there is none.
type Syncs struct {
	// Installed is GitRepository flux-system's (SyncName): the sync of
	// the Flux the platform installs, or of a bootstrapped one.
	Installed string
	// Adopted is GitRepository slipway's (AdoptedSyncName).
	Adopted string
}

// appliedByLabels are the labels kustomize-controller puts on what a
// Kustomization applied: its name and namespace.
const (
	appliedByName      = "kustomize.toolkit.fluxcd.io/name"
	appliedByNamespace = "kustomize.toolkit.fluxcd.io/namespace"
)

// CheckAdoptable says why the Flux in flux-system cannot be adopted with
// the fleet at fleetURL, or nil when it can. It must be there (Verify
// says whether it is one Slipway can use). The fleet must not be synced
// under flux bootstrap's name already: either this platform installed
// that Flux from the fleet (adopting it would have the fleet prune it),
// or an earlier adoption named its sync so; two syncs of one fleet would
// fight over the same objects. And the adopted sync's name must not read
// another fleet: that is another platform's adoption of the same Flux.
func CheckAdoptable(in Installed, syncs Syncs, fleetURL string) error {
	if len(in.Deployments) == 0 {
		return fmt.Errorf("there is no Flux in %s to adopt: install one (flux install, flux bootstrap, its Helm chart, or AKS's Flux extension), or let Slipway install its own (cluster.existing.flux: install)", Namespace)
	}
	if syncs.Installed == fleetURL {
		for _, c := range Controllers {
			d, ok := in.Deployments[c.Name]
			if ok && d.Labels[appliedByName] == SyncName && d.Labels[appliedByNamespace] == Namespace {
				return fmt.Errorf("the Flux in %s is the one this platform installed from its fleet (%s is applied by Kustomization %s/%s): keep cluster.existing.flux: install; adopting it would have the fleet prune it", Namespace, c.Name, Namespace, SyncName)
			}
		}
		return fmt.Errorf("the fleet %s is synced already as GitRepository and Kustomization %s/%s (an adoption by an earlier Slipway, which named its sync so): a second sync, %s, would fight it over the tenants; remove the first without pruning what it applied (set spec.prune false on Kustomization %s, then delete it and GitRepository %s) and start again", fleetURL, Namespace, SyncName, AdoptedSyncName, SyncName, SyncName)
	}
	if syncs.Adopted != "" && syncs.Adopted != fleetURL {
		return fmt.Errorf("GitRepository %s/%s reads another fleet, %s: another platform adopted this Flux, and the two would replace each other's sync; give each platform a cluster of its own", Namespace, AdoptedSyncName, syncs.Adopted)
	}
	return nil
}
