package cluster

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/pki"
)

// The cluster's certificates live under pki/: one CA signs a serving
// certificate per server and a client certificate per component. They are
// made once and kept, so a restart keeps every kubeconfig valid.

// ensurePKI writes (or reuses) the CA, the certificates and the
// service-account key pair.
func (c *Cluster) ensurePKI() error {
	dir := c.pkiDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"), "slipway-cluster-ca")
	if err != nil {
		return fmt.Errorf("the cluster CA: %w (run `slipway cluster reset`)", err)
	}
	node := c.opts.NodeName
	specs := []pki.Spec{
		{Name: "apiserver", CN: "kube-apiserver", Server: true,
			DNS: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", node},
			IPs: []net.IP{net.ParseIP(c.opts.ServiceIP()), net.ParseIP("127.0.0.1"), net.ParseIP(c.opts.NodeIP)}},
		{Name: "apiserver-kubelet-client", CN: "kube-apiserver-kubelet-client", Orgs: []string{"kubeadm:cluster-admins"}, Client: true},
		{Name: "etcd", CN: "etcd", Server: true, Client: true, DNS: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}},
		{Name: "apiserver-etcd-client", CN: "kube-apiserver-etcd-client", Client: true},
		{Name: "admin", CN: "slipway-admin", Orgs: []string{"system:masters"}, Client: true},
		{Name: "controller-manager", CN: "system:kube-controller-manager", Client: true},
		{Name: "scheduler", CN: "system:kube-scheduler", Client: true},
		{Name: "kube-proxy", CN: "system:kube-proxy", Client: true},
		{Name: "kubelet", CN: "system:node:" + node, Orgs: []string{"system:nodes"}, Client: true},
		// Prometheus reads the API server, the kubelet and cAdvisor as
		// this user, bound to a role that may only read (MonitoringRBAC).
		{Name: "prometheus", CN: PrometheusUser, Client: true},
		{Name: "kubelet-serving", CN: node, Server: true, DNS: []string{node, "localhost"}, IPs: []net.IP{net.ParseIP(c.opts.NodeIP), net.ParseIP("127.0.0.1")}},
	}
	for _, s := range specs {
		if _, err := os.Stat(filepath.Join(dir, s.Name+".crt")); err == nil {
			continue
		}
		if err := ca.Issue(dir, s); err != nil {
			return fmt.Errorf("issuing the %s certificate: %w", s.Name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sa.key")); err != nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		if err := pki.WriteKey(filepath.Join(dir, "sa.key"), key); err != nil {
			return err
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
			return err
		}
	}
	return nil
}
