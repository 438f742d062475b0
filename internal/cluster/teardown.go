package cluster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/procfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// removeAllPods stops and removes every pod sandbox through containerd's
// CRI API before containerd stops. That ends the containers' shims and lets
// the CNI plugins release the pods' network namespaces and addresses; the
// kubelet starts the pods again on the next `up`.
func (c *Cluster) removeAllPods(ctx context.Context) {
	conn, err := grpc.NewClient("unix://"+c.opts.ContainerdSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return
	}
	defer conn.Close()
	rt := cri.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	pods, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		_, _ = rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: p.Id})
		_, _ = rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: p.Id})
	}
}

// unmountLeftovers unmounts whatever is still mounted under the cluster's
// directory (volumes the kubelet mounted, container root file systems),
// deepest first.
func (c *Cluster) unmountLeftovers() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], c.opts.Dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// Reset deletes all cluster state. Nothing may be running.
func Reset(opts Options) error {
	ClearLeftovers(opts)
	if err := os.RemoveAll(opts.Dir); err != nil {
		return fmt.Errorf("deleting %s: %w", opts.Dir, err)
	}
	return nil
}

// Leftovers is what a cluster whose slipway was killed left behind.
type Leftovers struct {
	// Shims are containerd's shims of this cluster, still running (with
	// the pods' containers under them).
	Shims int
	// Netns are pod network namespaces on the cluster's pod network.
	Netns int
	// NetworkInUse says why the pod network was left alone: the ports of
	// a cluster were still in use, by another cluster running here.
	NetworkInUse string
}

// Any says whether something was left.
func (l Leftovers) Any() bool { return l.Shims+l.Netns > 0 }

func (l Leftovers) String() string {
	return fmt.Sprintf("%d container shim(s) with their containers, %d pod network namespace(s)", l.Shims, l.Netns)
}

// ClearLeftovers ends what a cluster of this directory left running when
// its slipway was killed (SIGKILL takes the cluster's programs with it,
// but containerd's shims and the containers under them are made to
// outlive containerd): the containers and their shims, the pods' network
// namespaces (their veths go with them), mounts under the directory,
// containerd's runtime state and the pod address reservations. Nothing of
// the cluster may be running: no pod survives this.
func ClearLeftovers(opts Options) Leftovers {
	c := &Cluster{opts: opts}
	var left Leftovers
	c.awaitKilledPrograms()
	shims := procfs.WithArgs("-address", opts.ContainerdSocket())
	left.Shims = len(shims)
	if len(shims) > 0 {
		// A container's first process is a child of its shim; killing it
		// ends everything in the container's PID namespace.
		victims := append(childrenOf(shims), shims...)
		for _, pid := range victims {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		procfs.WaitGone(victims, time.Now().Add(10*time.Second))
	}
	// The pod network and the bridge's name are the same for every
	// state directory: while another cluster runs here, they are its.
	if err := c.awaitPortsFree(time.Now().Add(killedProgramsGrace)); err == nil {
		left.Netns = c.deletePodNetns()
	} else {
		left.NetworkInUse = err.Error()
	}
	c.unmountLeftovers()
	// Runtime state only: containerd starts from it as after a reboot,
	// and the kubelet makes the pods again.
	_ = os.RemoveAll(c.path("containerd", "state"))
	_ = os.RemoveAll(c.path("cni", "ipam"))
	return left
}

// killedProgramsGrace bounds the wait for a killed run's programs to end.
const killedProgramsGrace = 15 * time.Second

// awaitKilledPrograms waits until the programs of a killed run of this
// cluster (etcd, the Kubernetes programs, containerd) have ended. The kernel
// sends them SIGKILL when their slipway dies, but a large process takes a
// moment to go, and until it has, its port is busy: the checks below would
// take the dying cluster for another one running here and leave its pods'
// network namespaces behind. Only those programs are waited for, known by
// the program's name they run under and the directory in their
// arguments; a user's `tail -f` of a log under the directory is none of
// them. By name, not path: `slipway down` clears a killed run without
// building or finding the programs first.
func (c *Cluster) awaitKilledPrograms() {
	programs := append([]string{"containerd"}, NodePrograms...)
	inDir := func(arg string) bool { return strings.Contains(arg, c.opts.Dir+"/") }
	var dying []int
	for _, pid := range procfs.PIDs() {
		args := procfs.Args(pid)
		if pid != os.Getpid() && len(args) > 1 && slices.Contains(programs, filepath.Base(args[0])) && slices.ContainsFunc(args[1:], inDir) {
			dying = append(dying, pid)
		}
	}
	procfs.WaitGone(dying, time.Now().Add(killedProgramsGrace))
}

// awaitPortsFree waits until the cluster's ports are free, or the
// deadline. A killed program that is still ending holds its listening
// sockets after /proc has stopped showing its arguments (the kernel
// drops its memory, and with it the command line, before closing its
// files), so awaitKilledPrograms cannot see it; its ports can.
func (c *Cluster) awaitPortsFree(deadline time.Time) error {
	for {
		err := c.checkPortsFree()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StopLeftovers clears the leftovers of a killed cluster and its network
// (the bridge and the kubelet's iptables chains), for `slipway down` when
// nothing runs.
func StopLeftovers(opts Options) (Leftovers, error) {
	left := ClearLeftovers(opts)
	c := &Cluster{opts: opts}
	if left.NetworkInUse != "" {
		return left, nil // another cluster runs here and uses the bridge
	}
	return left, c.teardownNetwork()
}

// childrenOf lists the processes whose parent is one of parents.
func childrenOf(parents []int) []int {
	var out []int
	for _, pid := range procfs.PIDs() {
		if slices.Contains(parents, procfs.Parent(pid)) {
			out = append(out, pid)
		}
	}
	return out
}

// deletePodNetns deletes the network namespaces containerd made for pods
// (/run/netns/cni-…) that hold an address of this cluster's pod network.
func (c *Cluster) deletePodNetns() int {
	_, pods, err := net.ParseCIDR(c.opts.PodCIDR)
	if err != nil {
		return 0
	}
	names, _ := filepath.Glob("/run/netns/cni-*")
	n := 0
	for _, p := range names {
		name := filepath.Base(p)
		out, err := exec.Command("ip", "-n", name, "-o", "-4", "addr", "show").Output()
		if err != nil || !holdsAddrIn(string(out), pods) {
			continue
		}
		if exec.Command("ip", "netns", "delete", name).Run() == nil {
			n++
		}
	}
	return n
}

// holdsAddrIn says whether `ip -o addr` output has an address in cidr.
func holdsAddrIn(ipAddrOutput string, cidr *net.IPNet) bool {
	fields := strings.Fields(ipAddrOutput)
	for i, f := range fields {
		if f == "inet" && i+1 < len(fields) {
			if ip, _, err := net.ParseCIDR(fields[i+1]); err == nil && cidr.Contains(ip) {
				return true
			}
		}
	}
	return false
}
