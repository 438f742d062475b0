package flux

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// resourceLabels are the labels of gotk_resource_info as Flux's monitoring
// guide has kube-state-metrics export them: the common ones, then each
// kind's own (empty where a kind has none, which Prometheus reads as
// absent), then the Ready condition's reason, which Slipway adds.
var resourceLabels = []string{
	"customresource_group", "customresource_kind", "customresource_version", "exported_namespace", "name",
	"ready", "suspended", "revision", "url", "source_name",
	"chart_name", "chart_version", "chart_app_version", "chart_source_name", "reason",
}

var resourceInfo = prometheus.NewDesc("gotk_resource_info",
	"The state of a Flux object: 1 for every object, its state in the labels.", resourceLabels, nil)

// ResourceCollector exports gotk_resource_info for every Flux object of
// the cluster, read at each scrape from the API server's watch cache
// (a list at resourceVersion 0), so it keeps nothing between scrapes.
type ResourceCollector struct {
	Client dynamic.Interface
	// Connect, when Client is nil, makes it at the first scrape (the
	// cluster's kubeconfig may not exist when the collector is made).
	Connect func() (dynamic.Interface, error)
	// Timeout bounds one scrape's reads (default 5 s).
	Timeout time.Duration

	mu sync.Mutex
}

func (c *ResourceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- resourceInfo }

func (c *ResourceCollector) Collect(ch chan<- prometheus.Metric) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.mu.Lock()
	if c.Client == nil && c.Connect != nil {
		client, err := c.Connect()
		if err != nil {
			c.mu.Unlock()
			ch <- prometheus.NewInvalidMetric(resourceInfo, err)
			return
		}
		c.Client = client
	}
	client := c.Client
	c.mu.Unlock()
	for _, k := range Kinds {
		list, err := client.Resource(k.GVR).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			ch <- prometheus.NewInvalidMetric(resourceInfo, err)
			continue
		}
		for i := range list.Items {
			ch <- prometheus.MustNewConstMetric(resourceInfo, prometheus.GaugeValue, 1, ResourceLabelValues(k, &list.Items[i])...)
		}
	}
}

// ResourceLabelValues are an object's values of gotk_resource_info's
// labels, in their order.
func ResourceLabelValues(k Kind, u *unstructured.Unstructured) []string {
	o := Summarize(k, u)
	str := func(path ...string) string { s, _, _ := unstructured.NestedString(u.Object, path...); return s }
	var url, sourceName, chartName, chartVersion, appVersion, chartSource, reason string
	if c, ok := condition(u, "Ready"); ok {
		reason, _ = c["reason"].(string)
	}
	revision := o.Revision
	switch k.Kind {
	case GitRepository.Kind, OCIRepository.Kind, HelmRepository.Kind:
		url = str("spec", "url")
	case HelmChart.Kind:
		chartName, chartVersion = str("spec", "chart"), str("spec", "version")
		sourceName = str("spec", "sourceRef", "name")
	case Kustomization.Kind:
		sourceName = str("spec", "sourceRef", "name")
	case HelmRelease.Kind:
		chartSource = str("spec", "chart", "spec", "sourceRef", "name")
		chartName = str("spec", "chart", "spec", "chart")
		// The release's latest entry says what runs: the chart's name,
		// version and app version.
		if history, _, _ := unstructured.NestedSlice(u.Object, "status", "history"); len(history) > 0 {
			if h, ok := history[0].(map[string]any); ok {
				if v, ok := h["chartName"].(string); ok && v != "" {
					chartName = v
				}
				chartVersion, _ = h["chartVersion"].(string)
				appVersion, _ = h["appVersion"].(string)
				revision = chartVersion
			}
		}
	}
	return []string{
		k.GVR.Group, k.Kind, k.GVR.Version, o.Namespace, o.Name,
		o.Ready, strconv.FormatBool(o.Suspended), revision, url, sourceName,
		chartName, chartVersion, appVersion, chartSource, reason,
	}
}
