// Package monitoring is the platform's metrics and alerting: the
// configuration of the real Prometheus and Alertmanager that `slipway up`
// runs beside the cluster, the alert rules the fleet repository ships, and
// reading the two servers' APIs (alerts, silences, queries).
//
// Prometheus finds what to scrape with its Kubernetes service discovery:
// the API server, the kubelet and cAdvisor, Flux's controllers, and every
// tenant pod with a container port named "metrics"; and scrapes the
// platform's own /metrics (pushes, runs, registry requests, Flux's objects
// and pods as gotk_resource_info and kube_pod_* series). Its rules come
// from the fleet (monitoring/rules/*.yaml), so ops changes them by commit.
// Alertmanager sends every alert to the platform, which files it by its
// team label: a team sees its own namespaces' alerts, ops sees all.
package monitoring

import (
	"fmt"
	"time"

	"sigs.k8s.io/yaml"
)

// ClusterAccess is how Prometheus reads the cluster: on the platform's
// own cluster, with a client certificate (see cluster.PrometheusAccess),
// straight from the node, the pods and the API server; on an existing
// cluster, whose nodes and pods this host may not reach, through the API
// server's proxy (APIServer and TokenFile set).
type ClusterAccess struct {
	Kubeconfig, CA, Cert, Key string
	// APIServer is the API server's host:port, and TokenFile holds the
	// bearer token of Prometheus' account there (re-read at each scrape,
	// so the platform renews it in place). With them, every target is
	// read at the API server: the kubelet's and cAdvisor's metrics as
	// nodes/NAME/proxy, a pod's as pods/NAME:PORT/proxy.
	APIServer, TokenFile string
	// InsecureSkipVerify is set only when the kubeconfig the platform was
	// given trusts the API server without a CA (insecure-skip-tls-verify).
	InsecureSkipVerify bool
}

// proxied says whether targets are read through the API server.
func (c ClusterAccess) proxied() bool { return c.TokenFile != "" }

// PrometheusOptions say what Prometheus scrapes and where it sends alerts.
type PrometheusOptions struct {
	// Self and Alertmanager are host:port of the two servers.
	Self, Alertmanager string
	// Platform is host:port of the platform's /metrics (HTTPS), trusted
	// with PlatformCA and read as PlatformUser with the password in
	// PlatformPasswordFile.
	Platform, PlatformCA, PlatformUser, PlatformPasswordFile string
	// Cluster, when set, adds the cluster's targets.
	Cluster *ClusterAccess
	// RulesDir holds the rule files (*.yaml).
	RulesDir string
	// ScrapeInterval is how often each target is read.
	ScrapeInterval time.Duration
	// AppScrapeInterval is how often tenants' pods are read, and
	// EvaluationInterval how often rules are evaluated (both default to
	// ScrapeInterval): an app's error ratio is what a bake in staging
	// waits for, so it is read more often than the platform's own series.
	AppScrapeInterval, EvaluationInterval time.Duration
	// Retention is how long samples are kept.
	Retention time.Duration
}

type m = map[string]any

// PrometheusConfig renders prometheus.yml.
func PrometheusConfig(o PrometheusOptions) []byte {
	interval := promDuration(o.ScrapeInterval)
	appInterval, evalInterval := interval, interval
	if o.AppScrapeInterval > 0 {
		appInterval = promDuration(o.AppScrapeInterval)
	}
	if o.EvaluationInterval > 0 {
		evalInterval = promDuration(o.EvaluationInterval)
	}
	scrapes := []any{
		m{"job_name": "prometheus", "static_configs": []any{m{"targets": []string{o.Self}}}},
		m{"job_name": "alertmanager", "static_configs": []any{m{"targets": []string{o.Alertmanager}}}},
		m{"job_name": "slipway", "scheme": "https",
			"tls_config": m{"ca_file": o.PlatformCA},
			"basic_auth": m{"username": o.PlatformUser, "password_file": o.PlatformPasswordFile},
			// gotk_resource_info names the object's namespace
			// exported_namespace, as Flux's dashboards expect; keep the
			// labels the platform sets.
			"honor_labels":   true,
			"static_configs": []any{m{"targets": []string{o.Platform}}}},
	}
	if c := o.Cluster; c != nil {
		if c.proxied() {
			scrapes = append(scrapes, proxiedClusterScrapes(*c, appInterval)...)
		} else {
			scrapes = append(scrapes, clusterScrapes(*c, appInterval)...)
		}
	}
	cfg := m{
		"global": m{
			"scrape_interval": interval, "evaluation_interval": evalInterval,
			"external_labels": m{"platform": "slipway"},
		},
		"rule_files":     []string{o.RulesDir + "/*.yaml"},
		"alerting":       m{"alertmanagers": []any{m{"static_configs": []any{m{"targets": []string{o.Alertmanager}}}}}},
		"scrape_configs": scrapes,
		"storage":        m{"tsdb": m{"retention": m{"time": promDuration(o.Retention)}}},
	}
	return mustYAML(cfg)
}

// clusterScrapes read the platform's own cluster directly: the API
// server's endpoints, the node, and the pods at their addresses.
func clusterScrapes(c ClusterAccess, appInterval string) []any {
	clusterTLS := m{"ca_file": c.CA, "cert_file": c.Cert, "key_file": c.Key}
	sd := func(role string, namespaces ...string) []any {
		cfg := m{"role": role, "kubeconfig_file": c.Kubeconfig}
		if len(namespaces) > 0 {
			cfg["namespaces"] = m{"names": namespaces}
		}
		return []any{cfg}
	}
	nodeLabels := []any{
		m{"source_labels": []string{"__meta_kubernetes_node_name"}, "target_label": "node"},
	}
	return []any{
		m{"job_name": "apiserver", "scheme": "https", "tls_config": clusterTLS,
			"kubernetes_sd_configs": sd("endpoints", "default"),
			"relabel_configs": []any{m{"action": "keep",
				"source_labels": []string{"__meta_kubernetes_service_name", "__meta_kubernetes_endpoint_port_name"},
				"regex":         "kubernetes;https"}},
			"metric_relabel_configs": fewerBuckets},
		m{"job_name": "kubelet", "scheme": "https", "tls_config": clusterTLS,
			"kubernetes_sd_configs": sd("node"), "relabel_configs": nodeLabels,
			"metric_relabel_configs": fewerBuckets},
		m{"job_name": "cadvisor", "scheme": "https", "tls_config": clusterTLS, "metrics_path": "/metrics/cadvisor",
			"kubernetes_sd_configs": sd("node"), "relabel_configs": nodeLabels},
		m{"job_name": "flux-system", "kubernetes_sd_configs": sd("pod", "flux-system"),
			"relabel_configs": append([]any{
				m{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_name"}, "regex": "http-prom"},
			}, podLabels...)},
		m{"job_name": "tenant-pods", "scrape_interval": appInterval, "kubernetes_sd_configs": sd("pod"),
			"relabel_configs": append(tenantPodRelabels(), podLabels...)},
	}
}

// tenantPodRelabels keep a tenant's pod when a container declares a port
// named "metrics", and give it its team and environment from the
// namespace (TEAM-ENV) and its app from its name label.
func tenantPodRelabels() []any {
	return []any{
		m{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_name"}, "regex": "metrics"},
		m{"action": "drop", "source_labels": []string{"__meta_kubernetes_pod_phase"}, "regex": "Succeeded|Failed"},
		m{"source_labels": []string{"__meta_kubernetes_namespace"}, "regex": "(.+)-(staging|prod)", "target_label": "team", "replacement": "$1"},
		m{"source_labels": []string{"__meta_kubernetes_namespace"}, "regex": "(.+)-(staging|prod)", "target_label": "env", "replacement": "$2"},
		m{"source_labels": []string{"__meta_kubernetes_pod_label_app_kubernetes_io_name"}, "target_label": "app"},
	}
}

// proxiedClusterScrapes read an existing cluster through its API server:
// the same jobs and labels as clusterScrapes, each target's address
// rewritten to the API server and its path to the proxy of the node or
// pod, with instance naming the node or the pod's own address.
func proxiedClusterScrapes(c ClusterAccess, appInterval string) []any {
	tlsConfig := m{} // the system's CAs
	switch {
	case c.InsecureSkipVerify:
		tlsConfig = m{"insecure_skip_verify": true}
	case c.CA != "":
		tlsConfig = m{"ca_file": c.CA}
	}
	auth := m{"credentials_file": c.TokenFile}
	sd := func(role string, namespaces ...string) []any {
		cfg := m{"role": role, "api_server": "https://" + c.APIServer, "tls_config": tlsConfig, "authorization": auth}
		if len(namespaces) > 0 {
			cfg["namespaces"] = m{"names": namespaces}
		}
		return []any{cfg}
	}
	job := func(name string, extra m) m {
		out := m{"job_name": name, "scheme": "https", "tls_config": tlsConfig, "authorization": auth}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	toAPIServer := m{"target_label": "__address__", "replacement": c.APIServer}
	node := func(path string) []any {
		return []any{
			m{"source_labels": []string{"__meta_kubernetes_node_name"}, "target_label": "node"},
			m{"source_labels": []string{"__meta_kubernetes_node_name"}, "target_label": "instance"},
			m{"source_labels": []string{"__meta_kubernetes_node_name"}, "target_label": "__metrics_path__", "replacement": "/api/v1/nodes/$1/proxy" + path},
			toAPIServer,
		}
	}
	// A pod's port, proxied: its namespace, name and the port's number.
	pod := []any{
		m{"source_labels": []string{"__address__"}, "target_label": "instance"},
		m{"source_labels": []string{"__meta_kubernetes_namespace", "__meta_kubernetes_pod_name", "__meta_kubernetes_pod_container_port_number"},
			"regex": "(.+);(.+);(.+)", "target_label": "__metrics_path__", "replacement": "/api/v1/namespaces/$1/pods/$2:$3/proxy/metrics"},
		toAPIServer,
	}
	return []any{
		job("apiserver", m{"static_configs": []any{m{"targets": []string{c.APIServer}}}, "metric_relabel_configs": fewerBuckets}),
		job("kubelet", m{"kubernetes_sd_configs": sd("node"), "relabel_configs": node("/metrics"), "metric_relabel_configs": fewerBuckets}),
		job("cadvisor", m{"kubernetes_sd_configs": sd("node"), "relabel_configs": node("/metrics/cadvisor")}),
		job("flux-system", m{"kubernetes_sd_configs": sd("pod", "flux-system"),
			"relabel_configs": append(append([]any{
				m{"action": "keep", "source_labels": []string{"__meta_kubernetes_pod_container_port_name"}, "regex": "http-prom"},
			}, podLabels...), pod...)}),
		job("tenant-pods", m{"scrape_interval": appInterval, "kubernetes_sd_configs": sd("pod"),
			"relabel_configs": append(append(tenantPodRelabels(), podLabels...), pod...)}),
	}
}

// fewerBuckets keeps the Kubernetes programs' series to what ops reads.
// The API server alone exposes about 28,000 series, four in five of them
// histogram buckets of its internals (etcd requests, watch dispatch, watch
// cache, body sizes) at 20-40 series per histogram; in Prometheus' head
// they were most of its memory. Their _sum and _count stay, so averages
// and rates remain; of request latency's buckets, five stay (0.1, 0.5, 1
// and 5 seconds, and all), enough for the share of slow requests and a
// coarse p99: all 37 were 4,100 series after the demo, a fifth of the
// head. kubernetes_feature_enabled (500 series that only change with an
// upgrade) goes. Prometheus 3 writes le as a float ("1.0"), older ones as
// the program did ("1"): both match.
var fewerBuckets = []any{
	m{"source_labels": []string{"__name__", "le"}, "regex": `apiserver_request_duration_seconds_bucket;(0\.1|0\.5|1|1\.0|5|5\.0|\+Inf)`,
		"target_label": "__tmp_keep_bucket", "replacement": "yes"},
	m{"action": "drop", "source_labels": []string{"__name__", "__tmp_keep_bucket"}, "regex": ".+_bucket;|kubernetes_feature_enabled;"},
	m{"action": "labeldrop", "regex": "__tmp_keep_bucket"},
}

// podLabels name a pod's target by namespace, pod and container.
var podLabels = []any{
	m{"source_labels": []string{"__meta_kubernetes_namespace"}, "target_label": "namespace"},
	m{"source_labels": []string{"__meta_kubernetes_pod_name"}, "target_label": "pod"},
	m{"source_labels": []string{"__meta_kubernetes_pod_container_name"}, "target_label": "container"},
}

// AlertmanagerOptions say where alerts go.
type AlertmanagerOptions struct {
	// WebhookURL is the platform's receiver, trusted with CA and called
	// with the bearer token in TokenFile.
	WebhookURL, CA, TokenFile string
	// GroupWait is how long the first alert of a group waits for others.
	GroupWait time.Duration
}

// AlertmanagerConfig renders alertmanager.yml: every alert goes to the
// platform, grouped by team, alert and namespace; a release that is not
// Ready silences the warnings of its namespace (the symptoms: crash
// loops, targets down), so the person on call sees the cause first.
func AlertmanagerConfig(o AlertmanagerOptions) []byte {
	cfg := m{
		"route": m{
			"receiver":        "platform",
			"group_by":        []string{"team", "alertname", "namespace"},
			"group_wait":      promDuration(o.GroupWait),
			"group_interval":  "1m",
			"repeat_interval": "4h",
		},
		"receivers": []any{m{"name": "platform", "webhook_configs": []any{m{
			"url":           o.WebhookURL,
			"send_resolved": true,
			"http_config": m{
				"authorization": m{"credentials_file": o.TokenFile},
				"tls_config":    m{"ca_file": o.CA},
			},
		}}}},
		"inhibit_rules": []any{m{
			"source_matchers": []string{`alertname="SlipwayReleaseNotReady"`},
			"target_matchers": []string{`severity="warning"`},
			"equal":           []string{"namespace"},
		}},
	}
	return mustYAML(cfg)
}

// promDuration writes a duration the way Prometheus reads one.
func promDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "15s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

func mustYAML(v any) []byte {
	data, err := yaml.Marshal(v)
	if err != nil {
		panic(err) // maps of strings, lists and maps always marshal
	}
	return data
}
