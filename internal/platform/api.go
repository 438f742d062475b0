package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/release"
)

// APIPath is where the platform's API answers, on the git server's
// addresses (the host's and the node's). No repository path can start
// with "-", so it never hides one.
const APIPath = "/-/api/v1/"

// PromotionRequest asks the platform to promote an app's tested version.
type PromotionRequest struct {
	// Team may be empty: the one team with a release of that name in From.
	Team    string `json:"team,omitempty"`
	App     string `json:"app"`
	From    string `json:"from"`
	To      string `json:"to"`
	Version string `json:"version,omitempty"`
	// For names the person the caller acts for (a pipeline's requester);
	// it is recorded, not trusted.
	For string `json:"for,omitempty"`
}

// apiError is the body of every refusal.
type apiError struct {
	Error string `json:"error"`
}

// maxRequestBytes bounds a request body.
const maxRequestBytes = 64 << 10

// promoteTimeout bounds one promotion (the checks and the fleet commit).
const promoteTimeout = 2 * time.Minute

// API serves the platform's API. Promotions go through it so that the one
// writer of prod is the platform: it checks who asks (the platform's users,
// by Basic authentication), that the caller belongs to the app's team (ops
// may promote anything), and the evidence in the platform's own records,
// then commits to the fleet repository as itself, naming who asked.
type API struct {
	Config config.Config
	Users  *auth.Store
	// Promote does the promotion once the caller is allowed; nil means
	// release.Promote on the local cluster and fleet repository.
	Promote func(ctx context.Context, p release.Promotion) (*release.Promoted, error)
	// Clients reach the cluster for readiness and tests; nil means the
	// local cluster's admin kubeconfig.
	Clients func() (*release.Clients, error)
	// Node is the cluster this platform runs, which ops may upgrade; nil
	// when it runs none.
	Node *cluster.Cluster

	kube kubeProxy
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == APIPath+"events":
		a.readEvents(w, r)
		return
	case r.Method == http.MethodGet && r.URL.Path == APIPath+"alerts":
		a.readAlerts(w, r)
		return
	case r.Method == http.MethodGet && r.URL.Path == APIPath+"metrics":
		a.readAppMetrics(w, r)
		return
	case r.URL.Path == APIPath+"silences" || strings.HasPrefix(r.URL.Path, APIPath+"silences/"):
		a.silences(w, r)
		return
	case strings.HasPrefix(r.URL.Path, KubePath):
		a.serveKube(w, r)
		return
	}
	if r.Method == http.MethodPost {
		switch r.URL.Path {
		case APIPath + "promotions":
			a.promote(w, r)
			return
		case APIPath + "readiness":
			a.readiness(w, r)
			return
		case APIPath + "tests":
			a.tests(w, r)
			return
		case APIPath + "bakes":
			a.bake(w, r)
			return
		case APIPath + "cluster/upgrade":
			a.upgrade(w, r)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{"no such API: POST " + APIPath + "promotions, readiness, tests, bakes, cluster/upgrade or silences; GET " + APIPath + "events, alerts, silences or metrics; " + KubePath + " for a team's CI account"})
}

// caller authenticates the request, reads its body into req, and checks
// the user may act for the team (filled in from a team user's own push
// prefix when the request leaves it out). It answers the refusal itself.
func (a *API) caller(w http.ResponseWriter, r *http.Request, req any, team *string) (*auth.User, bool) {
	user, ok := a.authenticate(w, r)
	if !ok {
		return nil, false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"reading the request: " + err.Error()})
		return nil, false
	}
	if *team == "" && !user.Admin {
		// A team's user means its own team.
		if *team = ownTeam(user); *team == "" {
			writeJSON(w, http.StatusBadRequest, apiError{"say which team's app with --team"})
			return nil, false
		}
	}
	if *team != "" {
		if err := flux.ValidTeam(*team); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
			return nil, false
		}
	}
	if !user.Admin && !user.CanPush(*team+"/") {
		writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf("user %s does not belong to team %s: only the team (or ops) may act on its apps", user.Name, *team)})
		return nil, false
	}
	return user, true
}

// authenticate finds the platform's user who asks; it answers the
// refusal itself.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (*auth.User, bool) {
	user, status, err := a.Users.RequestUser(w, r, "slipway")
	if err != nil {
		msg := err.Error()
		if errors.Is(err, auth.ErrNoCredentials) {
			msg = "log in: the platform's API needs a user and password"
		}
		writeJSON(w, status, apiError{msg})
		return nil, false
	}
	return user, true
}

// ownTeam is the team a team's user belongs to (its one push prefix),
// "" for any other user.
func ownTeam(user *auth.User) string {
	if len(user.Push) != 1 {
		return ""
	}
	team := strings.TrimSuffix(user.Push[0], "/")
	if flux.ValidTeam(team) != nil {
		return ""
	}
	return team
}

// releaseCaller is caller for a request about one release in one
// environment: the request must name both, and the platform must reach
// its cluster.
func (a *API) releaseCaller(w http.ResponseWriter, r *http.Request, req any, team, app, env *string) (*auth.User, *release.Clients, bool) {
	user, ok := a.caller(w, r, req, team)
	if !ok {
		return nil, nil, false
	}
	if err := checkEnv(*team, *app, *env); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return nil, nil, false
	}
	if v, ok := req.(interface{ check() error }); ok {
		if err := v.check(); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
			return nil, nil, false
		}
	}
	c, err := a.clients()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return nil, nil, false
	}
	return user, c, true
}

// on names the account that asked, and whom it acted for.
func on(user *auth.User, forWhom string) string {
	if forWhom != "" && forWhom != user.Name {
		return user.Name + " for " + forWhom
	}
	return user.Name
}

func (a *API) promote(w http.ResponseWriter, r *http.Request) {
	var req PromotionRequest
	user, ok := a.caller(w, r, &req, &req.Team)
	if !ok {
		return
	}
	if err := req.validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	promote := a.Promote
	if promote == nil {
		promote = a.promoteLocally
	}
	ctx, cancel := context.WithTimeout(r.Context(), promoteTimeout)
	defer cancel()
	// A critical alert of the app in the environment it leaves holds the
	// promotion back: what is on fire is not promoted.
	held, err := a.heldBy(ctx, req.Team, req.App, req.From)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"checking the app's alerts before promoting: " + err.Error()})
		return
	}
	if len(held) > 0 {
		writeJSON(w, http.StatusConflict, apiError{fmt.Sprintf("%s is not promoted while a critical alert fires for it in %s: %s: %s (since %s; slipway alerts shows it, slipway silence can mute it)",
			req.App, req.From, held[0].Labels["alertname"], alertText(held[0].Labels, held[0].Annotations), held[0].StartsAt.UTC().Format(time.RFC3339))})
		return
	}
	res, err := promote(ctx, release.Promotion{Team: req.Team, App: req.App, From: req.From, To: req.To, Version: req.Version, By: on(user, req.For)})
	if err != nil {
		writeJSON(w, http.StatusConflict, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// ReadinessRequest asks the platform to confirm, and record, that a
// version is ready in an environment.
type ReadinessRequest struct {
	Team    string `json:"team,omitempty"`
	App     string `json:"app"`
	Env     string `json:"env"`
	Version string `json:"version"`
	For     string `json:"for,omitempty"`
}

func (a *API) readiness(w http.ResponseWriter, r *http.Request) {
	var req ReadinessRequest
	user, c, ok := a.releaseCaller(w, r, &req, &req.Team, &req.App, &req.Env)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	d, err := release.ConfirmReady(ctx, c, flux.TenantNamespace(req.Team, req.Env), req.App, req.Version, on(user, req.For))
	if err != nil {
		writeJSON(w, http.StatusConflict, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// TestRequest asks the platform to test the version running in an
// environment, with the app's smoke checks; the platform runs the chart's
// test hooks as the release's account and records the outcome.
type TestRequest struct {
	Team  string               `json:"team,omitempty"`
	App   string               `json:"app"`
	Env   string               `json:"env"`
	Smoke []release.SmokeCheck `json:"smoke,omitempty"`
	For   string               `json:"for,omitempty"`
}

// check refuses smoke paths that leave the app's Service: the platform
// asks them with its own rights, and the caller's checking of its file
// proves nothing here.
func (req *TestRequest) check() error {
	for i, sc := range req.Smoke {
		if err := release.CheckPath(sc.Path); err != nil {
			return fmt.Errorf("smoke check %d: %w", i+1, err)
		}
	}
	return nil
}

// TestResult is the platform's answer to a TestRequest.
type TestResult struct {
	Version string        `json:"version"`
	Test    *release.Test `json:"test"`
	// Log is the test pods' output.
	Log string `json:"log,omitempty"`
}

// testTimeout bounds one test run (helm test waits up to 2 minutes).
const testTimeout = 5 * time.Minute

func (a *API) tests(w http.ResponseWriter, r *http.Request) {
	var req TestRequest
	user, c, ok := a.releaseCaller(w, r, &req, &req.Team, &req.App, &req.Env)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	var log bytes.Buffer
	t, version, err := release.RunTests(ctx, c, flux.TenantNamespace(req.Team, req.Env), req.App, req.Smoke, on(user, req.For), &limitedWriter{w: &log, n: maxRequestBytes})
	if err != nil {
		writeJSON(w, http.StatusConflict, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, TestResult{Version: version, Test: t, Log: log.String()})
}

// limitedWriter keeps the first n bytes and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func checkEnv(team, app, env string) error {
	if team == "" {
		return errors.New("say which team's app with --team")
	}
	return checkApp(app, env)
}

// checkApp checks a request names an app and environments that exist.
func checkApp(app string, envs ...string) error {
	if app == "" {
		return errors.New("name the app")
	}
	for _, env := range envs {
		if !slices.Contains(flux.Environments, env) {
			return fmt.Errorf("environment %q: want one of %v", env, flux.Environments)
		}
	}
	return nil
}

// clients reach the platform's own cluster as the platform.
func (a *API) clients() (*release.Clients, error) {
	if a.Clients != nil {
		return a.Clients()
	}
	c, err := release.Connect(ClusterOptions(a.Config).AdminKubeconfig())
	if err != nil {
		return nil, fmt.Errorf("the platform has no cluster: %w", err)
	}
	return c, nil
}

func (req PromotionRequest) validate() error {
	if err := checkApp(req.App, req.From, req.To); err != nil {
		return err
	}
	if req.From == req.To {
		return errors.New("--from and --to name the same environment")
	}
	return nil
}

// promoteLocally promotes on this platform's cluster and fleet repository,
// as the platform (cluster-admin, fleet as ops).
func (a *API) promoteLocally(ctx context.Context, p release.Promotion) (*release.Promoted, error) {
	c, err := a.clients()
	if err != nil {
		return nil, err
	}
	fleet, err := fleetRemote(a.Config)
	if err != nil {
		return nil, err
	}
	p.Sync = fleetSyncName(a.Config)
	return release.Promote(ctx, c, fleet, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RequestPromotion asks the running platform's API for a promotion, as
// the user given.
func (p *Platform) RequestPromotion(ctx context.Context, user, password string, req PromotionRequest) (*release.Promoted, error) {
	var out release.Promoted
	return &out, p.call(ctx, user, password, "promotions", req, &out)
}

// ConfirmReady asks the platform to check, and record, that a version is
// ready.
func (p *Platform) ConfirmReady(ctx context.Context, user, password string, req ReadinessRequest) (*release.Deployed, error) {
	var out release.Deployed
	return &out, p.call(ctx, user, password, "readiness", req, &out)
}

// RunTests asks the platform to test the version running in an
// environment and record the outcome.
func (p *Platform) RunTests(ctx context.Context, user, password string, req TestRequest) (*TestResult, error) {
	var out TestResult
	return &out, p.call(ctx, user, password, "tests", req, &out)
}

// call posts one request to the platform's API and reads its answer.
func (p *Platform) call(ctx context.Context, user, password, what string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.GitURL()+APIPath+what, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	return p.do(hr, user, password, what, out)
}

// get reads one answer of the platform's API.
func (p *Platform) get(ctx context.Context, user, password, what string, out any) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, p.GitURL()+APIPath+what, nil)
	if err != nil {
		return err
	}
	what, _, _ = strings.Cut(what, "?")
	return p.do(hr, user, password, what, out)
}

// do sends a request to the platform's API, as the user given, and reads
// its answer into out.
func (p *Platform) do(hr *http.Request, user, password, what string, out any) error {
	if user != "" {
		hr.SetBasicAuth(user, password)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("asking the platform (%s): %w", what, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64*maxRequestBytes))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return refusal(res, data, what)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("reading the platform's answer: %w", err)
	}
	return nil
}

// refusal is the error for an answer other than 200, in the API's words
// when its body has them.
func refusal(res *http.Response, body []byte, what string) error {
	var e apiError
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("the platform refused (%s): %s", what, e.Error)
	}
	return fmt.Errorf("the platform refused (%s): %s", what, res.Status)
}
