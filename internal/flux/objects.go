package flux

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Kind is a Flux object kind Slipway shows and reconciles.
type Kind struct {
	Kind string
	// Names are what a user may type for it (`slipway get hr`).
	Names []string
	GVR   schema.GroupVersionResource
	// Source kinds produce artifacts other objects consume.
	Source bool
}

var (
	source = schema.GroupVersion{Group: "source.toolkit.fluxcd.io", Version: "v1"}

	GitRepository  = Kind{"GitRepository", []string{"gitrepository", "gitrepositories", "gitrepo"}, source.WithResource("gitrepositories"), true}
	OCIRepository  = Kind{"OCIRepository", []string{"ocirepository", "ocirepositories", "ocirepo"}, source.WithResource("ocirepositories"), true}
	HelmRepository = Kind{"HelmRepository", []string{"helmrepository", "helmrepositories", "helmrepo"}, source.WithResource("helmrepositories"), true}
	HelmChart      = Kind{"HelmChart", []string{"helmchart", "helmcharts", "chart"}, source.WithResource("helmcharts"), true}
	Kustomization  = Kind{"Kustomization", []string{"kustomization", "kustomizations", "ks"},
		schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}, false}
	HelmRelease = Kind{"HelmRelease", []string{"helmrelease", "helmreleases", "hr"},
		schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}, false}

	// Kinds are in the order `slipway get all` shows them.
	Kinds = []Kind{GitRepository, OCIRepository, HelmRepository, HelmChart, Kustomization, HelmRelease}

	Receiver = Kind{"Receiver", []string{"receiver", "receivers", "rcv"},
		schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1", Resource: "receivers"}, false}
	Provider = Kind{"Provider", []string{"provider", "providers", "alert-provider", "alert-providers"},
		schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Resource: "providers"}, false}
	Alert = Kind{"Alert", []string{"alert", "alerts"},
		schema.GroupVersionResource{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Resource: "alerts"}, false}

	// NotificationKinds are notification-controller's: `slipway get`
	// shows them when named, as `flux get alerts` does, not in "all".
	NotificationKinds = []Kind{Receiver, Provider, Alert}
)

// KindByName finds a kind by any of its names, case-insensitively.
func KindByName(name string) (Kind, bool) {
	for _, k := range append(Kinds[:len(Kinds):len(Kinds)], NotificationKinds...) {
		for _, n := range append([]string{strings.ToLower(k.Kind)}, k.Names...) {
			if strings.EqualFold(n, name) {
				return k, true
			}
		}
	}
	return Kind{}, false
}

// Object is what `slipway get` shows of one Flux object.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Ready is the Ready condition's status: True, False or Unknown.
	Ready     string `json:"ready"`
	Suspended bool   `json:"suspended"`
	// Revision is the artifact a source produced, the revision a
	// Kustomization applied, or the chart version a HelmRelease attempted.
	Revision string `json:"revision"`
	Message  string `json:"message"`
	// Current: the controller has seen the latest spec.
	Current bool `json:"current"`
	// LastHandledReconcileAt echoes the last reconcile request handled.
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// Summarize reads an object's status the way `flux get` does.
func Summarize(kind Kind, u *unstructured.Unstructured) Object {
	o := Object{Kind: kind.Kind, Namespace: u.GetNamespace(), Name: u.GetName(), Ready: "Unknown", Message: "waiting to be reconciled"}
	o.Suspended, _, _ = unstructured.NestedBool(u.Object, "spec", "suspend")
	observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	o.Current = observed == u.GetGeneration()
	o.LastHandledReconcileAt, _, _ = unstructured.NestedString(u.Object, "status", "lastHandledReconcileAt")
	if c, ok := condition(u, "Ready"); ok {
		o.Ready, _ = c["status"].(string)
		o.Message, _ = c["message"].(string)
	}
	switch {
	case kind.Source:
		o.Revision, _, _ = unstructured.NestedString(u.Object, "status", "artifact", "revision")
	case kind.Kind == Kustomization.Kind:
		o.Revision, _, _ = unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
	case kind.Kind == HelmRelease.Kind:
		o.Revision, _, _ = unstructured.NestedString(u.Object, "status", "lastAttemptedRevision")
	}
	return o
}

func condition(u *unstructured.Unstructured, typ string) (map[string]any, bool) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ {
			return m, true
		}
	}
	return nil, false
}

// List returns the objects of the given kinds in a namespace ("" for
// all), sorted by kind order, namespace and name. A kind whose CRD is
// missing (Flux not installed) is an error that says so.
func List(ctx context.Context, client dynamic.Interface, kinds []Kind, namespace string) ([]Object, error) {
	var out []Object
	for _, k := range kinds {
		list, err := client.Resource(k.GVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("the cluster does not know %s objects: is Flux installed? (`slipway up` installs it)", k.Kind)
			}
			return nil, fmt.Errorf("listing %s: %w", k.Kind, err)
		}
		objs := make([]Object, 0, len(list.Items))
		for i := range list.Items {
			objs = append(objs, Summarize(k, &list.Items[i]))
		}
		sort.Slice(objs, func(i, j int) bool {
			if objs[i].Namespace != objs[j].Namespace {
				return objs[i].Namespace < objs[j].Namespace
			}
			return objs[i].Name < objs[j].Name
		})
		out = append(out, objs...)
	}
	return out, nil
}

// Get returns one object's summary.
func Get(ctx context.Context, client dynamic.Interface, kind Kind, namespace, name string) (Object, *unstructured.Unstructured, error) {
	u, err := client.Resource(kind.GVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Object{}, nil, err
	}
	return Summarize(kind, u), u, nil
}

// RequestedAtAnnotation asks a Flux controller to reconcile an object now
// rather than at its next interval.
const RequestedAtAnnotation = "reconcile.fluxcd.io/requestedAt"

// RequestReconcile stamps the annotation and returns the stamp, which the
// controller echoes in status.lastHandledReconcileAt once it has acted.
func RequestReconcile(ctx context.Context, client dynamic.Interface, kind Kind, namespace, name string) (string, error) {
	stamp := time.Now().UTC().Format(time.RFC3339Nano)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, RequestedAtAnnotation, stamp)
	if _, err := client.Resource(kind.GVR).Namespace(namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "slipway"}); err != nil {
		return "", fmt.Errorf("asking Flux to reconcile %s %s/%s: %w", kind.Kind, namespace, name, err)
	}
	return stamp, nil
}

// SetSuspended suspends or resumes an object, as `flux suspend` and
// `flux resume` do. Resuming changes the spec, so the controller
// reconciles the object at once.
func SetSuspended(ctx context.Context, client dynamic.Interface, kind Kind, namespace, name string, suspend bool) error {
	patch := fmt.Sprintf(`{"spec":{"suspend":%t}}`, suspend)
	if _, err := client.Resource(kind.GVR).Namespace(namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "slipway"}); err != nil {
		return fmt.Errorf("setting suspend=%t on %s %s/%s: %w", suspend, kind.Kind, namespace, name, err)
	}
	return nil
}

// WaitHandled waits until the controller has handled the request stamped
// and the object is Ready or has failed; it returns the summary. Failure
// to become Ready is an error carrying Flux's message.
func WaitHandled(ctx context.Context, client dynamic.Interface, kind Kind, namespace, name, stamp string) (Object, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last Object
	for {
		o, u, err := Get(ctx, client, kind, namespace, name)
		if err == nil {
			last = o
			if handledSince(o, u, stamp) && o.Current && o.Ready != "Unknown" {
				if o.Ready != "True" {
					return o, fmt.Errorf("%s %s/%s is not ready: %s", kind.Kind, namespace, name, o.Message)
				}
				return o, nil
			}
		}
		select {
		case <-ctx.Done():
			if last.Name == "" && err != nil {
				return last, err
			}
			return last, fmt.Errorf("%s %s/%s was not reconciled in time (last: ready=%s, %s)", kind.Kind, namespace, name, last.Ready, last.Message)
		case <-tick.C:
		}
	}
}

// handledSince says the controller has handled the request stamped, or
// a later one: another writer (a Receiver, on a chart push) may replace
// the annotation after us, and the controller then echoes its value, not
// ours; once it echoes the value that replaced ours, it has reconciled
// since our request.
func handledSince(o Object, u *unstructured.Unstructured, stamp string) bool {
	if o.LastHandledReconcileAt == stamp {
		return true
	}
	now := u.GetAnnotations()[RequestedAtAnnotation]
	return now != stamp && now != "" && o.LastHandledReconcileAt == now
}

// SourceOf returns the source object a Kustomization or HelmRelease reads
// (for a HelmRelease from a HelmRepository, the HelmChart made for it).
func SourceOf(kind Kind, u *unstructured.Unstructured) (Kind, string, string, bool) {
	ns := u.GetNamespace()
	switch kind.Kind {
	case Kustomization.Kind:
		k, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "kind")
		n, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "name")
		if refNS, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "namespace"); refNS != "" {
			ns = refNS
		}
		sk, ok := KindByName(k)
		return sk, ns, n, ok && n != ""
	case HelmRelease.Kind:
		if ref, _, _ := unstructured.NestedString(u.Object, "status", "helmChart"); ref != "" {
			cns, cname, ok := strings.Cut(ref, "/")
			return HelmChart, cns, cname, ok
		}
		k, _, _ := unstructured.NestedString(u.Object, "spec", "chartRef", "kind")
		n, _, _ := unstructured.NestedString(u.Object, "spec", "chartRef", "name")
		sk, ok := KindByName(k)
		return sk, ns, n, ok && n != ""
	}
	return Kind{}, "", "", false
}

// Reconcile asks Flux to reconcile an object now and waits until it has,
// telling progress what it does.
func Reconcile(ctx context.Context, client dynamic.Interface, kind Kind, namespace, name string, progress io.Writer) (Object, error) {
	start := time.Now()
	fmt.Fprintf(progress, "asking Flux to reconcile %s %s/%s\n", kind.Kind, namespace, name)
	stamp, err := RequestReconcile(ctx, client, kind, namespace, name)
	if err != nil {
		return Object{}, err
	}
	o, err := WaitHandled(ctx, client, kind, namespace, name, stamp)
	if err != nil {
		return o, err
	}
	fmt.Fprintf(progress, "%s %s/%s reconciled in %s: %s\n", kind.Kind, namespace, name, time.Since(start).Round(10*time.Millisecond), o.Message)
	return o, nil
}

// ApplyFleet asks Flux to fetch the fleet repository (through the sync
// called sync) and apply every tenant overlay, and waits until it has.
func ApplyFleet(ctx context.Context, client dynamic.Interface, sync string, progress io.Writer) error {
	if _, err := Reconcile(ctx, client, GitRepository, Namespace, sync, progress); err != nil {
		return err
	}
	for _, env := range Overlays {
		if _, err := Reconcile(ctx, client, Kustomization, Namespace, "tenants-"+env, progress); err != nil {
			return err
		}
	}
	return nil
}
