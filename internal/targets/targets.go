// Package targets checks the existing parts a platform can use in place
// of its embedded ones — a Kubernetes cluster, an OCI registry, a git
// host — before anything is written to them: each check reads, or asks
// the server whether it would allow a write, and says in one line what is
// wrong and what to do (the wrong context, credentials a server refuses,
// a push it would refuse, a Flux too old or without its lockdown).
package targets

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/trust"
)

// timeout bounds each server's answers: a target that does not answer in
// it is reported as unreachable.
const timeout = 15 * time.Second

// Result is one target's check: what was found, or the problem.
type Result struct {
	Target string
	// Found says what the check saw, when it passed.
	Found string
	Err   error
	// Details are further lines (Flux's controllers, one each).
	Details []flux.Finding
}

// Cluster is a Kubernetes cluster reached through a kubeconfig context.
type Cluster struct {
	// Kubeconfig is the file; empty means $KUBECONFIG or ~/.kube/config.
	Kubeconfig string
	// Context is the context to use; empty means the file's current one.
	Context string
}

// Check connects with the context, asks whether its user may do what
// Slipway does on a cluster (everything: it creates namespaces, RBAC and
// Flux's CRDs), and checks the Flux in flux-system, if one is there.
func (c Cluster) Check(ctx context.Context) Result {
	res := Result{Target: "cluster"}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	// Named as the files it is read from: $KUBECONFIG's list, or the
	// default file.
	source := strings.Join(rules.GetLoadingPrecedence(), string(os.PathListSeparator))
	if c.Kubeconfig != "" {
		rules.ExplicitPath, source = c.Kubeconfig, c.Kubeconfig
	}
	raw, err := rules.Load()
	if err != nil {
		res.Err = fmt.Errorf("reading the kubeconfig %s: %w", source, err)
		return res
	}
	contextName := c.Context
	if contextName == "" {
		contextName = raw.CurrentContext
	}
	if contextName == "" {
		res.Err = fmt.Errorf("%s names no current context: name one with --context (it has: %s)", source, contextNames(raw.Contexts))
		return res
	}
	if _, ok := raw.Contexts[contextName]; !ok {
		res.Err = fmt.Errorf("context %q is not in %s (it has: %s)", contextName, source, contextNames(raw.Contexts))
		return res
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*raw, contextName, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
	if err != nil {
		res.Err = fmt.Errorf("context %q of %s: %w", contextName, source, err)
		return res
	}
	rc.Timeout = timeout
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		res.Err = fmt.Errorf("context %q: %w", contextName, err)
		return res
	}
	version, err := client.Discovery().ServerVersion()
	if err != nil {
		res.Err = explainAPIError(err, contextName, rc.Host)
		return res
	}
	review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "*", Group: "*", Resource: "*"}},
	}, metav1.CreateOptions{})
	switch {
	case err != nil:
		res.Err = explainAPIError(err, contextName, rc.Host)
		return res
	case !review.Status.Allowed:
		res.Err = fmt.Errorf("context %q's user is not a cluster admin on %s: Slipway creates the teams' namespaces and RBAC and Flux's CRDs there; use an admin context", contextName, rc.Host)
		return res
	}
	res.Found = fmt.Sprintf("context %q: %s, Kubernetes %s, cluster admin", contextName, rc.Host, version.GitVersion)

	deployments, err := client.AppsV1().Deployments(flux.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		res.Err = fmt.Errorf("reading %s: %w", flux.Namespace, err)
		return res
	}
	if len(deployments.Items) == 0 {
		res.Found += "; no Flux in " + flux.Namespace + " (Slipway would install its own)"
		return res
	}
	installed, err := flux.ReadInstalled(ctx, client)
	if err != nil {
		res.Err = err
		return res
	}
	res.Details = flux.Verify(installed)
	for _, f := range res.Details {
		if f.Problem != "" {
			res.Err = fmt.Errorf("the Flux in %s is not one Slipway can use (see below): install or upgrade Flux with the flags shown, or remove it and let Slipway install its own", flux.Namespace)
			break
		}
	}
	return res
}

func contextNames(m map[string]*clientcmdapi.Context) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "no contexts"
	}
	return strings.Join(names, ", ")
}

// explainAPIError turns what the API server (or the way to it) answered
// into what to do.
func explainAPIError(err error, contextName, host string) error {
	var netErr net.Error
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server at %s refuses context %q's credentials: renew them (az aks get-credentials, or the cluster's own way)", host, contextName)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("the API server at %s lets context %q's user in but not do this: %v", host, contextName, err)
	case credentials.TLSRefused(err):
		return trust.Explain(err, "the API server "+host+" of context "+contextName)
	case errors.As(err, &netErr):
		return fmt.Errorf("cannot reach the API server at %s (context %q): %v", host, contextName, err)
	}
	return fmt.Errorf("asking the API server at %s (context %q): %w", host, contextName, err)
}

// Registry is an OCI registry reached with credentials from a keychain.
type Registry struct {
	// Host is host[:port].
	Host string
	// Repository is where a push is tried (never completed).
	Repository string
	// Insecure talks plain HTTP.
	Insecure bool
	// CAFile, when set, is the CA the registry's certificate is signed by,
	// when it is not one the system trusts.
	CAFile   string
	Keychain authn.Keychain
	// Pull, when set, is a tag of Repository whose manifest is asked for
	// instead: may the user pull it (and is it there).
	Pull string
}

// Check asks the registry to start an upload to Repository as the
// keychain's user, and cancels it: what a push would need, nothing
// written; or, with Pull, for that tag's manifest. The token flow (ACR's)
// and Basic are both followed.
func (r Registry) Check(ctx context.Context) Result {
	res := Result{Target: "registry"}
	var opts []name.Option
	if r.Insecure {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(r.Host+"/"+r.Repository, opts...)
	if err != nil {
		res.Err = fmt.Errorf("registry %s, repository %s: %w", r.Host, r.Repository, err)
		return res
	}
	who := "anonymously"
	if a, err := r.Keychain.Resolve(repo); err == nil {
		if cfg, err := a.Authorization(); err == nil && cfg.Username != "" {
			who = "as " + cfg.Username
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := remote.DefaultTransport
	if r.CAFile != "" {
		if tr, err = transportTrusting(r.CAFile, "the registry "+r.Host); err != nil {
			res.Err = err
			return res
		}
	}
	if r.Pull != "" {
		_, err = remote.Head(repo.Tag(r.Pull), remote.WithAuthFromKeychain(r.Keychain), remote.WithTransport(tr), remote.WithContext(ctx))
	} else {
		err = remote.CheckPushPermission(repo.Tag("slipway-check"), r.Keychain, &contextTransport{ctx: ctx, next: tr})
	}
	var terr *transport.Error
	switch {
	case err == nil && r.Pull != "":
		res.Found = fmt.Sprintf("%s %s: may pull %s:%s", r.Host, who, r.Repository, r.Pull)
	case err == nil:
		res.Found = fmt.Sprintf("%s %s: may push to %s", r.Host, who, r.Repository)
	case r.Pull != "" && errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		res.Err = fmt.Errorf("registry %s has no %s:%s (or hides it from the user %s)", r.Host, r.Repository, r.Pull, strings.TrimPrefix(who, "as "))
	case r.Pull != "" && errors.As(err, &terr) && terr.StatusCode == http.StatusForbidden:
		res.Err = fmt.Errorf("registry %s refuses a pull of %s %s: give that user pull rights there (on ACR, the AcrPull role or a token with content/read)", r.Host, r.Repository, who)
	case errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized:
		res.Err = fmt.Errorf("registry %s refuses the credentials (%s): log in with `slipway login %s` or `docker login`, or set SLIPWAY_REGISTRY_USERNAME and _PASSWORD", r.Host, who, r.Host)
	case errors.As(err, &terr) && terr.StatusCode == http.StatusForbidden:
		res.Err = fmt.Errorf("registry %s refuses a push to %s %s: give that user push rights there (on ACR, the AcrPush role)", r.Host, r.Repository, who)
	case credentials.TLSRefused(err):
		res.Err = trust.Explain(err, "the registry "+r.Host)
	default:
		res.Err = fmt.Errorf("cannot reach registry %s: %v", r.Host, err)
	}
	return res
}

// contextTransport ends each request with ctx: go-containerregistry's
// permission check takes no context of its own.
type contextTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

func (t *contextTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(r.WithContext(t.ctx))
}

// transportTrusting is an HTTP transport that trusts the CA in caFile
// (only it: a host with a private CA), for the server what names.
func transportTrusting(caFile, what string) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading %s's CA file: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s's CA file %s holds no certificate", what, caFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// Git is a repository on a git host, over smart HTTP.
type Git struct {
	// URL is the repository's https:// URL; credentials may be in it.
	URL                string
	Username, Password string
	// CAFile, when set, is the CA the host's certificate is signed by,
	// trusted instead of the system's.
	CAFile string
	// CredentialsHint, when set, says where the credentials come from
	// when the host refuses them (by default: the URL or the
	// environment, as `slipway target check` reads them).
	CredentialsHint string
	// Read asks whether the account may read (fetch) rather than push.
	Read bool
}

// Check asks the host for what a push begins with (the receive-pack
// advertisement), which hosts answer only for users who may push; with
// Read, for what a fetch begins with (the upload-pack advertisement).
func (g Git) Check(ctx context.Context) Result {
	res := Result{Target: "git"}
	u, err := url.Parse(g.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		res.Err = fmt.Errorf("git URL %q: want https://HOST/PATH.git", redact(g.URL))
		return res
	}
	user, password := g.Username, g.Password
	if u.User != nil {
		user = u.User.Username()
		password, _ = u.User.Password()
		u.User = nil
	}
	shown := u.String()
	service, may, refused := "git-receive-pack", "may push", "a push to"
	if g.Read {
		service, may, refused = "git-upload-pack", "may read", "reading"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(shown, "/")+"/info/refs?service="+service, nil)
	if err != nil {
		res.Err = err
		return res
	}
	who := "anonymously"
	if user != "" {
		req.SetBasicAuth(user, password)
		who = "as " + user
	}
	req.Header.Set("Git-Protocol", "version=2")
	client := &http.Client{Timeout: timeout}
	if g.CAFile != "" {
		if client.Transport, err = transportTrusting(g.CAFile, "the git host"); err != nil {
			res.Err = err
			return res
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		if credentials.TLSRefused(err) {
			res.Err = trust.Explain(err, "the git host "+u.Host)
		} else {
			res.Err = fmt.Errorf("cannot reach the git host at %s: %v", shown, err)
		}
		return res
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	reason := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-"+service+"-advertisement"):
		res.Found = fmt.Sprintf("%s %s: %s", shown, who, may)
	case resp.StatusCode == http.StatusOK:
		res.Err = fmt.Errorf("%s answered with %q, not git's smart HTTP protocol: is it the repository's clone URL?", shown, resp.Header.Get("Content-Type"))
	case resp.StatusCode == http.StatusUnauthorized:
		hint := g.CredentialsHint
		if hint == "" {
			hint = "set them in the URL or with SLIPWAY_GIT_USERNAME and SLIPWAY_GIT_PASSWORD"
		}
		res.Err = fmt.Errorf("the git host refuses the credentials (%s) for %s: %s (a personal access token on Azure Repos or GitHub)", who, shown, hint)
	case resp.StatusCode == http.StatusForbidden:
		res.Err = fmt.Errorf("the git host refuses %s %s %s: %s", refused, shown, who, reason)
	case resp.StatusCode == http.StatusNotFound:
		res.Err = fmt.Errorf("no repository at %s (or it is hidden from %s): create it first", shown, strings.TrimPrefix(who, "as "))
	default:
		res.Err = fmt.Errorf("the git host answered %s for %s: %s", resp.Status, shown, reason)
	}
	return res
}

// redact hides a password in a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// WriteReport prints each result, and Flux's lines under the cluster, and
// returns an error counting the failed targets.
func WriteReport(w io.Writer, results []Result) error {
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(w, "✗ %-8s %v\n", r.Target, r.Err)
		} else {
			fmt.Fprintf(w, "✔ %-8s %s\n", r.Target, r.Found)
		}
		for _, f := range r.Details {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d targets failed the check; nothing was written to any", failed, len(results))
	}
	return nil
}
