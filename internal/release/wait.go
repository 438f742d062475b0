package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/slipway-dev/slipway/internal/flux"
)

// Deployed is a version found running.
type Deployed struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	Version   string `json:"version"`
	Image     string `json:"image"`
	Revision  int64  `json:"revision"`
}

// FailedError says why a version will not become ready.
type FailedError struct {
	Namespace, App, Version string
	Reason                  string
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%s %s in %s will not become ready: %s", e.App, e.Version, e.Namespace, e.Reason)
}

// nudgeEvery asks Flux again when nothing has moved for a while.
const nudgeEvery = 10 * time.Second

// ConfirmReady looks once and records the version as ready when it is:
// the platform's own check, whoever waited before asking.
func ConfirmReady(ctx context.Context, c *Clients, ns, app, version, by string) (*Deployed, error) {
	want, err := semver.NewVersion(version)
	if err != nil {
		return nil, fmt.Errorf("version %q is not a semantic version", version)
	}
	d, state, err := check(ctx, c, ns, app, version, want)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("%s %s is not ready in %s: %s", app, version, ns, state)
	}
	return d, recordReady(ctx, c, d, by)
}

func recordReady(ctx context.Context, c *Clients, d *Deployed, by string) error {
	now := time.Now().UTC()
	return update(ctx, c, d.Namespace, d.App, d.Version, func(r *Record) {
		r.Image, r.ReadyAt, r.ReadyBy = d.Image, now, by
	})
}

// WaitReady blocks until that exact chart version of the app is deployed
// and its pods are ready, asking Flux to look at once rather than at its
// next interval. It fails fast with the reason Flux, Helm or the pods
// give. It records nothing.
func WaitReady(ctx context.Context, c *Clients, ns, app, version string, progress io.Writer) (*Deployed, error) {
	if progress == nil {
		progress = io.Discard
	}
	want, err := semver.NewVersion(version)
	if err != nil {
		return nil, fmt.Errorf("version %q is not a semantic version", version)
	}
	var lastNudge time.Time
	lastSaid := ""
	say := func(s string) {
		if s != lastSaid {
			fmt.Fprintf(progress, "%s %s in %s: %s\n", app, version, ns, s)
			lastSaid = s
		}
	}
	for {
		if time.Since(lastNudge) > nudgeEvery {
			nudge(ctx, c, ns, app)
			lastNudge = time.Now()
		}
		d, state, err := check(ctx, c, ns, app, version, want)
		if err != nil {
			var fe *FailedError
			if errors.As(err, &fe) {
				return nil, err
			}
			state = err.Error()
		}
		if d != nil {
			return d, nil
		}
		say(state)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s %s is not ready in %s in time; last seen: %s", app, version, ns, lastSaid)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// nudge asks source- and helm-controller to look now.
func nudge(ctx context.Context, c *Clients, ns, app string) {
	_, hr, err := flux.Get(ctx, c.Dyn, flux.HelmRelease, ns, app)
	if err != nil {
		return
	}
	if k, sns, sname, ok := flux.SourceOf(flux.HelmRelease, hr); ok {
		_, _ = flux.RequestReconcile(ctx, c.Dyn, k, sns, sname)
	}
	_, _ = flux.RequestReconcile(ctx, c.Dyn, flux.HelmRelease, ns, app)
}

// check looks once. It returns the deployment when done, else what is
// happening; a FailedError when the version cannot become ready.
func check(ctx context.Context, c *Clients, ns, app, version string, want *semver.Version) (*Deployed, string, error) {
	o, hr, err := flux.Get(ctx, c.Dyn, flux.HelmRelease, ns, app)
	if err != nil {
		return nil, "", fmt.Errorf("reading HelmRelease %s/%s: %w", ns, app, err)
	}
	fail := func(reason string) error {
		return &FailedError{Namespace: ns, App: app, Version: version, Reason: reason}
	}
	if o.Suspended {
		return nil, "", fail("the HelmRelease is suspended")
	}
	// helm-controller refuses this without a word in the status (only
	// its log says so), so say it here.
	if refNS, _, _ := unstructured.NestedString(hr.Object, "spec", "chart", "spec", "sourceRef", "namespace"); refNS != "" && refNS != ns {
		return nil, "", fail(fmt.Sprintf("it reads its chart source from namespace %s, and Flux's lockdown (--no-cross-namespace-refs) refuses sources in other namespaces: use a source in %s", refNS, ns))
	}
	// A newer version took the place of this one.
	if o.Revision != "" && o.Revision != version {
		if got, err := semver.NewVersion(o.Revision); err == nil && got.GreaterThan(want) {
			return nil, "", fail(fmt.Sprintf("Flux has moved on to %s, newer than %s", o.Revision, version))
		}
	}
	snap, _ := latest(hr)
	if o.Revision == version && o.Ready == "False" && o.Current {
		if _, reason, msg := conditionOf(hr, "Ready"); isFailure(reason) {
			return nil, "", fail(reason + ": " + msg + podTrouble(ctx, c, ns, app))
		}
	}
	if trouble := podTrouble(ctx, c, ns, app); trouble != "" && o.Revision == version {
		return nil, "", fail("its pods cannot run:" + trouble)
	}
	if snap.ChartVersion != version || snap.Status != "deployed" || o.Ready != "True" || !o.Current {
		state := fmt.Sprintf("Flux has %s (ready=%s: %s)", orNone(o.Revision), o.Ready, o.Message)
		if snap.ChartVersion != "" {
			state = fmt.Sprintf("running %s (%s); Flux: ready=%s, %s", snap.ChartVersion, snap.Status, o.Ready, o.Message)
		}
		return nil, state, nil
	}
	image, err := readyImage(ctx, c, ns, app)
	if err != nil {
		return nil, "deployed; " + err.Error(), nil
	}
	return &Deployed{Namespace: ns, App: app, Version: version, Image: image, Revision: snap.Revision}, "", nil
}

func orNone(s string) string {
	if s == "" {
		return "no version yet"
	}
	return s
}

func conditionOf(hr interface{ UnstructuredContent() map[string]any }, typ string) (string, string, string) {
	conds, _, _ := unstructured.NestedSlice(hr.UnstructuredContent(), "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return s, r, msg
		}
	}
	return "", "", ""
}

// isFailure: Ready=False reasons after which this version will not come.
func isFailure(reason string) bool {
	switch reason {
	case "InstallFailed", "UpgradeFailed", "RollbackSucceeded", "RollbackFailed", "UninstallSucceeded", "TestFailed", "RetriesExceeded":
		return true
	}
	return false
}

// readyImage returns the image of the release's Deployment once every
// replica of its current template is available.
func readyImage(ctx context.Context, c *Clients, ns, app string) (string, error) {
	deps, err := c.Kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + app})
	if err != nil {
		return "", err
	}
	if len(deps.Items) == 0 {
		return "", errors.New("the release has no Deployment yet")
	}
	image := ""
	for _, d := range deps.Items {
		if !rolledOut(&d) {
			return "", fmt.Errorf("Deployment %s is still rolling out", d.Name)
		}
		if image == "" && len(d.Spec.Template.Spec.Containers) > 0 {
			image = d.Spec.Template.Spec.Containers[0].Image
		}
	}
	return image, nil
}

func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas >= want && s.Replicas == want
}

// podTrouble names the release's pods that cannot run: an image that
// cannot be pulled, a crash loop, a bad configuration.
func podTrouble(ctx context.Context, c *Clients, ns, app string) string {
	pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + app})
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range pods.Items {
		if _, hook := p.Annotations["helm.sh/hook"]; hook {
			continue
		}
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && badWait(w) {
				fmt.Fprintf(&b, "\n  pod %s: %s: %s", p.Name, w.Reason, w.Message)
			}
		}
	}
	return b.String()
}

func badWait(w *corev1.ContainerStateWaiting) bool {
	switch w.Reason {
	case "ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError", "InvalidImageName", "CreateContainerError":
		return true
	}
	return false
}
