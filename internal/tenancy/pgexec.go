package tenancy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/slipway-dev/slipway/internal/platform"
)

// postgres runs PostgreSQL's own programs (psql, pg_dump, pg_restore) in
// the primary instance of a CNPG Cluster, as the postgres user over the
// pod's local socket: ops's way in, which needs no password and no
// network path from the host.
type postgres struct {
	rc   *rest.Config
	kube kubernetes.Interface
}

func newPostgres(p *platform.Platform) (*postgres, error) {
	rc, err := p.RESTConfig()
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &postgres{rc: rc, kube: kube}, nil
}

// primary is the pod of the Cluster's primary instance.
func (pg *postgres) primary(ctx context.Context, ns, cluster string) (string, error) {
	pods, err := pg.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "cnpg.io/cluster=" + cluster + ",cnpg.io/instanceRole=primary"})
	if err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("Cluster %s in %s has no running primary (slipway kubectl -- get pods -n %s -l cnpg.io/cluster=%s)", cluster, ns, ns, cluster)
}

// exec runs argv in the Cluster's primary's postgres container, with
// stdin when it is not nil and stdout into out. A failure carries what
// the program wrote on stderr.
func (pg *postgres) exec(ctx context.Context, ns, cluster string, argv []string, stdin io.Reader, out io.Writer) error {
	pod, err := pg.primary(ctx, ns, cluster)
	if err != nil {
		return err
	}
	req := pg.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "postgres", Command: argv, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(pg.rc, http.MethodGet, req.URL().String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(pg.rc, http.MethodPost, req.URL())
	if err != nil {
		return err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: out, Stderr: &limitedBuffer{b: &stderr, max: 8 << 10}})
	if err != nil {
		return fmt.Errorf("%s in %s/%s: %w: %s", argv[0], ns, pod, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// sql runs statements with psql in database db and returns what they
// print, unaligned and without headers.
func (pg *postgres) sql(ctx context.Context, ns, cluster, db, statements string) (string, error) {
	var out bytes.Buffer
	err := pg.exec(ctx, ns, cluster, []string{"psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", statements}, nil, &out)
	return strings.TrimSpace(out.String()), err
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
