package flux

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/slipway-dev/slipway/internal/golden"
)

// installedFromComponents is the Flux Slipway itself installs, read back
// as Deployments, each with a replica available.
func installedFromComponents(t *testing.T) Installed {
	t.Helper()
	return installedFrom(t, testImage().ForControllers)
}

// installedFrom renders the components with images and reads their
// Deployments back, each with a replica available.
func installedFrom(t *testing.T, images ControllerImages) Installed {
	t.Helper()
	data, err := Components([]string{testCRD(t)}, images)
	if err != nil {
		t.Fatal(err)
	}
	in := Installed{Deployments: map[string]appsv1.Deployment{}}
	for _, o := range decodeAll(t, data) {
		if o.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatal(err)
		}
		d.Status.AvailableReplicas = 1
		in.Deployments[d.Name] = d
	}
	return in
}

// upstreamLike is a controller as Flux's own install runs it: its own
// image, bare boolean flags.
func upstreamLike(name, image, version string, args ...string) appsv1.Deployment {
	d := appsv1.Deployment{}
	d.Name, d.Namespace = name, Namespace
	d.Labels = map[string]string{versionLabel: version}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "manager", Image: image, Args: args}}
	d.Status.AvailableReplicas = 1
	return d
}

// report prints the findings and counts the problems.
func report(findings []Finding) (string, int) {
	var b bytes.Buffer
	problems := 0
	for _, f := range findings {
		b.WriteString(f.String() + "\n")
		if f.Problem != "" {
			problems++
		}
	}
	return b.String(), problems
}

func TestVerifyAcceptsSlipwaysOwnFluxAndUpstreams(t *testing.T) {
	in := installedFromComponents(t)
	out, problems := report(Verify(in))
	if problems != 0 {
		t.Fatalf("Slipway's own Flux fails the check:\n%s", out)
	}
	if !strings.Contains(out, "✔ helm-controller: Flux "+Version) {
		t.Errorf("report:\n%s", out)
	}

	// Upstream's install with the lockdown (bare booleans, as Flux's
	// multi-tenancy patches may write them, and the last flag wins).
	in.Deployments["helm-controller"] = upstreamLike("helm-controller", "ghcr.io/fluxcd/helm-controller:v1.6.4", "v2.9.5",
		"--no-cross-namespace-refs=false", "--no-cross-namespace-refs", "--default-service-account=default")
	out, problems = report(Verify(in))
	if problems != 0 {
		t.Fatalf("upstream's locked-down helm-controller fails the check:\n%s", out)
	}
	if !strings.Contains(out, "✔ helm-controller: v1.6.4, Flux v2.9.5") {
		t.Errorf("report does not name the image's version:\n%s", out)
	}
}

// TestVerifyRefusesAFluxThatWouldLetTeamsOut: each way an installed Flux
// can fall short is reported, with why it matters, and the check fails.
func TestVerifyRefusesAFluxThatWouldLetTeamsOut(t *testing.T) {
	in := installedFromComponents(t)
	// helm-controller as Flux installs it without the multi-tenancy
	// patches: cross-namespace references allowed, no default account.
	in.Deployments["helm-controller"] = upstreamLike("helm-controller", "ghcr.io/fluxcd/helm-controller:v1.6.4", "v2.9.5",
		"--events-addr=http://notification-controller.flux-system.svc.cluster.local./")
	// kustomize-controller with the flags turned the wrong way.
	in.Deployments["kustomize-controller"] = upstreamLike("kustomize-controller", "ghcr.io/fluxcd/kustomize-controller:v1.9.5", "v2.9.5",
		"--no-cross-namespace-refs=true", "--no-remote-bases=false", "--default-service-account=flux-applier")
	// An old notification-controller that is not running.
	old := upstreamLike("notification-controller", "ghcr.io/fluxcd/notification-controller:v1.1.0", "v2.1.2", "--no-cross-namespace-refs=true")
	old.Status.AvailableReplicas = 0
	in.Deployments["notification-controller"] = old
	delete(in.Deployments, "source-controller")
	in.Missing = []schema.GroupVersionResource{HelmRelease.GVR, Provider.GVR}

	out, problems := report(Verify(in))
	if problems != 6 {
		t.Fatalf("check: want 6 problems, got %d\n%s", problems, out)
	}
	golden.Check(t, filepath.Join("testdata", "verify", "refused.txt"), []byte(out))
}

// TestUpstreamImagesRunByTheirEntrypoint: with Flux's own images, each
// controller runs PREFIX/NAME:VERSION with no command of Slipway's, keeps
// its lockdown flags, and the check reads the version from the image.
func TestUpstreamImagesRunByTheirEntrypoint(t *testing.T) {
	in := installedFrom(t, UpstreamImages("ghcr.io/fluxcd"))
	for _, ctl := range Controllers {
		c := in.Deployments[ctl.Name].Spec.Template.Spec.Containers[0]
		if c.Image != "ghcr.io/fluxcd/"+ctl.Name+":"+ctl.Version || len(c.Command) != 0 {
			t.Errorf("%s runs %s %v, want ghcr.io/fluxcd/%s:%s by its entrypoint", ctl.Name, c.Image, c.Command, ctl.Name, ctl.Version)
		}
	}
	out, problems := report(Verify(in))
	if problems != 0 || !strings.Contains(out, "✔ helm-controller: v1.6.4, Flux "+Version) {
		t.Fatalf("the check of Flux's own images:\n%s", out)
	}
}

// A Flux is adopted only where Slipway's fleet sync neither replaces the
// owner's own sync nor prunes the controllers it applied before.
func TestCheckAdoptable(t *testing.T) {
	const fleet = "https://10.0.0.4:3000/ops/fleet.git"
	const owners = "ssh://git@github.com/org/fleet"
	installed := installedFromComponents(t)
	for what, syncs := range map[string]Syncs{
		"a Flux installed without a sync":                      {},
		"a Flux bootstrapped from its owner's repository":      {Installed: owners},
		"a bootstrapped Flux this platform adopted before":     {Installed: owners, Adopted: fleet},
		"a Flux without a sync this platform adopted before":   {Adopted: fleet},
		"a Flux another platform installed from its own fleet": {Installed: "https://10.0.0.9:3000/ops/fleet.git"},
	} {
		in := installed
		if what == "a Flux bootstrapped from its owner's repository" || what == "a Flux another platform installed from its own fleet" {
			in = appliedByFleet(installed) // flux-system's Kustomization applies the controllers
		}
		if err := CheckAdoptable(in, syncs, fleet); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	for what, c := range map[string]struct {
		in    Installed
		syncs Syncs
		want  string
	}{
		"no Flux":                            {Installed{Deployments: map[string]appsv1.Deployment{}}, Syncs{}, "there is no Flux in flux-system to adopt"},
		"installed by this platform's fleet": {appliedByFleet(installed), Syncs{Installed: fleet}, "the one this platform installed from its fleet"},
		"adopted by an earlier Slipway under flux bootstrap's name": {installed, Syncs{Installed: fleet},
			"is synced already as GitRepository and Kustomization flux-system/flux-system"},
		"adopted by another platform": {installed, Syncs{Installed: owners, Adopted: "https://10.0.0.9:3000/ops/fleet.git"},
			"GitRepository flux-system/slipway reads another fleet, https://10.0.0.9:3000/ops/fleet.git"},
	} {
		err := CheckAdoptable(c.in, c.syncs, fleet)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", what, err, c.want)
		}
	}
}

// appliedByFleet is in with each controller labelled as applied by the
// Kustomization flux-system/flux-system.
func appliedByFleet(in Installed) Installed {
	out := Installed{Deployments: map[string]appsv1.Deployment{}}
	for name, d := range in.Deployments {
		d = *d.DeepCopy()
		d.Labels[appliedByName], d.Labels[appliedByNamespace] = "flux-system", Namespace
		out.Deployments[name] = d
	}
	return out
}
