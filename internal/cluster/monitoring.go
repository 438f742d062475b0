package cluster

// PrometheusUser is the name the cluster knows Prometheus by (its client
// certificate's CN).
const PrometheusUser = "slipway:prometheus"

// PrometheusAccess is what Prometheus needs to read the cluster: the
// kubeconfig its service discovery uses, and the client certificate, key
// and CA it scrapes the API server and the kubelet with.
type PrometheusAccess struct {
	Kubeconfig, CA, Cert, Key string
}

// PrometheusAccess is Prometheus's way into this cluster (made by Prepare).
func (c *Cluster) PrometheusAccess() PrometheusAccess {
	return PrometheusAccess{Kubeconfig: c.kubeconfig("prometheus"), CA: c.pki("ca.crt"), Cert: c.pki("prometheus.crt"), Key: c.pki("prometheus.key")}
}

// MonitoringRBAC lets PrometheusUser discover and scrape, and nothing
// more: list and watch the objects service discovery reads, the kubelet's
// metrics (nodes/metrics, which also covers cAdvisor's), and the API
// server's /metrics. It is applied by the platform when monitoring starts.
var MonitoringRBAC = prometheusRBAC("nodes/metrics", "", `- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: `+PrometheusUser)

// ProxiedMonitoringRBAC is MonitoringRBAC for a cluster Prometheus reads
// through the API server, bound to a ServiceAccount (with its namespace):
// GET through the proxy of a node (the kubelet's and cAdvisor's metrics)
// and of a pod (its metrics port) in place of nodes/metrics. The proxy
// verb is GET only: no exec, no writes through it.
func ProxiedMonitoringRBAC(namespace, account string) string {
	return `apiVersion: v1
kind: Namespace
metadata:
  name: ` + namespace + `
  labels:
    app.kubernetes.io/managed-by: slipway
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ` + account + `
  namespace: ` + namespace + `
---
` + prometheusRBAC("", `- apiGroups: [""]
  resources: [nodes/proxy, pods/proxy]
  verbs: [get]
`, `- kind: ServiceAccount
  name: `+account+`
  namespace: `+namespace)
}

// prometheusRBAC is the ClusterRole slipway:prometheus and its binding to
// subject: discovery's reads (with more, such as nodes/metrics, beside
// them), further rules, and the API server's /metrics.
func prometheusRBAC(moreReads, moreRules, subject string) string {
	reads := "nodes, services, endpoints, pods"
	if moreReads != "" {
		reads = "nodes, " + moreReads + ", services, endpoints, pods"
	}
	return `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: slipway:prometheus
rules:
- apiGroups: [""]
  resources: [` + reads + `]
  verbs: [get, list, watch]
` + moreRules + `- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- nonResourceURLs: [/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: slipway:prometheus
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: slipway:prometheus
subjects:
` + subject + `
`
}

// CertificateFiles are the cluster's certificates that expire on their
// own time, by name: its CA, the API server's and the kubelet's serving
// certificates.
func (c *Cluster) CertificateFiles() map[string]string {
	return map[string]string{"ca": c.pki("ca.crt"), "apiserver": c.pki("apiserver.crt"), "kubelet-serving": c.pki("kubelet-serving.crt")}
}
