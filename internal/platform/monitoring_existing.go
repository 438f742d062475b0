package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/monitoring"
	"github.com/slipway-dev/slipway/internal/release"
)

// On an existing cluster Prometheus runs on this host, as on the embedded
// one, but the cluster's nodes and pods are not this host's to reach: it
// reads every target through the API server's proxy, as a ServiceAccount
// of the cluster whose token the platform asks for and renews.

// prometheusAccount is Prometheus' ServiceAccount on an existing cluster,
// in the platform's own namespace, where no team has rights.
const prometheusAccount = "prometheus"

// prometheusTokenLifetime is how long a token is asked for; the API server
// may give less, and the platform renews it at half its life.
const prometheusTokenLifetime = 24 * time.Hour

// proxiedMonitoringRBAC lets Prometheus' account discover and read
// metrics through the API server, and nothing more.
var proxiedMonitoringRBAC = cluster.ProxiedMonitoringRBAC(release.EvidenceNamespace, prometheusAccount)

// prometheusToken keeps the token of Prometheus' account in a file that
// Prometheus reads at each scrape.
type prometheusToken struct {
	client kubernetes.Interface
	file   string
}

// renew asks the API server for a new token, writes it, and returns how
// long it is good for.
func (t prometheusToken) renew(ctx context.Context) (time.Duration, error) {
	seconds := int64(prometheusTokenLifetime / time.Second)
	tr, err := t.client.CoreV1().ServiceAccounts(release.EvidenceNamespace).CreateToken(ctx, prometheusAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("asking for a token of %s/%s: %w", release.EvidenceNamespace, prometheusAccount, err)
	}
	valid := time.Until(tr.Status.ExpirationTimestamp.Time)
	if valid <= 0 {
		return 0, errors.New("the existing cluster gave Prometheus a token that has expired already: is this host's clock right?")
	}
	if err := fsutil.WriteFileAtomic(t.file, []byte(tr.Status.Token), 0o600); err != nil {
		return 0, err
	}
	return valid, nil
}

// keep renews the token at half its life until ctx ends; a failed renewal
// is tried again in a minute, and said on the timeline by say.
func (t prometheusToken) keep(ctx context.Context, valid time.Duration, say func(string)) {
	wait := valid / 2
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		v, err := t.renew(ctx)
		if err != nil {
			if ctx.Err() == nil {
				say(err.Error())
			}
			wait = time.Minute
			continue
		}
		wait = v / 2
	}
}

// existingClusterAccess gives Prometheus its account on the existing
// cluster (applied now, so that a token can be asked for before
// Prometheus starts) and says where the API server is and how it is
// trusted, from the admin kubeconfig's copy. The CA, and the token once
// renewed, go in the monitoring directory's secrets, readable by the
// platform's user only.
func existingClusterAccess(ctx context.Context, cfg config.Config) (monitoring.ClusterAccess, prometheusToken, error) {
	rc, err := cluster.RESTConfig(ClusterOptions(cfg).AdminKubeconfig())
	if err != nil {
		return monitoring.ClusterAccess{}, prometheusToken{}, err
	}
	u, err := url.Parse(rc.Host)
	if err != nil || u.Host == "" {
		return monitoring.ClusterAccess{}, prometheusToken{}, fmt.Errorf("the existing cluster's API server %q: want https://HOST[:PORT]", rc.Host)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	secrets := filepath.Join(monitoringDir(cfg), "secrets")
	access := monitoring.ClusterAccess{APIServer: host, TokenFile: filepath.Join(secrets, "cluster-token"), CA: filepath.Join(secrets, "cluster-ca.crt")}
	ca := rc.CAData
	if len(ca) == 0 && rc.CAFile != "" {
		if ca, err = os.ReadFile(rc.CAFile); err != nil {
			return monitoring.ClusterAccess{}, prometheusToken{}, err
		}
	}
	switch {
	case len(ca) > 0:
		if err := fsutil.WriteFileAtomic(access.CA, ca, 0o600); err != nil {
			return monitoring.ClusterAccess{}, prometheusToken{}, err
		}
	case rc.Insecure:
		access.CA, access.InsecureSkipVerify = "", true
	default:
		// The system's CAs: Prometheus uses them when no file is named.
		access.CA = ""
	}
	if err := cluster.Apply(ctx, rc, []byte(proxiedMonitoringRBAC)); err != nil {
		return monitoring.ClusterAccess{}, prometheusToken{}, fmt.Errorf("giving Prometheus its account on the existing cluster: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return monitoring.ClusterAccess{}, prometheusToken{}, err
	}
	return access, prometheusToken{client: client, file: access.TokenFile}, nil
}
