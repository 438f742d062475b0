package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipway-dev/slipway/internal/supervisor"
)

// NetworkService makes the node's bridge and address; it must start before
// anything that listens on the node address (the registry does, so pods
// reach it) and is stopped last.
func (c *Cluster) NetworkService() supervisor.Service { return &networkService{c: c} }

// NodeAddr is host:port on the node address, which works from the host and
// from pods alike.
func (c *Cluster) NodeAddr(port string) string { return net.JoinHostPort(c.opts.NodeIP, port) }

// Services returns the cluster's programs in start order, for the
// supervisor, after NetworkService.
func (c *Cluster) Services() []supervisor.Service {
	o := c.opts
	bin := o.Binaries
	api := fmt.Sprintf("%s:%d", o.NodeIP, o.APIPort)
	services := []supervisor.Service{
		&supervisor.Process{
			ServiceName: "etcd",
			Path:        bin["etcd"],
			Args: joinArgs(map[string]string{
				"name":                        o.NodeName,
				"data-dir":                    c.path("etcd"),
				"listen-client-urls":          "https://127.0.0.1:2379",
				"advertise-client-urls":       "https://127.0.0.1:2379",
				"listen-peer-urls":            "https://127.0.0.1:2380",
				"initial-advertise-peer-urls": "https://127.0.0.1:2380",
				"initial-cluster":             o.NodeName + "=https://127.0.0.1:2380",
				"cert-file":                   c.pki("etcd.crt"),
				"key-file":                    c.pki("etcd.key"),
				"trusted-ca-file":             c.pki("ca.crt"),
				"client-cert-auth":            "true",
				"peer-cert-file":              c.pki("etcd.crt"),
				"peer-key-file":               c.pki("etcd.key"),
				"peer-trusted-ca-file":        c.pki("ca.crt"),
				"peer-client-cert-auth":       "true",
				"listen-metrics-urls":         "http://127.0.0.1:2381",
				"log-level":                   "warn",
			}),
			Env:      []string{heapQuarterGrowth},
			LogFile:  c.logFile("etcd"),
			Ready:    c.httpsReady("https://127.0.0.1:2379/health", "etcd"),
			Endpoint: supervisor.Endpoint{URL: "https://127.0.0.1:2379", Health: "http://127.0.0.1:2381/health"},
		},
		&supervisor.Process{
			ServiceName: ControlPlane,
			Path:        bin[ControlPlaneProgram],
			Args:        c.controlPlaneArgs(o.Versions),
			Env:         []string{heapQuarterGrowth},
			LogFile:     c.logFile(ControlPlane),
			// The API server answering ready is what the programs after
			// it need. The controller manager and the scheduler start in
			// the process once it is; nothing after them needs them to
			// start (what makes pods, Flux's install and CoreDNS, waits for
			// them to run), and when one of them fails the process ends.
			Ready:    c.httpsReady("https://"+api+"/readyz", "admin"),
			Endpoint: supervisor.Endpoint{URL: o.APIServer(), Notes: []string{"slipway kubectl get nodes   (or kubectl --context slipway …, or --kubeconfig " + o.AdminKubeconfig() + ")"}},
		},
		// kube-proxy needs only the API server; started before the node
		// so that pods coming back after a restart find Service rules ready.
		&supervisor.Process{
			ServiceName: "kube-proxy",
			Path:        bin["kube-proxy"],
			Args:        []string{"--config=" + c.path("config", "kube-proxy.yaml")},
			LogFile:     c.logFile("kube-proxy"),
			// On a new cluster kube-proxy waits for the node to register
			// (the kubelet, started after it) before it even serves its
			// health endpoint, so no readiness is awaited here: CoreDNS
			// answering through its Service address shows the rules work.
			Ready:    nil,
			Endpoint: supervisor.Endpoint{Health: "http://127.0.0.1:10256/healthz"},
		},
		&supervisor.Process{
			ServiceName: "containerd",
			Path:        "containerd",
			Args:        []string{"--config", c.path("config", "containerd.toml")},
			LogFile:     c.logFile("containerd"),
			Ready:       unixReady(o.ContainerdSocket()),
			Endpoint:    supervisor.Endpoint{URL: "unix://" + o.ContainerdSocket()},
			BeforeStop:  c.removeAllPods,
			StopGrace:   20 * time.Second,
			// The kubelet, the one program that needs it, awaits its socket.
			Alongside: true,
		},
		&supervisor.Process{
			ServiceName: "kubelet",
			Path:        bin["kubelet"],
			Args: joinArgs(map[string]string{
				"config":            c.path("config", "kubelet.yaml"),
				"kubeconfig":        c.kubeconfig("kubelet"),
				"node-ip":           o.NodeIP,
				"hostname-override": o.NodeName,
				"root-dir":          c.path("kubelet"),
				"v":                 "1",
			}),
			// The kubelet sends the pull credentials it finds in a Docker
			// config (in HOME, the working directory, or its root
			// directory) ahead of containerd's: a stale password of the
			// user's own `docker login` would make every pull fail with
			// 401. It gets a home of its own, with none: the node pulls
			// with the platform's credentials alone.
			Env:      []string{"HOME=" + c.path("kubelet-home"), heapQuarterGrowth},
			Dir:      c.path("kubelet-home"),
			Await:    unixReady(o.ContainerdSocket()),
			LogFile:  c.logFile("kubelet"),
			Ready:    c.nodeReadySince(),
			Endpoint: supervisor.Endpoint{URL: "node " + o.NodeName + " (" + o.NodeIP + ")", Health: "http://127.0.0.1:10248/healthz"},
		},
		&dnsService{c: c},
	}
	c.procs = map[string]*supervisor.Process{}
	for _, svc := range services {
		if p, ok := svc.(*supervisor.Process); ok {
			c.procs[p.ServiceName] = p
		}
	}
	return services
}

// heapQuarterGrowth has Go's garbage collector run once the heap has
// grown by a quarter since the last collection, not doubled (GOGC=100, the
// default): a little more collector work for a smaller idle footprint, in
// the programs whose memory is mostly heap (the API server's caches of
// every object, etcd's, the kubelet's). Measured idle, on two cores: at
// GOGC=50 against the default, after `up`, kube-apiserver 354 -> 286 MiB,
// etcd 71 -> 64, kubelet 91 -> 85; from GOGC=50 to 25, after the demo,
// one run each side by side, the control plane's process 323 -> 296 MiB
// PSS (its range at 50 over four runs: 323-357), etcd 76 -> 71, kubelet 67
// -> 64, the warm start's CPU unchanged. The other programs' memory is
// mostly their code and runtime; it did not move, so they keep the
// default.
const heapQuarterGrowth = "GOGC=25"

// ControlPlane is the service that runs the API server, the controller
// manager and the scheduler together in one process; ControlPlaneProgram
// is the program it runs (kube-node under that name).
const (
	ControlPlane        = "control-plane"
	ControlPlaneProgram = "kube-control-plane"
)

// controlPlanePrograms are the programs the control plane's process runs,
// in the order its arguments name them.
var controlPlanePrograms = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// controlPlaneArgs are the control plane's arguments for the releases v
// records: each program's name, then its flags.
func (c *Cluster) controlPlaneArgs(v Versions) []string {
	args := append([]string{"kube-apiserver"}, c.apiServerArgs(v.APIServerArgs)...)
	args = append(args, "kube-controller-manager")
	args = append(args, c.controllerManagerArgs(v.Programs["kube-controller-manager"])...)
	args = append(args, "kube-scheduler")
	return append(args, joinArgs(map[string]string{
		"kubeconfig":                c.kubeconfig("scheduler"),
		"authentication-kubeconfig": c.kubeconfig("scheduler"),
		"authorization-kubeconfig":  c.kubeconfig("scheduler"),
		"bind-address":              "127.0.0.1",
		"leader-elect":              "false",
	})...)
}

// controllerManagerArgs are the controller manager's flags for a release.
func (c *Cluster) controllerManagerArgs(release string) []string {
	// Node IPAM is the bridge's (host-local) job. Before v1.37 the cloud
	// node lifecycle controller was built in too, and not wanted here.
	controllers := "*,-node-ipam-controller"
	if release != "" && CompareVersions(release, "v1.37.0") < 0 {
		controllers += ",-cloud-node-lifecycle-controller"
	}
	o := c.opts
	return joinArgs(map[string]string{
		"kubeconfig":                       c.kubeconfig("controller-manager"),
		"authentication-kubeconfig":        c.kubeconfig("controller-manager"),
		"authorization-kubeconfig":         c.kubeconfig("controller-manager"),
		"bind-address":                     "127.0.0.1",
		"cluster-signing-cert-file":        c.pki("ca.crt"),
		"cluster-signing-key-file":         c.pki("ca.key"),
		"root-ca-file":                     c.pki("ca.crt"),
		"service-account-private-key-file": c.pki("sa.key"),
		"use-service-account-credentials":  "true",
		"service-cluster-ip-range":         o.ServiceCIDR,
		"leader-elect":                     "false",
		"controllers":                      controllers,
	})
}

// apiServerArgs are the API server's flags, with ops' extra ones.
func (c *Cluster) apiServerArgs(extra map[string]string) []string {
	o := c.opts
	args := map[string]string{
		"advertise-address":                o.NodeIP,
		"bind-address":                     o.NodeIP,
		"secure-port":                      strconv.Itoa(o.APIPort),
		"etcd-servers":                     "https://127.0.0.1:2379",
		"etcd-cafile":                      c.pki("ca.crt"),
		"etcd-certfile":                    c.pki("apiserver-etcd-client.crt"),
		"etcd-keyfile":                     c.pki("apiserver-etcd-client.key"),
		"client-ca-file":                   c.pki("ca.crt"),
		"tls-cert-file":                    c.pki("apiserver.crt"),
		"tls-private-key-file":             c.pki("apiserver.key"),
		"kubelet-client-certificate":       c.pki("apiserver-kubelet-client.crt"),
		"kubelet-client-key":               c.pki("apiserver-kubelet-client.key"),
		"kubelet-certificate-authority":    c.pki("ca.crt"),
		"kubelet-preferred-address-types":  "InternalIP",
		"service-account-issuer":           "https://kubernetes.default.svc.cluster.local",
		"service-account-key-file":         c.pki("sa.pub"),
		"service-account-signing-key-file": c.pki("sa.key"),
		"service-cluster-ip-range":         o.ServiceCIDR,
		"authorization-mode":               "Node,RBAC",
		"enable-admission-plugins":         "NodeRestriction",
		"admission-control-config-file":    c.path("config", "admission.yaml"),
		"allow-privileged":                 "true",
		"profiling":                        "false",
	}
	for k, v := range extra {
		args[k] = v
	}
	return joinArgs(args)
}

// networkService sets up the bridge first and removes it last.
type networkService struct{ c *Cluster }

func (n *networkService) Name() string { return "node-network" }

func (n *networkService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	// A run killed a moment ago still holds its ports while its programs
	// end; anything else holding them is another cluster.
	n.c.awaitKilledPrograms()
	if err := n.c.awaitPortsFree(time.Now().Add(killedProgramsGrace)); err != nil {
		return err
	}
	// A slipway killed with SIGKILL left its pods' containers running.
	var notes []string
	if left := ClearLeftovers(n.c.opts); left.Any() {
		notes = append(notes, "ended what a killed run left: "+left.String())
	}
	if err := n.c.setupNetwork(); err != nil {
		return err
	}
	ready(supervisor.Endpoint{URL: "bridge " + n.c.opts.Bridge + " " + n.c.opts.NodeIP, Notes: notes})
	<-ctx.Done()
	n.c.unmountLeftovers()
	return n.c.teardownNetwork()
}

// httpsReady checks an endpoint with a client certificate from the PKI.
func (c *Cluster) httpsReady(url, cert string) func(context.Context) error {
	return func(ctx context.Context) error {
		pair, err := tls.LoadX509KeyPair(c.pki(cert+".crt"), c.pki(cert+".key"))
		if err != nil {
			return err
		}
		caPEM, err := os.ReadFile(c.pki("ca.crt"))
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool},
		}}
		return supervisor.CheckHTTP(ctx, client, url)
	}
}

// insecureHTTPSReady checks a health endpoint served with a self-signed
// certificate (the controller manager's and scheduler's own).
func insecureHTTPSReady(url string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // a loopback health check of a self-signed server
	}}
	return func(ctx context.Context) error { return supervisor.CheckHTTP(ctx, client, url) }
}

func httpReady(url string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error { return supervisor.CheckHTTP(ctx, client, url) }
}

func unixReady(path string) func(context.Context) error {
	return func(ctx context.Context) error {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "unix", path)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

// Client returns a client with cluster-admin rights.
func (c *Cluster) Client() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.opts.AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// nodeReadySince is the kubelet's readiness: its health endpoint answers
// and the node reports Ready in the API with a heartbeat from this run (after
// a restart the node object still says Ready from before, until the kubelet
// has reported again).
func (c *Cluster) nodeReadySince() func(context.Context) error {
	var since time.Time
	return func(ctx context.Context) error {
		if since.IsZero() {
			since = time.Now().Truncate(time.Second)
		}
		if err := httpReady("http://127.0.0.1:10248/healthz")(ctx); err != nil {
			return err
		}
		client, err := c.Client()
		if err != nil {
			return err
		}
		node, err := client.CoreV1().Nodes().Get(ctx, c.opts.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && !cond.LastHeartbeatTime.Time.Before(since) {
				return nil
			}
		}
		return fmt.Errorf("node %s is not Ready yet", c.opts.NodeName)
	}
}

// LogDir is where each program's log is.
func (c *Cluster) LogDir() string { return filepath.Dir(c.logFile("x")) }
