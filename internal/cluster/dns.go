package cluster

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/supervisor"
)

func metav1PatchOptions(manager string, force *bool) metav1.PatchOptions {
	return metav1.PatchOptions{FieldManager: manager, Force: force}
}

// dnsService deploys CoreDNS as an ordinary Deployment and is ready when
// the cluster DNS Service answers.
type dnsService struct{ c *Cluster }

func (d *dnsService) Name() string { return "coredns" }

// StartsAlongside: what comes next (Flux) installs its controllers while
// CoreDNS's pod starts; Flux's own readiness needs DNS and waits for it.
func (d *dnsService) StartsAlongside() bool { return true }

func (d *dnsService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	cfg, err := RESTConfig(d.c.opts.AdminKubeconfig())
	if err != nil {
		return err
	}
	if err := Apply(ctx, cfg, []byte(kubeletAPIAccess+d.c.coreDNSManifests())); err != nil {
		return fmt.Errorf("deploying CoreDNS: %w", err)
	}
	client, err := d.c.Client()
	if err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(dnsStartTimeout)
	var lastErr error
	for {
		if lastErr = d.check(ctx, client.AppsV1().Deployments("kube-system")); lastErr == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CoreDNS did not become ready in %s: %v%s", dnsStartTimeout, lastErr, PodTrouble(ctx, client, "kube-system"))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	ready(supervisor.Endpoint{URL: "dns://" + d.c.opts.DNSIP()})
	<-ctx.Done()
	return nil
}

type deploymentGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*appsv1.Deployment, error)
}

func (d *dnsService) check(ctx context.Context, deployments deploymentGetter) error {
	dep, err := deployments.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if dep.Status.AvailableReplicas < 1 {
		return fmt.Errorf("coredns has no available replica")
	}
	_, err = d.c.LookupHost(ctx, "kubernetes.default.svc.cluster.local")
	return err
}

// LookupHost asks the cluster DNS, from the host, through the DNS
// Service's address (which kube-proxy routes to CoreDNS).
func (c *Cluster) LookupHost(ctx context.Context, name string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, net.JoinHostPort(c.opts.DNSIP(), "53"))
	}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return r.LookupHost(ctx, name)
}

// kubeletAPIAccess lets the API server use the kubelet's API with its
// client certificate: `kubectl logs`, `exec` and `port-forward` go that way,
// and the kubelet checks each call against RBAC.
const kubeletAPIAccess = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: slipway:apiserver-kubelet-api
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:kubelet-api-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: kube-apiserver-kubelet-client
---
`

// coreDNSManifests answers for cluster names only: nothing outside this
// machine is reachable, so there is nothing to forward to. CoreDNS listens
// on 1053 inside its pod so it needs no privilege; the Service maps 53.
func (c *Cluster) coreDNSManifests() string {
	return strings.NewReplacer("<IMAGE>", c.opts.CoreDNSImage, "<DNSIP>", c.opts.DNSIP()).Replace(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- kind: ServiceAccount
  name: coredns
  namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: |
    .:1053 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
        }
        cache 30
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  replicas: 1
  selector:
    matchLabels:
      k8s-app: kube-dns
  template:
    metadata:
      labels:
        k8s-app: kube-dns
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
      - name: coredns
        image: <IMAGE>
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {name: dns, containerPort: 1053, protocol: UDP}
        - {name: dns-tcp, containerPort: 1053, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 1
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          periodSeconds: 10
        resources:
          requests: {cpu: 50m, memory: 32Mi}
          limits: {memory: 128Mi}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop: ["ALL"]
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap:
          name: coredns
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  clusterIP: <DNSIP>
  selector:
    k8s-app: kube-dns
  ports:
  - {name: dns, port: 53, targetPort: 1053, protocol: UDP}
  - {name: dns-tcp, port: 53, targetPort: 1053, protocol: TCP}
`)
}

// dnsStartTimeout bounds the wait for CoreDNS; past it, up stops and
// says what its pod is waiting for (an image it cannot pull, say).
const dnsStartTimeout = 3 * time.Minute

// PodTrouble lists why a namespace's containers wait (ImagePullBackOff
// and its message, say), one line each, for an error that says why a
// start does not progress.
func PodTrouble(ctx context.Context, client kubernetes.Interface, namespace string) string {
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				fmt.Fprintf(&b, "\n  pod %s/%s: %s: %s", namespace, p.Name, w.Reason, w.Message)
			}
		}
	}
	return b.String()
}
