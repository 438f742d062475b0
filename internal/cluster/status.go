package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Status is what `slipway cluster status` shows: every node and pod with
// whether it is ready.
type Status struct {
	Nodes []NodeStatus `json:"nodes"`
	Pods  []PodStatus  `json:"pods"`
}

// NodeStatus is one node.
type NodeStatus struct {
	Name    string `json:"name"`
	Ready   bool   `json:"ready"`
	Version string `json:"version"`
}

// PodStatus is one pod; Ready when every container is.
type PodStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Phase     string `json:"phase"`
	Ready     bool   `json:"ready"`
}

// ReadStatus asks the API server for the nodes and pods.
func ReadStatus(ctx context.Context, client kubernetes.Interface) (*Status, error) {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking the API server: %w", err)
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	st := &Status{Nodes: []NodeStatus{}, Pods: []PodStatus{}}
	for _, n := range nodes.Items {
		st.Nodes = append(st.Nodes, NodeStatus{Name: n.Name, Ready: NodeReady(&n), Version: n.Status.NodeInfo.KubeletVersion})
	}
	for _, p := range pods.Items {
		ready := len(p.Status.ContainerStatuses) > 0
		for _, cs := range p.Status.ContainerStatuses {
			ready = ready && cs.Ready
		}
		st.Pods = append(st.Pods, PodStatus{Namespace: p.Namespace, Name: p.Name, Phase: string(p.Status.Phase), Ready: ready})
	}
	return st, nil
}

// NodeReady reports the node's Ready condition.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
