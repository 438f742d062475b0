package flux

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// ChartRef names a HelmChart object.
type ChartRef struct{ Namespace, Name string }

// ChartsReading finds the HelmCharts that take their chart from repository
// (such as dev1/charts/hello) of the registry at one of hosts: those whose
// OCI HelmRepository's URL is oci://HOST/dev1/charts and whose chart is
// hello. The platform asks Flux to reconcile them when a chart is pushed,
// instead of leaving the new version to the chart's interval.
func ChartsReading(ctx context.Context, client dynamic.Interface, hosts []string, repository string) ([]ChartRef, error) {
	dir, chart := path.Split(repository)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || chart == "" {
		return nil, nil
	}
	repos, err := client.Resource(HelmRepository.GVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	// The HelmRepositories, by namespace/name, that point at that folder.
	sources := map[ChartRef]bool{}
	for _, r := range repos.Items {
		typ, _, _ := unstructured.NestedString(r.Object, "spec", "type")
		raw, _, _ := unstructured.NestedString(r.Object, "spec", "url")
		u, err := url.Parse(raw)
		if typ != "oci" || err != nil || u.Scheme != "oci" || !hostIn(u.Host, hosts) || strings.Trim(u.Path, "/") != dir {
			continue
		}
		sources[ChartRef{r.GetNamespace(), r.GetName()}] = true
	}
	if len(sources) == 0 {
		return nil, nil
	}
	charts, err := client.Resource(HelmChart.GVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []ChartRef
	for _, c := range charts.Items {
		name, _, _ := unstructured.NestedString(c.Object, "spec", "chart")
		kind, _, _ := unstructured.NestedString(c.Object, "spec", "sourceRef", "kind")
		source, _, _ := unstructured.NestedString(c.Object, "spec", "sourceRef", "name")
		// A HelmChart reads its source from its own namespace.
		if name == chart && kind == HelmRepository.Kind && sources[ChartRef{c.GetNamespace(), source}] {
			out = append(out, ChartRef{c.GetNamespace(), c.GetName()})
		}
	}
	return out, nil
}

func hostIn(host string, hosts []string) bool {
	for _, h := range hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// ReceiverHook is the webhook path of a Receiver (status.webhookPath),
// once notification-controller has made it Ready.
func ReceiverHook(ctx context.Context, client dynamic.Interface, namespace, name string) (string, error) {
	o, u, err := Get(ctx, client, Receiver, namespace, name)
	if err != nil {
		return "", err
	}
	path, _, _ := unstructured.NestedString(u.Object, "status", "webhookPath")
	if o.Ready != "True" || path == "" {
		return "", fmt.Errorf("Receiver %s/%s is not ready: %s", namespace, name, o.Message)
	}
	return path, nil
}

// WebhookReceiverURL is the base URL of notification-controller's webhook
// receiver: its Service's cluster IP, which the node reaches.
func WebhookReceiverURL(ctx context.Context, client dynamic.Interface) (string, error) {
	svc, err := client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "services"}).Namespace(Namespace).Get(ctx, "webhook-receiver", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP")
	if ip == "" || ip == "None" {
		return "", fmt.Errorf("the webhook-receiver Service has no cluster IP")
	}
	return "http://" + net.JoinHostPort(ip, "80"), nil
}

// ACRPush is the body Azure Container Registry's webhook sends for a push,
// the form a Receiver of type acr reads (action, target.repository,
// target.tag).
func ACRPush(registryHost, repository, tag, digest, mediaType string, at time.Time) []byte {
	type target struct {
		MediaType  string `json:"mediaType,omitempty"`
		Digest     string `json:"digest,omitempty"`
		Repository string `json:"repository"`
		Tag        string `json:"tag,omitempty"`
	}
	type request struct {
		Host   string `json:"host"`
		Method string `json:"method"`
	}
	body, _ := json.Marshal(struct {
		Timestamp time.Time `json:"timestamp"`
		Action    string    `json:"action"`
		Target    target    `json:"target"`
		Request   request   `json:"request"`
	}{at.UTC(), "push", target{mediaType, digest, repository, tag}, request{registryHost, "PUT"}})
	return body
}
