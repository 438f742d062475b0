package cluster

import (
	"fmt"
	"net"
	"path/filepath"
)

// Options describe the cluster.
type Options struct {
	// Dir holds all cluster state: PKI, etcd data, kubelet and containerd
	// directories, configuration, logs.
	Dir string
	// NodeName is the node's name in the API.
	NodeName string
	// Bridge is the network bridge that holds NodeIP and the pods.
	Bridge string
	// NodeIP is the node's address, on the bridge; the API server listens
	// there. PodCIDR must contain it as its first address.
	NodeIP string
	// PodCIDR is the node's pod range.
	PodCIDR string
	// ServiceCIDR is the range of Service addresses.
	ServiceCIDR string
	// APIPort is the API server's port.
	APIPort int
	// Registry is the embedded registry's host:port, which containerd
	// pulls from with RegistryUser's credentials. The registry also
	// answers on the node address (RegistryNodeAddr), the name pods and
	// in-cluster controllers use.
	Registry                       string
	RegistryUser, RegistryPassword string
	// RegistryCA is the CA file the registry's certificate is signed by;
	// empty means it speaks plain HTTP. RegistryPlainLoopback: plain HTTP
	// on Registry (a loopback address) all the same; the node address
	// keeps HTTPS.
	RegistryCA            string
	RegistryPlainLoopback bool
	// MoreRegistries are other registries the node pulls from, as an AKS
	// cluster pulls from the ACR attached to it.
	MoreRegistries []NodeRegistry
	// Binaries maps program names to paths (from package components), for
	// the release each runs (Versions).
	Binaries map[string]string
	// Versions is the release each node program runs, as recorded in Dir.
	Versions Versions
	// PauseImage is the pod sandbox image; CoreDNSImage the DNS image.
	PauseImage, CoreDNSImage string
}

// NodeRegistry is a registry the node pulls from besides the embedded one.
type NodeRegistry struct {
	// Host is its host[:port], as image references name it.
	Host string
	// PlainHTTP talks HTTP to it; else HTTPS, trusting CAFile when set
	// and the host's trust store otherwise.
	PlainHTTP bool
	CAFile    string
	// Username and Password, when set, are sent when it asks (Basic or
	// its token endpoint).
	Username, Password string
}

// Defaults returns options for a cluster kept under dir.
func Defaults(dir string) Options {
	return Options{
		Dir:         dir,
		NodeName:    "slipway",
		Bridge:      "slipway0",
		NodeIP:      "10.244.0.1",
		PodCIDR:     "10.244.0.0/24",
		ServiceCIDR: "10.96.0.0/16",
		APIPort:     6443,
	}
}

// Validate checks the network settings fit together.
func (o Options) Validate() error {
	_, pods, err := net.ParseCIDR(o.PodCIDR)
	if err != nil {
		return fmt.Errorf("pod range %q: %w", o.PodCIDR, err)
	}
	if ip := net.ParseIP(o.NodeIP); ip == nil || !pods.Contains(ip) {
		return fmt.Errorf("node address %q must lie in the pod range %s (it is the pods' gateway)", o.NodeIP, o.PodCIDR)
	}
	if _, _, err := net.ParseCIDR(o.ServiceCIDR); err != nil {
		return fmt.Errorf("service range %q: %w", o.ServiceCIDR, err)
	}
	return nil
}

// ServiceIP is the first Service address, taken by the API server.
func (o Options) ServiceIP() string { return o.serviceAddr(1) }

// DNSIP is the cluster DNS Service's address.
func (o Options) DNSIP() string { return o.serviceAddr(10) }

func (o Options) serviceAddr(n byte) string {
	_, ipnet, err := net.ParseCIDR(o.ServiceCIDR)
	if err != nil {
		return ""
	}
	ip := ipnet.IP.To4()
	out := net.IPv4(ip[0], ip[1], ip[2], ip[3]+n)
	return out.String()
}

// RegistryNodeAddr is the registry on the node address.
func (o Options) RegistryNodeAddr() string {
	_, port, err := net.SplitHostPort(o.Registry)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(o.NodeIP, port)
}

// APIServer is the URL of the API server.
func (o Options) APIServer() string { return fmt.Sprintf("https://%s:%d", o.NodeIP, o.APIPort) }

// AdminKubeconfig is the cluster-admin kubeconfig Slipway writes.
func (o Options) AdminKubeconfig() string { return filepath.Join(o.Dir, "admin.kubeconfig") }

// ContainerdSocket is where containerd's API (and CRI) listens.
func (o Options) ContainerdSocket() string {
	return filepath.Join(o.Dir, "containerd", "containerd.sock")
}
