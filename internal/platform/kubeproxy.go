package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/client-go/rest"

	"github.com/slipway-dev/slipway/internal/auth"
)

// KubePath is where the platform passes a team's CI account through to
// the cluster's API: a pipeline's steps on an agent elsewhere (Azure
// DevOps's own) reach the cluster as the team's CI ServiceAccount with
// nothing but the pipeline's variables, the platform's URL and the CI
// account's password, as they reach the registry and the API. The
// platform authenticates the account, and the request goes on to the API
// server with a token of TEAM-ci/ci, whose RBAC (edit in TEAM-staging,
// view in TEAM-prod) decides the rest.
const KubePath = APIPath + "kube/"

// kubeTokenLifetime is how long a token the proxy asks for lasts; it is
// used until half of that has passed.
const kubeTokenLifetime = time.Hour

// ciAccountTeam is the team whose CI account user is (ci-TEAM, pushing
// only under TEAM/), or "". Only CI accounts pass through KubePath: a
// team's people change the cluster through their pipeline, not around
// it, and ops has the admin kubeconfig.
func ciAccountTeam(user *auth.User) string {
	team := ownTeam(user)
	if team == "" || user.Admin || user.Name != "ci-"+team {
		return ""
	}
	return team
}

// kubeProxy is what the API keeps for KubePath: the proxy to the API
// server, and a token per team.
type kubeProxy struct {
	mu     sync.Mutex
	proxy  *httputil.ReverseProxy
	tokens map[string]kubeToken // by team
	// asking has a team's requests that find no fresh token wait for one
	// TokenRequest, and no other team's wait on it: asking the API server
	// may take seconds when it is busy.
	asking singleflight.Group
}

type kubeToken struct {
	token string
	renew time.Time
}

// serveKube passes a team's CI account's request on to the API server.
func (a *API) serveKube(w http.ResponseWriter, r *http.Request) {
	user, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	team := ciAccountTeam(user)
	if team == "" {
		writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf("user %s may not reach the cluster through the platform: only a team's CI account (ci-TEAM) may, as that team's CI ServiceAccount", user.Name)})
		return
	}
	proxy, err := a.kube.reverseProxy(a)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	token, err := a.kube.token(r.Context(), a, team)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, ErrNoCIAccount) {
			status = http.StatusForbidden
		}
		writeJSON(w, status, apiError{err.Error()})
		return
	}
	out := r.Clone(r.Context())
	out.URL.Path = "/" + strings.TrimPrefix(r.URL.Path, KubePath)
	out.URL.RawPath = ""
	// The caller's own credentials, and any claim to act as someone else,
	// stop here: the API server hears the CI account's token and nothing
	// else about who asks.
	for name := range out.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "impersonate-") || strings.HasPrefix(lower, "x-remote-") {
			out.Header.Del(name)
		}
	}
	out.Header.Set("Authorization", "Bearer "+token)
	proxy.ServeHTTP(w, out)
}

// reverseProxy is made once, to the API server the platform's clients
// reach, trusting the cluster's CA.
func (k *kubeProxy) reverseProxy(a *API) (*httputil.ReverseProxy, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proxy != nil {
		return k.proxy, nil
	}
	c, err := a.clients()
	if err != nil {
		return nil, err
	}
	target, err := url.Parse(c.Config.Host)
	if err != nil {
		return nil, fmt.Errorf("the cluster's address %q: %w", c.Config.Host, err)
	}
	// The cluster's CA, and no credentials of the admin's.
	transport, err := rest.TransportFor(rest.AnonymousClientConfig(c.Config))
	if err != nil {
		return nil, err
	}
	k.proxy = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: transport,
		// Watches and logs stream.
		FlushInterval: -1,
	}
	return k.proxy, nil
}

// token is a token of the team's CI ServiceAccount, asked for once and
// used until half its life has passed.
func (k *kubeProxy) token(ctx context.Context, a *API, team string) (string, error) {
	k.mu.Lock()
	t, ok := k.tokens[team]
	k.mu.Unlock()
	if ok && time.Now().Before(t.renew) {
		return t.token, nil
	}
	token, err, _ := k.asking.Do(team, func() (any, error) {
		// The request is shared by every caller waiting on it, so the
		// first caller going away does not end it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		c, err := a.clients()
		if err != nil {
			return "", err
		}
		token, err := issueCIToken(ctx, c.Kube, team, kubeTokenLifetime)
		if err != nil {
			return "", err
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.tokens == nil {
			k.tokens = map[string]kubeToken{}
		}
		k.tokens[team] = kubeToken{token: token, renew: time.Now().Add(kubeTokenLifetime / 2)}
		return token, nil
	})
	if err != nil {
		return "", err
	}
	return token.(string), nil
}

// TeamKubeConfig is a client configuration that reaches the cluster
// through the platform (KubePath) as the CI account user, which must be
// a team's CI account. The platform is trusted as HTTPS clients here
// trust it: its CA file when this machine has the platform's state, else
// the system's roots (SSL_CERT_FILE in a pipeline's environment).
func (p *Platform) TeamKubeConfig(user, password string) (*rest.Config, error) {
	if p.GitURL() == "" {
		return nil, ErrNotRunning
	}
	cfg := &rest.Config{Host: p.GitURL() + strings.TrimSuffix(KubePath, "/"), Username: user, Password: password}
	if ca := p.State.Addresses.CA; ca != "" {
		if _, err := os.Stat(ca); err == nil {
			cfg.TLSClientConfig.CAFile = ca
		}
	}
	cfg.QPS, cfg.Burst = 50, 300
	return cfg, nil
}
