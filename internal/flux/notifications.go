package flux

import (
	"os"
	"path/filepath"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notifyv1 "github.com/fluxcd/notification-controller/api/v1"
	notifyv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Flux's notifications, both ways, as Slipway wires them:
//
//   - out: in every tenant namespace an Alert sends the events of the
//     team's HelmReleases, HelmRepositories and HelmCharts to a Provider of
//     type generic-hmac, the platform's event endpoint for that team; in
//     flux-system the same for the fleet's Kustomizations and
//     GitRepository. The platform checks the signature with the team's
//     own key and puts the event on the line's timeline.
//   - in: in every tenant namespace a Receiver of type acr, the webhook ACR
//     would call on AKS. The platform calls it when a chart is pushed under
//     the team, and notification-controller asks source-controller to look
//     at the team's HelmCharts at once.
//
// The keys live in Secrets the platform applies (EventsSecret,
// ReceiverSecret); the fleet holds only their names.

// Names of the notification objects and their Secrets.
const (
	NotifierName       = "slipway"
	ChartReceiverName  = "chart-pushes"
	EventsSecretName   = "slipway-events"
	ReceiverSecretName = "slipway-receiver"
)

// NotificationsPath is the file of a tenant overlay that holds its
// notification objects.
func NotificationsPath(team, env string) string {
	return "tenants/" + env + "/" + team + "/notifications.yaml"
}

// TenantNotificationObjects are the Provider, Alert and Receiver of one
// team's namespace in one environment; eventsURL is the platform's event
// endpoint for the team.
func TenantNotificationObjects(team, env, eventsURL string) []runtime.Object {
	ns := TenantNamespace(team, env)
	provider, alert := notifierObjects(eventsURL,
		notifyv1.CrossNamespaceObjectReference{Kind: helmv2.HelmReleaseKind, Name: "*"},
		notifyv1.CrossNamespaceObjectReference{Kind: sourcev1.HelmRepositoryKind, Name: "*"},
		notifyv1.CrossNamespaceObjectReference{Kind: sourcev1.HelmChartKind, Name: "*"},
	)
	receiver := &notifyv1.Receiver{
		TypeMeta:   metav1.TypeMeta{APIVersion: notifyv1.GroupVersion.String(), Kind: notifyv1.ReceiverKind},
		ObjectMeta: metav1.ObjectMeta{Name: ChartReceiverName},
		Spec: notifyv1.ReceiverSpec{
			Type:      notifyv1.ACRReceiver,
			SecretRef: &meta.LocalObjectReference{Name: ReceiverSecretName},
			// Every HelmChart helm-controller made for the namespace's
			// releases (it labels them with the release's namespace): a
			// chart source may hold several charts, and looking at one
			// that did not change costs a tag listing.
			Resources: []notifyv1.ReceiverResource{{CrossNamespaceObjectReference: notifyv1.CrossNamespaceObjectReference{
				Kind: sourcev1.HelmChartKind, Name: "*",
				MatchLabels: map[string]string{"helm.toolkit.fluxcd.io/namespace": ns},
			}}},
		},
	}
	return []runtime.Object{provider, alert, receiver}
}

// FleetNotificationObjects are the Provider and Alert of flux-system:
// the events of the Kustomizations and GitRepositories named (or "*").
func FleetNotificationObjects(eventsURL string, kustomizations, gitRepositories []string) []runtime.Object {
	var sources []notifyv1.CrossNamespaceObjectReference
	for _, name := range kustomizations {
		sources = append(sources, notifyv1.CrossNamespaceObjectReference{Kind: kustomizev1.KustomizationKind, Name: name})
	}
	for _, name := range gitRepositories {
		sources = append(sources, notifyv1.CrossNamespaceObjectReference{Kind: sourcev1.GitRepositoryKind, Name: name})
	}
	provider, alert := notifierObjects(eventsURL, sources...)
	provider.Namespace, alert.Namespace = Namespace, Namespace
	return []runtime.Object{provider, alert}
}

func notifierObjects(eventsURL string, sources ...notifyv1.CrossNamespaceObjectReference) (*notifyv1beta3.Provider, *notifyv1beta3.Alert) {
	provider := &notifyv1beta3.Provider{
		TypeMeta:   metav1.TypeMeta{APIVersion: notifyv1beta3.GroupVersion.String(), Kind: notifyv1beta3.ProviderKind},
		ObjectMeta: metav1.ObjectMeta{Name: NotifierName},
		Spec: notifyv1beta3.ProviderSpec{
			Type:    notifyv1beta3.GenericHMACProvider,
			Address: eventsURL,
			// token: the HMAC key; ca.crt: the platform's CA.
			SecretRef:     &meta.LocalObjectReference{Name: EventsSecretName},
			CertSecretRef: &meta.LocalObjectReference{Name: EventsSecretName},
		},
	}
	alert := &notifyv1beta3.Alert{
		TypeMeta:   metav1.TypeMeta{APIVersion: notifyv1beta3.GroupVersion.String(), Kind: notifyv1beta3.AlertKind},
		ObjectMeta: metav1.ObjectMeta{Name: NotifierName},
		Spec: notifyv1beta3.AlertSpec{
			ProviderRef:   meta.LocalObjectReference{Name: NotifierName},
			EventSeverity: "info",
			EventSources:  sources,
		},
	}
	return provider, alert
}

// EventsSecret holds a Provider's HMAC key and the CA it trusts the
// platform with. It is applied to the cluster, never committed.
func EventsSecret(namespace, key string, ca []byte) *corev1.Secret {
	data := map[string]string{"token": key}
	if len(ca) > 0 {
		data["ca.crt"] = string(ca)
	}
	return secret(EventsSecretName, namespace, data)
}

// ReceiverSecret holds the token a Receiver's webhook path is made from.
func ReceiverSecret(namespace, token string) *corev1.Secret {
	return secret(ReceiverSecretName, namespace, map[string]string{"token": token})
}

func secret(name, namespace string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeOpaque,
		StringData: data,
	}
}

// EnsureNotifications writes the notification objects of every tenant
// overlay that lacks them, eventsURL(team) giving each team's endpoint,
// and returns the files it wrote. A fleet from before notifications gets
// them at the next `up`; one that has them is left as ops keeps it.
func EnsureNotifications(dir string, eventsURL func(team string) string) ([]string, error) {
	teams, err := Tenants(dir)
	if err != nil {
		return nil, err
	}
	var wrote []string
	for _, team := range teams {
		for _, env := range Environments {
			path := NotificationsPath(team, env)
			overlay := filepath.Join(dir, "tenants", env, team)
			if _, err := os.Stat(overlay); err != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(path))); err == nil {
				continue
			}
			if err := writeFile(dir, path, mustMarshal(TenantNotificationObjects(team, env, eventsURL(team))...)); err != nil {
				return nil, err
			}
			if err := writeKustomization(overlay, TenantNamespace(team, env)); err != nil {
				return nil, err
			}
			wrote = append(wrote, path)
		}
	}
	return wrote, nil
}
