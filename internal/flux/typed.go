package flux

import (
	"bytes"
	"fmt"
	"maps"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// The objects Slipway writes to the fleet repository, built as the
// upstream API types and serialized once, by Marshal.

// Label keys Slipway puts on the objects it writes.
const (
	TeamLabel = "slipway.dev/team"
	EnvLabel  = "slipway.dev/env"
)

// Marshal writes objects as one YAML stream, each after a "---" line,
// without the fields a new object does not have (status, an empty
// creation time).
func Marshal(objs ...runtime.Object) ([]byte, error) {
	var b bytes.Buffer
	for _, o := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("converting %T: %w", o, err)
		}
		delete(u, "status")
		if spec, ok := u["spec"].(map[string]any); ok && len(spec) == 0 {
			delete(u, "spec")
		}
		if m, ok := u["metadata"].(map[string]any); ok {
			delete(m, "creationTimestamp")
		}
		data, err := yaml.Marshal(u)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.Bytes(), nil
}

// mustMarshal is Marshal for objects built here from typed values, which
// always convert.
func mustMarshal(objs ...runtime.Object) []byte {
	data, err := Marshal(objs...)
	if err != nil {
		panic(err)
	}
	return data
}

func duration(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

func durationPtr(d time.Duration) *metav1.Duration { v := duration(d); return &v }

// NamespaceObject is a team's namespace in one environment.
func NamespaceObject(team, env string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: TenantNamespace(team, env), Labels: map[string]string{
			TeamLabel: team,
			EnvLabel:  env,
			// Pods must meet the restricted Pod Security Standard: no
			// privilege, no host paths or namespaces, non-root. The team's
			// account cannot change a Namespace's labels.
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
			"pod-security.kubernetes.io/audit":   "restricted",
		}},
	}
}

// AccountObjects are the team's ServiceAccount and its rights: admin of
// its own namespace (the overlay sets which), nothing elsewhere.
// helm-controller acts as this account for the team's releases.
func AccountObjects(team string) (*corev1.ServiceAccount, *rbacv1.RoleBinding) {
	labels := map[string]string{TeamLabel: team}
	sa := &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: team, Labels: labels},
	}
	rb := &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: team + "-admin", Labels: maps.Clone(labels)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: team}},
	}
	return sa, rb
}

// CIAccount is the ServiceAccount, in TEAM-ci, that a team's pipeline
// jobs act as.
const CIAccount = "ci"

// ciRoles is what the CI account may do in each environment: deploy and
// test in staging, look at prod; nothing anywhere else.
var ciRoles = map[string]string{"staging": "edit", "prod": "view"}

// CIAccountObject is the team's CI account in its CI namespace.
func CIAccountObject(team string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: CIAccount, Namespace: TenantNamespace(team, CIOverlay), Labels: map[string]string{TeamLabel: team}},
	}
}

// CIAccessObject binds the team's CI account in one environment's
// namespace (the overlay sets which).
func CIAccessObject(team, env string) *rbacv1.RoleBinding {
	role := ciRoles[env]
	if role == "" {
		role = "view"
	}
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "ci-" + role, Labels: map[string]string{TeamLabel: team}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: CIAccount, Namespace: TenantNamespace(team, CIOverlay)}},
	}
}

// RegistrySecretName is the Secret in each tenant namespace with Flux's
// read-only registry account and the platform's CA (applied by Slipway,
// never committed).
const RegistrySecretName = "registry"

// HelmRepositoryObject is an OCI chart source. platformCA: the registry
// presents a certificate of the platform's CA, which Flux finds as ca.crt
// in the registry Secret.
func HelmRepositoryObject(name, url string, platformCA bool) *sourcev1.HelmRepository {
	repo := &sourcev1.HelmRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.HelmRepositoryKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: sourcev1.HelmRepositorySpec{
			Type:      sourcev1.HelmRepositoryTypeOCI,
			URL:       url,
			Interval:  duration(10 * time.Minute),
			SecretRef: &meta.LocalObjectReference{Name: RegistrySecretName},
		},
	}
	if platformCA {
		repo.Spec.CertSecretRef = &meta.LocalObjectReference{Name: RegistrySecretName}
	}
	return repo
}

// HelmReleaseObject is one app's release in one environment, acting as
// the team's account. A failed upgrade is rolled back at once.
func HelmReleaseObject(r Release) *helmv2.HelmRelease {
	r = r.withDefaults()
	var annotations map[string]string
	if len(r.Annotations) > 0 {
		annotations = maps.Clone(r.Annotations)
	}
	rollback := helmv2.RollbackRemediationStrategy
	yes := true
	return &helmv2.HelmRelease{
		TypeMeta: metav1.TypeMeta{APIVersion: helmv2.GroupVersion.String(), Kind: helmv2.HelmReleaseKind},
		ObjectMeta: metav1.ObjectMeta{Name: r.App, Annotations: annotations,
			Labels: map[string]string{TeamLabel: r.Team, EnvLabel: r.Env}},
		Spec: helmv2.HelmReleaseSpec{
			Interval:           duration(10 * time.Minute),
			Timeout:            durationPtr(2 * time.Minute),
			ServiceAccountName: r.Team,
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart:     r.Chart,
				Version:   r.Version,
				Interval:  durationPtr(time.Minute),
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.HelmRepositoryKind, Name: r.Source},
			}},
			// Helm v3's wait looks every 2 s; helm-controller's default
			// (kstatus) every 5 s, which left a rollout that was ready
			// in 2 s unnoticed for up to 3 s more.
			WaitStrategy: &helmv2.WaitStrategy{Name: helmv2.WaitStrategyLegacy},
			Install:      &helmv2.Install{Remediation: &helmv2.InstallRemediation{Retries: 1}},
			Upgrade: &helmv2.Upgrade{Remediation: &helmv2.UpgradeRemediation{
				RemediateLastFailure: &yes,
				Strategy:             &rollback,
			}},
		},
	}
}

// syncObjects are the GitRepository and Kustomization through which Flux
// keeps the cluster, itself included, as the fleet repository says. The
// Kustomization names kustomize-controller's own account: with the
// lockdown on, one without an account would act as flux-system's
// "default" account, which may do nothing.
// Both are called name, as is the Secret the GitRepository reads with.
func syncObjects(name, url, path string) []runtime.Object {
	repo := &sourcev1.GitRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.GitRepositoryKind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Spec: sourcev1.GitRepositorySpec{
			URL:       url,
			Interval:  duration(time.Minute),
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			SecretRef: &meta.LocalObjectReference{Name: name},
		},
	}
	return []runtime.Object{repo, KustomizationObject(name, name, path)}
}

// KustomizationObject applies a path of the fleet repository (read by
// the GitRepository source) with kustomize-controller's own account,
// pruning what the path no longer holds.
func KustomizationObject(name, source, path string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Spec: kustomizev1.KustomizationSpec{
			Interval:           duration(10 * time.Minute),
			Path:               path,
			Prune:              true,
			ServiceAccountName: "kustomize-controller",
			SourceRef:          kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: source},
		},
	}
}

// ReaderSecret holds the read-only account Flux reads git and the
// registry with. It is applied to the cluster, never committed.
func ReaderSecret(name, namespace, user, password string, ca []byte) *corev1.Secret {
	data := map[string]string{"username": user, "password": password}
	if len(ca) > 0 {
		// Flux's sources read the CA of an HTTPS server from ca.crt.
		data["ca.crt"] = string(ca)
	}
	return secret(name, namespace, data)
}

// withNamespace sets the namespace of objects a Kustomize overlay would
// place, for --dry-run output.
func withNamespace(ns string, objs ...metav1.Object) {
	for _, o := range objs {
		o.SetNamespace(ns)
	}
}
