package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/cli"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/slipway-dev/slipway/internal/flux"
)

// SmokeCheck is an HTTP check an app repository declares in slipway.yaml:
//
//	smoke:
//	- name: home page
//	  path: /
//	  status: 200
//	  contains: hello
//	- name: a write
//	  method: PUT
//	  path: /items/smoke
//	  body: '{"text": "from the smoke test"}'
//
// Checks run in order, so a write can be read back by the next one.
type SmokeCheck struct {
	Name string `json:"name"`
	// Method is GET (the default), HEAD, POST, PUT, PATCH or DELETE.
	Method string `json:"method,omitempty"`
	Path   string `json:"path"`
	// Body is sent with the request, as application/json when it is JSON.
	Body     string `json:"body,omitempty"`
	Status   int    `json:"status"`
	Contains string `json:"contains"`
}

// smokeMethods are the methods a smoke check may use.
var smokeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// maxSmokeBody bounds a check's request body.
const maxSmokeBody = 64 << 10

// check says what is wrong with a smoke check, if anything.
func (sc SmokeCheck) check() error {
	if err := CheckPath(sc.Path); err != nil {
		return err
	}
	if sc.Method != "" && !slices.Contains(smokeMethods, sc.Method) {
		return fmt.Errorf("method %q: use one of %s", sc.Method, strings.Join(smokeMethods, ", "))
	}
	if len(sc.Body) > maxSmokeBody {
		return fmt.Errorf("body of %d bytes: at most %d", len(sc.Body), maxSmokeBody)
	}
	return nil
}

// AppFile is an app repository's slipway.yaml.
type AppFile struct {
	Smoke []SmokeCheck `json:"smoke"`
}

// ReadAppFile reads slipway.yaml; a missing file declares no checks.
func ReadAppFile(path string) (AppFile, error) {
	var f AppFile
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	for i, c := range f.Smoke {
		if err := c.check(); err != nil {
			return f, fmt.Errorf("%s: smoke check %d: %w", path, i+1, err)
		}
	}
	return f, nil
}

// CheckPath checks a path a smoke check or a bake asks of the app. It is
// appended to the API server's service proxy URL of the app's Service,
// and a "." or ".." segment would be resolved there, above the proxy: a
// team could make the platform read any object of the cluster (another
// team's Secrets) with the platform's rights.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must start with /", p)
	}
	if len(p) > 1024 {
		return fmt.Errorf("path of %d bytes: at most 1024", len(p))
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("path %q: no . or .. segments (it is asked of the app's Service, nothing above it)", p)
		}
	}
	if strings.ContainsAny(p, "\\?#%") {
		return fmt.Errorf("path %q: no \\, ?, # or %%", p)
	}
	return nil
}

// RunTests runs the release's helm test hooks and the smoke checks
// against the version running now, which must be the ready one, and
// records the outcome for that version. The log receives the test pods'
// output.
func RunTests(ctx context.Context, c *Clients, ns, app string, smoke []SmokeCheck, by string, log io.Writer) (*Test, string, error) {
	if log == nil {
		log = io.Discard
	}
	o, hr, err := flux.Get(ctx, c.Dyn, flux.HelmRelease, ns, app)
	if err != nil {
		return nil, "", fmt.Errorf("reading HelmRelease %s/%s: %w", ns, app, err)
	}
	snap, ok := latest(hr)
	if !ok || snap.Status != "deployed" || o.Ready != "True" {
		return nil, "", fmt.Errorf("%s in %s is not deployed and ready (Flux: %s): run slipway wait first", app, ns, o.Message)
	}
	version := snap.ChartVersion
	image, err := readyImage(ctx, c, ns, app)
	if err != nil {
		return nil, version, fmt.Errorf("%s %s in %s: %w", app, version, ns, err)
	}
	// The chart's test hooks are the team's code: they are created as the
	// account the release runs as, never with the caller's rights (a hook
	// that is a ClusterRoleBinding must not be made as cluster-admin).
	account, _, _ := unstructured.NestedString(hr.Object, "spec", "serviceAccountName")
	if account == "" {
		return nil, version, fmt.Errorf("HelmRelease %s/%s names no serviceAccountName: its tests would have no identity of the team's; ops sets it (slipway release create does)", ns, app)
	}
	t := &Test{At: time.Now().UTC(), By: by, Passed: true}
	t.Checks = append(t.Checks, helmTests(c, ns, app, account, log)...)
	for _, sc := range smoke {
		t.Checks = append(t.Checks, smokeCheck(ctx, c, ns, app, sc))
	}
	for _, ch := range t.Checks {
		t.Passed = t.Passed && ch.Passed
	}
	if len(t.Checks) == 0 {
		t.Passed = false
		t.Checks = append(t.Checks, Check{Name: "tests", Message: "the chart has no helm test hooks and slipway.yaml declares no smoke checks: nothing proves this version works"})
	}
	err = update(ctx, c, ns, app, version, func(r *Record) {
		if r.Image == "" {
			r.Image = image
		}
		r.Test = t
	})
	return t, version, err
}

// helmTests runs `helm test` on the release with the Helm SDK, acting as
// the namespace's ServiceAccount account (impersonated, with the groups
// every ServiceAccount has).
func helmTests(c *Clients, ns, app, account string, log io.Writer) []Check {
	settings := cli.New()
	settings.KubeConfig = c.Kubeconfig
	settings.SetNamespace(ns)
	settings.KubeAsUser = "system:serviceaccount:" + ns + ":" + account
	settings.KubeAsGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	cfg := action.NewConfiguration()
	if err := cfg.Init(settings.RESTClientGetter(), ns, "secret"); err != nil {
		return []Check{{Name: "helm test", Message: err.Error()}}
	}
	rt := action.NewReleaseTesting(cfg)
	rt.Namespace = ns
	rt.Timeout = 2 * time.Minute
	reli, shutdown, err := rt.Run(app)
	defer func() { _ = shutdown() }()
	rel, _ := reli.(*releasev1.Release)
	var out []Check
	if rel != nil {
		for _, h := range rel.Hooks {
			isTest := false
			for _, e := range h.Events {
				isTest = isTest || e == releasev1.HookTest
			}
			if !isTest {
				continue
			}
			ch := Check{Name: "helm test " + h.Name, Passed: h.LastRun.Phase == releasev1.HookPhaseSucceeded, Message: string(h.LastRun.Phase)}
			out = append(out, ch)
		}
		var logs bytes.Buffer
		if rt.GetPodLogs(&logs, rel) == nil {
			_, _ = log.Write(logs.Bytes())
		}
	}
	if err != nil {
		out = append(out, Check{Name: "helm test", Message: err.Error()})
	}
	return out
}

// smokeCheck asks the release's Service through the API server's
// service proxy, which works from anywhere the cluster's API is reachable.
func smokeCheck(ctx context.Context, c *Clients, ns, app string, sc SmokeCheck) Check {
	method := sc.Method
	if method == "" {
		method = http.MethodGet
	}
	name := sc.Name
	if name == "" {
		name = method + " " + sc.Path
	}
	ch := Check{Name: name}
	svc, err := appService(ctx, c, ns, app)
	if err != nil {
		ch.Message = err.Error()
		return ch
	}
	want := sc.Status
	if want == 0 {
		want = 200
	}
	if err := sc.check(); err != nil {
		ch.Message = err.Error()
		return ch
	}
	status, body, err := proxyDo(ctx, c, ns, svc, method, sc.Path, sc.Body)
	if err != nil {
		ch.Message = err.Error()
		return ch
	}
	switch {
	case status != want:
		ch.Message = fmt.Sprintf("status %d, want %d: %.200s", status, want, strings.TrimSpace(string(body)))
	case sc.Contains != "" && !strings.Contains(string(body), sc.Contains):
		ch.Message = fmt.Sprintf("the answer does not contain %q: %.200s", sc.Contains, strings.TrimSpace(string(body)))
	default:
		ch.Passed, ch.Message = true, fmt.Sprintf("status %d", status)
	}
	return ch
}

// appService is the release's Service: the one its chart labels with the
// release's name.
func appService(ctx context.Context, c *Clients, ns, app string) (*corev1.Service, error) {
	svcs, err := c.Kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + app})
	if err != nil || len(svcs.Items) == 0 || len(svcs.Items[0].Spec.Ports) == 0 {
		return nil, fmt.Errorf("the release has no Service to check (%v)", err)
	}
	return &svcs.Items[0], nil
}

// proxyGet asks the Service's first port for path through the API
// server's service proxy, which works from anywhere the cluster's API is
// reachable. A status of 0 means no answer.
func proxyGet(ctx context.Context, c *Clients, ns string, svc *corev1.Service, path string) (int, []byte, error) {
	return proxyDo(ctx, c, ns, svc, http.MethodGet, path, "")
}

// proxyDo is proxyGet with a method and a body.
func proxyDo(ctx context.Context, c *Clients, ns string, svc *corev1.Service, method, path, body string) (int, []byte, error) {
	if err := CheckPath(path); err != nil {
		return 0, nil, err
	}
	req := c.Kube.CoreV1().RESTClient().Get().
		AbsPath("/api/v1/namespaces", ns, "services", fmt.Sprintf("%s:%d", svc.Name, svc.Spec.Ports[0].Port), "proxy", strings.TrimPrefix(path, "/"))
	rc, ok := c.Kube.CoreV1().RESTClient().(*rest.RESTClient)
	if !ok {
		return 0, nil, errors.New("this cluster client cannot reach Services through the API server")
	}
	// The HTTP client itself: client-go's Result hides the status of an
	// answer it takes for an error (a 500 of the app's reads as 0).
	var reqBody io.Reader
	if body != "" {
		reqBody = strings.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, req.URL().String(), reqBody)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		hr.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if json.Valid([]byte(body)) {
			hr.Header.Set("Content-Type", "application/json")
		}
	}
	res, err := rc.Client.Do(hr)
	if err != nil {
		return 0, nil, nil // no answer
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, answer, nil
}
