package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

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
	c := &Cluster{opts: opts}
	c.unmountLeftovers()
	if err := os.RemoveAll(opts.Dir); err != nil {
		return fmt.Errorf("deleting %s: %w", opts.Dir, err)
	}
	return nil
}
