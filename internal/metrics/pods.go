package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Pods exports the state of every pod's containers under the names
// kube-state-metrics gives them, which alert rules written for it expect:
// kube_pod_container_status_restarts_total and
// kube_pod_container_status_waiting_reason (1 for the reason a container
// waits, such as CrashLoopBackOff). It lists pods from the API server's
// watch cache at each scrape and keeps nothing between scrapes.
type Pods struct {
	// Connect makes the client on first use (the cluster may start
	// after the collector is registered).
	Connect func() (kubernetes.Interface, error)

	once   sync.Once
	client kubernetes.Interface
	err    error
}

var (
	podRestarts = prometheus.NewDesc("kube_pod_container_status_restarts_total",
		"How many times a pod's container has restarted.", []string{"namespace", "pod", "container"}, nil)
	podWaiting = prometheus.NewDesc("kube_pod_container_status_waiting_reason",
		"1 for the reason a pod's container is waiting (CrashLoopBackOff, ImagePullBackOff, ...).", []string{"namespace", "pod", "container", "reason"}, nil)
)

func (p *Pods) Describe(ch chan<- *prometheus.Desc) {
	ch <- podRestarts
	ch <- podWaiting
}

// podsListTimeout bounds one scrape's list.
const podsListTimeout = 5 * time.Second

func (p *Pods) Collect(ch chan<- prometheus.Metric) {
	p.once.Do(func() { p.client, p.err = p.Connect() })
	if p.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), podsListTimeout)
	defer cancel()
	list, err := p.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return
	}
	for _, pod := range list.Items {
		for _, cs := range pod.Status.ContainerStatuses {
			ch <- prometheus.MustNewConstMetric(podRestarts, prometheus.CounterValue, float64(cs.RestartCount), pod.Namespace, pod.Name, cs.Name)
			if w := cs.State.Waiting; w != nil && w.Reason != "" {
				ch <- prometheus.MustNewConstMetric(podWaiting, prometheus.GaugeValue, 1, pod.Namespace, pod.Name, cs.Name, w.Reason)
			}
		}
	}
}
