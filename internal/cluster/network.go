package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// setupNetwork makes the node's bridge with its address and turns on the
// kernel settings Services and pod traffic need. Doing it before anything
// starts means the API server can listen on the node address at once.
func (c *Cluster) setupNetwork() error {
	for _, kv := range [][2]string{
		{"/proc/sys/net/ipv4/ip_forward", "1"},
		{"/proc/sys/net/bridge/bridge-nf-call-iptables", "1"},
	} {
		if err := os.WriteFile(kv[0], []byte(kv[1]), 0o644); err != nil {
			return fmt.Errorf("setting %s: %w (the cluster needs root and the br_netfilter module)", kv[0], err)
		}
	}
	if _, err := net.InterfaceByName(c.opts.Bridge); err != nil {
		if out, err := exec.Command("ip", "link", "add", c.opts.Bridge, "type", "bridge").CombinedOutput(); err != nil {
			return fmt.Errorf("creating bridge %s: %v: %s", c.opts.Bridge, err, out)
		}
	}
	_, pods, _ := net.ParseCIDR(c.opts.PodCIDR)
	ones, _ := pods.Mask.Size()
	addr := fmt.Sprintf("%s/%d", c.opts.NodeIP, ones)
	out, err := exec.Command("ip", "-o", "addr", "show", "dev", c.opts.Bridge).CombinedOutput()
	if err != nil {
		return fmt.Errorf("reading bridge %s: %v: %s", c.opts.Bridge, err, out)
	}
	if !strings.Contains(string(out), " "+addr+" ") {
		if out, err := exec.Command("ip", "addr", "add", addr, "dev", c.opts.Bridge).CombinedOutput(); err != nil {
			return fmt.Errorf("adding %s to %s: %v: %s", addr, c.opts.Bridge, err, out)
		}
	}
	if out, err := exec.Command("ip", "link", "set", c.opts.Bridge, "up").CombinedOutput(); err != nil {
		return fmt.Errorf("bringing %s up: %v: %s", c.opts.Bridge, err, out)
	}
	return nil
}

// teardownNetwork removes the bridge and kube-proxy's rules.
func (c *Cluster) teardownNetwork() error {
	var errs []string
	if proxy := c.opts.Binaries["kube-proxy"]; proxy != "" {
		if out, err := exec.Command(proxy, "--cleanup").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("kube-proxy --cleanup: %v: %s", err, lastLine(out)))
		}
	}
	removeKubeletChains()
	if _, err := net.InterfaceByName(c.opts.Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "del", c.opts.Bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("removing %s: %v: %s", c.opts.Bridge, err, out))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleaning up the network: %s", strings.Join(errs, "; "))
	}
	return nil
}

// removeKubeletChains deletes the iptables chains the kubelet makes for
// itself (kube-proxy --cleanup leaves them), and the jumps into them.
func removeKubeletChains() {
	for _, tool := range []string{"iptables", "ip6tables"} {
		run := func(args ...string) { _ = exec.Command(tool, args...).Run() }
		for _, hook := range []string{"INPUT", "OUTPUT"} {
			run("-t", "filter", "-D", hook, "-j", "KUBE-FIREWALL")
		}
		for _, tc := range [][2]string{
			{"filter", "KUBE-FIREWALL"}, {"filter", "KUBE-KUBELET-CANARY"},
			{"nat", "KUBE-KUBELET-CANARY"}, {"mangle", "KUBE-KUBELET-CANARY"}, {"mangle", "KUBE-IPTABLES-HINT"},
		} {
			run("-t", tc[0], "-F", tc[1])
			run("-t", tc[0], "-X", tc[1])
		}
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// checkPortsFree refuses to start when something already listens where a
// component will: an etcd left from an earlier run once made a new API
// server silently use old data.
func (c *Cluster) checkPortsFree() error {
	ports := []string{"127.0.0.1:2379", "127.0.0.1:2380", fmt.Sprintf("%s:%d", c.opts.NodeIP, c.opts.APIPort),
		"127.0.0.1:10257", "127.0.0.1:10259", "127.0.0.1:10248", c.opts.NodeIP + ":10250", "127.0.0.1:10256", "127.0.0.1:10249"}
	var busy []string
	for _, p := range ports {
		ln, err := net.Listen("tcp", p)
		if errors.Is(err, syscall.EADDRINUSE) {
			busy = append(busy, p)
			continue
		}
		if err != nil {
			continue // the node address does not exist before the bridge does
		}
		ln.Close()
	}
	if len(busy) > 0 {
		return fmt.Errorf("ports in use: %s; another cluster (or a leftover etcd or kubelet) is running: stop it (`slipway down`) and try again", strings.Join(busy, ", "))
	}
	return nil
}
