package platform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/fsutil"
)

// ErrNoCIAccount: the team was not onboarded with a CI account (a user
// made by hand, or a tenant from before TEAM-ci existed).
var ErrNoCIAccount = errors.New("the team has no CI account")

// ciTokenLifetime bounds the token a run's steps get: longer than the
// runner's own limit on a run, short enough to be worthless soon after.
const ciTokenLifetime = 2 * time.Hour

// CIKubeconfig writes a kubeconfig for the team's CI account (TEAM-ci/ci:
// edit in TEAM-staging, view in TEAM-prod) with a token the API server
// issues now, and returns its path. A run's steps read the cluster with
// it (SLIPWAY_KUBECONFIG) instead of the admin's.
func CIKubeconfig(ctx context.Context, cfg config.Config, team string) (string, error) {
	admin, err := cluster.RESTConfig(ClusterOptions(cfg).AdminKubeconfig())
	if err != nil {
		return "", err
	}
	kube, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return "", err
	}
	ns := flux.TenantNamespace(team, flux.CIOverlay)
	token, err := issueCIToken(ctx, kube, team, ciTokenLifetime)
	if err != nil {
		return "", err
	}
	ca := admin.CAData
	if len(ca) == 0 && admin.CAFile != "" {
		if ca, err = os.ReadFile(admin.CAFile); err != nil {
			return "", err
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["slipway"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: ca}
	kc.AuthInfos[ns] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["slipway"] = &clientcmdapi.Context{Cluster: "slipway", AuthInfo: ns, Namespace: flux.TenantNamespace(team, "staging")}
	kc.CurrentContext = "slipway"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(cfg.Home, "pipelines", "credentials", ns+".kubeconfig")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return path, fsutil.WriteFileAtomic(path, data, 0o600)
}

// issueCIToken asks the API server for a token of the team's CI
// ServiceAccount (TEAM-ci/ci) that lasts lifetime.
func issueCIToken(ctx context.Context, kube kubernetes.Interface, team string, lifetime time.Duration) (string, error) {
	ns := flux.TenantNamespace(team, flux.CIOverlay)
	seconds := int64(lifetime / time.Second)
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, flux.CIAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("%w (%s/%s): ops runs `slipway tenant create %s` to add it", ErrNoCIAccount, ns, flux.CIAccount, team)
	}
	if err != nil {
		return "", fmt.Errorf("issuing a token for %s/%s: %w", ns, flux.CIAccount, err)
	}
	return tr.Status.Token, nil
}
