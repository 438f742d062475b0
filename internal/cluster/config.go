package cluster

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/supervisor"
)

// Cluster prepares and describes the node's programs.
type Cluster struct {
	opts Options
	// procs are the node's programs as the supervisor runs them, by name,
	// once Services has made them: an upgrade restarts them.
	procs map[string]*supervisor.Process
}

// New checks options and returns the cluster they describe.
func New(opts Options) (*Cluster, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	for _, p := range []string{"etcd", ControlPlaneProgram, "kubelet", "kube-proxy"} {
		if opts.Binaries[p] == "" {
			return nil, fmt.Errorf("no %s program: build the components first", p)
		}
	}
	return &Cluster{opts: opts}, nil
}

// Options returns the cluster's options.
func (c *Cluster) Options() Options { return c.opts }

func (c *Cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.opts.Dir}, parts...)...)
}
func (c *Cluster) pkiDir() string             { return c.path("pki") }
func (c *Cluster) pki(name string) string     { return c.path("pki", name) }
func (c *Cluster) kubeconfig(n string) string { return c.path("kubeconfig", n+".kubeconfig") }
func (c *Cluster) logFile(n string) string    { return c.path("logs", n+".log") }

// Prepare writes certificates, kubeconfigs and the programs' configuration.
// It keeps what an earlier run made (certificates, etcd data), so a restart
// is the same cluster.
func (c *Cluster) Prepare() error {
	for _, d := range []string{"kubeconfig", "config", "logs", "etcd", "kubelet", "containerd", "cni/net.d"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(c.path("etcd"), 0o700); err != nil {
		return err
	}
	if err := c.ensurePKI(); err != nil {
		return err
	}
	if _, err := os.Stat(versionsFile(c.opts.Dir)); errors.Is(err, os.ErrNotExist) && c.opts.Versions.Programs != nil {
		if err := WriteVersions(c.opts.Dir, c.opts.Versions); err != nil {
			return err
		}
	}
	for _, k := range []struct{ name, cert string }{
		{"admin", "admin"}, {"controller-manager", "controller-manager"}, {"scheduler", "scheduler"},
		{"kube-proxy", "kube-proxy"}, {"kubelet", "kubelet"}, {"prometheus", "prometheus"},
	} {
		if err := c.writeKubeconfig(c.kubeconfig(k.name), k.cert); err != nil {
			return err
		}
	}
	if err := copyFile(c.kubeconfig("admin"), c.opts.AdminKubeconfig(), 0o600); err != nil {
		return err
	}
	if err := os.MkdirAll(c.path("kubelet-home"), 0o700); err != nil {
		return err
	}
	writes := map[string]string{
		c.path("config", "admission.yaml"):            admissionConfig,
		c.path("config", "kubelet.yaml"):              c.kubeletConfig(),
		c.path("config", "kube-proxy.yaml"):           c.kubeProxyConfig(),
		c.path("config", "containerd.toml"):           c.containerdConfig(),
		c.path("cni", "net.d", "10-slipway.conflist"): c.cniConfig(),
	}
	for p, content := range writes {
		if err := fsutil.WriteFileAtomic(p, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// admissionConfig sets Pod Security for namespaces that do not choose
// their own level: baseline is enforced (no privileged pods, host paths,
// host namespaces or added capabilities), restricted is warned and
// audited. Tenant namespaces enforce restricted by their labels; the
// cluster's own (kube-system, flux-system) are exempt.
const admissionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: baseline
      enforce-version: latest
      audit: restricted
      audit-version: latest
      warn: restricted
      warn-version: latest
    exemptions:
      usernames: []
      runtimeClasses: []
      namespaces: [kube-system, flux-system]
`

// writeKubeconfig embeds the CA and a client certificate.
func (c *Cluster) writeKubeconfig(path, cert string) error {
	read := func(name string) (string, error) {
		data, err := os.ReadFile(c.pki(name))
		return base64.StdEncoding.EncodeToString(data), err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return err
	}
	crt, err := read(cert + ".crt")
	if err != nil {
		return err
	}
	key, err := read(cert + ".key")
	if err != nil {
		return err
	}
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: slipway
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: slipway
  context:
    cluster: slipway
    user: %s
current-context: slipway
`, c.opts.APIServer(), ca, cert, crt, key, cert)
	return fsutil.WriteFileAtomic(path, []byte(content), 0o600)
}

func (c *Cluster) kubeletConfig() string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[2]s
authorization:
  mode: Webhook
# cgroups v1 (hybrid) on these machines; the kubelet refuses v1 unless told.
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://%[3]s
clusterDNS: [%[4]s]
clusterDomain: cluster.local
podCIDR: %[5]s
tlsCertFile: %[6]s
tlsPrivateKeyFile: %[7]s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
failSwapOn: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# After a restart the node is first reported NotReady until the pod
# lifecycle loop has run once; a short period reports it Ready within a
# second or two instead of ten.
nodeStatusUpdateFrequency: 1s
# A shared development machine runs with little free disk: evict only when
# it is nearly full, and do not garbage-collect images early.
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, c.opts.NodeIP, c.pki("ca.crt"), c.opts.ContainerdSocket(), c.opts.DNSIP(), c.opts.PodCIDR,
		c.pki("kubelet-serving.crt"), c.pki("kubelet-serving.key"))
}

func (c *Cluster) kubeProxyConfig() string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
bindAddress: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the host's conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  min: 0
`, c.kubeconfig("kube-proxy"), c.opts.NodeName, c.opts.PodCIDR, c.opts.NodeIP)
}

func (c *Cluster) containerdConfig() string {
	// The embedded registry answers under both of its names, with HTTPS
	// and the platform's CA, or plain HTTP where it serves that.
	var registry string
	if c.opts.Registry != "" {
		for i, host := range []string{c.opts.Registry, c.opts.RegistryNodeAddr()} {
			scheme := "https"
			if c.opts.RegistryCA == "" || i == 0 && c.opts.RegistryPlainLoopback {
				scheme = "http"
			}
			registry += fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".registry.mirrors.%q]
  endpoint = ["%s://%s"]
`, host, scheme, host)
			if scheme == "https" {
				registry += fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".registry.configs.%q.tls]
  ca_file = %q
`, host, c.opts.RegistryCA)
			}
			if c.opts.RegistryUser != "" {
				registry += fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".registry.configs.%q.auth]
  username = %q
  password = %q
`, host, c.opts.RegistryUser, c.opts.RegistryPassword)
			}
		}
	}
	for _, r := range c.opts.MoreRegistries {
		scheme := "https"
		if r.PlainHTTP {
			scheme = "http"
		}
		registry += fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".registry.mirrors.%q]
  endpoint = ["%s://%s"]
`, r.Host, scheme, r.Host)
		if r.CAFile != "" && !r.PlainHTTP {
			registry += fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".registry.configs.%q.tls]
  ca_file = %q
`, r.Host, r.CAFile)
		}
		if r.Username != "" {
			registry += fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".registry.configs.%q.auth]
  username = %q
  password = %q
`, r.Host, r.Username, r.Password)
		}
	}
	return fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # This host refuses to lower oom_score_adj; without this runc fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = %q
%s`, c.path("containerd", "root"), c.path("containerd", "state"), c.opts.ContainerdSocket(),
		c.opts.PauseImage, c.path("cni", "net.d"), registry)
}

func (c *Cluster) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "slipway",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, c.opts.Bridge, c.opts.PodCIDR, c.opts.NodeIP, c.path("cni", "ipam"))
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(dst, data, mode)
}

func joinArgs(kv map[string]string) []string {
	out := make([]string, 0, len(kv))
	for k, v := range kv {
		out = append(out, "--"+k+"="+v)
	}
	// Stable order makes logs comparable between runs.
	sort.Strings(out)
	return out
}
