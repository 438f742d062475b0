// Package cluster runs a single-node Kubernetes cluster assembled from the
// upstream programs: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, Debian's containerd and runc with the CNI bridge plugin,
// the kubelet and kube-proxy, plus CoreDNS as an ordinary Deployment. Every
// program runs as a supervisor.Process under Slipway's supervisor; this
// package writes their certificates and configuration and says, for each,
// how to tell that it is ready.
//
// Network layout, all on this machine: a bridge (slipway0) holds the node
// address and is the pods' gateway; pods get addresses from the pod range
// on it; Services get virtual addresses that kube-proxy turns into iptables
// rules. Nothing is routed off the machine.
package cluster
