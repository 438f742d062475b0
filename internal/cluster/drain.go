package cluster

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Cordon marks the node unschedulable (or schedulable again), as
// `kubectl cordon` / `uncordon` do.
func Cordon(ctx context.Context, client kubernetes.Interface, node string, unschedulable bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, unschedulable)
	_, err := client.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

// Drain evicts every pod from the node, as `kubectl drain
// --ignore-daemonsets --delete-emptydir-data --force` does: through the
// Eviction API, so PodDisruptionBudgets are honoured until the deadline,
// and waits until they are gone. Pods no controller recreates are named
// in what it prints. The node must be cordoned first.
func Drain(ctx context.Context, client kubernetes.Interface, node string, within time.Duration, progress io.Writer) error {
	deadline := time.Now().Add(within)
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return err
	}
	var evict []corev1.Pod
	var bare []string
	for _, p := range pods.Items {
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror || ownedBy(p, "DaemonSet") || p.DeletionTimestamp != nil {
			continue
		}
		if len(p.OwnerReferences) == 0 {
			bare = append(bare, p.Namespace+"/"+p.Name)
		}
		evict = append(evict, p)
	}
	if len(bare) > 0 {
		sort.Strings(bare)
		fmt.Fprintf(progress, "  evicting pods no controller recreates: %s\n", strings.Join(bare, ", "))
	}
	pending := map[types.UID]corev1.Pod{}
	for _, p := range evict {
		pending[p.UID] = p
	}
	for len(pending) > 0 {
		for uid, p := range pending {
			err := client.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}})
			switch {
			case err == nil, apierrors.IsNotFound(err):
				delete(pending, uid)
			case apierrors.IsTooManyRequests(err):
				// A PodDisruptionBudget holds it for now; try again.
			default:
				return fmt.Errorf("evicting %s/%s: %w", p.Namespace, p.Name, err)
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var names []string
			for _, p := range pending {
				names = append(names, p.Namespace+"/"+p.Name)
			}
			sort.Strings(names)
			return fmt.Errorf("disruption budgets kept %s on the node for %s", strings.Join(names, ", "), within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	// Wait until the evicted pods have ended (their grace periods run).
	for {
		left := 0
		for _, p := range evict {
			cur, err := client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err == nil && cur.UID == p.UID {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d evicted pods still on the node after %s", left, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func ownedBy(p corev1.Pod, kind string) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == kind {
			return true
		}
	}
	return false
}
