package platform

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/monitoring"
)

// AlertsWebhook takes Alertmanager's notifications (its webhook format,
// version 4) into the timeline: each alert that fires or resolves is an
// event of the team its labels name. Only a caller with the token
// Alertmanager was configured with is heard.
type AlertsWebhook struct {
	Config   config.Config
	Timeline *events.Log
}

// alertmanagerPayload is the part of a webhook body the timeline keeps.
type alertmanagerPayload struct {
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
		Fingerprint string            `json:"fingerprint"`
	} `json:"alerts"`
}

// maxAlertsBody bounds one notification (Alertmanager groups alerts).
const maxAlertsBody = 4 << 20

func (h *AlertsWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	want, err := os.ReadFile(alertsTokenFile(h.Config))
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if err != nil || len(want) == 0 || !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
		writeJSON(w, http.StatusUnauthorized, apiError{"only the platform's Alertmanager sends alerts here"})
		return
	}
	var p alertmanagerPayload
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAlertsBody)).Decode(&p); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"reading the alerts: " + err.Error()})
		return
	}
	for _, a := range p.Alerts {
		team := a.Labels["team"]
		if flux.ValidTeam(team) != nil {
			team = ""
		}
		e := events.Event{Source: events.SourceAlert, Team: team, Namespace: a.Labels["namespace"], Kind: "Alert", Name: a.Labels["alertname"],
			Severity: "warning", Reason: "AlertFiring", Message: alertText(a.Labels, a.Annotations), Revision: a.Fingerprint, Time: a.StartsAt}
		if a.Labels["severity"] == "critical" {
			e.Severity = "error"
		}
		if a.Status == "resolved" {
			e.Severity, e.Reason, e.Time = "info", "AlertResolved", a.EndsAt
		}
		if e.Time.IsZero() || e.Time.After(time.Now()) {
			e.Time = time.Now().UTC()
		}
		if err := h.Timeline.Append(e); err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// alertText is an alert's summary, else its name.
func alertText(labels, annotations map[string]string) string {
	if s := annotations["summary"]; s != "" {
		return s
	}
	return labels["alertname"]
}

// alertmanager is the platform's Alertmanager, when it runs one; else it
// answers that it does not.
func (a *API) alertmanager(w http.ResponseWriter) (monitoring.Alertmanager, bool) {
	am, ok := runningAlertmanager(a.Config)
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the platform runs without monitoring (slipway up --no-monitoring)"})
	}
	return am, ok
}

// runningAlertmanager is the platform's Alertmanager and whether it runs.
func runningAlertmanager(cfg config.Config) (monitoring.Alertmanager, bool) {
	if !cfg.MonitoringEnabled() || cfg.Monitoring.AlertmanagerAddr == "" {
		return monitoring.Alertmanager{}, false
	}
	return monitoring.Alertmanager{URL: "http://" + cfg.Monitoring.AlertmanagerAddr}, true
}

// prometheus is the platform's Prometheus, as its API asks it.
func (a *API) prometheus() monitoring.Prometheus {
	return monitoring.Prometheus{URL: "http://" + a.Config.Monitoring.PrometheusAddr}
}

// readUser authenticates a read and returns the teams the user may see:
// nil for ops (everything), else the user's own team. team, when set,
// narrows ops's view and must be a team user's own.
func (a *API) readUser(w http.ResponseWriter, r *http.Request, team string) (*auth.User, []string, bool) {
	user, status, err := a.Users.RequestUser(w, r, "slipway")
	if err != nil {
		writeJSON(w, status, apiError{auth.Refusal(err, "log in: the platform's API needs a user and password")})
		return nil, nil, false
	}
	if team != "" {
		if err := flux.ValidTeam(team); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
			return nil, nil, false
		}
	}
	if user.Admin {
		if team != "" {
			return user, []string{team}, true
		}
		return user, nil, true
	}
	own := ownTeam(user)
	if own == "" || (team != "" && team != own) {
		writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf("user %s sees only its own team's", user.Name)})
		return nil, nil, false
	}
	return user, []string{own}, true
}

// alertmanagerRead authenticates a read of Alertmanager's alerts or
// silences and returns the matchers that keep it to what the user may
// see (?team= narrows ops's view).
func (a *API) alertmanagerRead(w http.ResponseWriter, r *http.Request) (monitoring.Alertmanager, []string, bool) {
	_, teams, ok := a.readUser(w, r, r.URL.Query().Get("team"))
	if !ok {
		return monitoring.Alertmanager{}, nil, false
	}
	am, ok := a.alertmanager(w)
	if !ok {
		return monitoring.Alertmanager{}, nil, false
	}
	var filter []string
	if teams != nil {
		filter = []string{fmt.Sprintf("team=%q", teams[0])}
	}
	return am, filter, true
}

// readAlerts answers GET APIPath+"alerts": Alertmanager's alerts, firing,
// silenced or inhibited, of the teams the caller may see.
func (a *API) readAlerts(w http.ResponseWriter, r *http.Request) {
	am, filter, ok := a.alertmanagerRead(w, r)
	if !ok {
		return
	}
	list, err := am.Alerts(r.Context(), filter...)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, apiError{err.Error()})
		return
	}
	if list == nil {
		list = []monitoring.Alert{}
	}
	writeJSON(w, http.StatusOK, list)
}

// SilenceRequest asks for a silence.
type SilenceRequest struct {
	// Team: a team's user silences only its own team's alerts (the
	// platform adds the team matcher); ops may leave it out.
	Team     string               `json:"team,omitempty"`
	Matchers []monitoring.Matcher `json:"matchers"`
	Duration string               `json:"duration"`
	Comment  string               `json:"comment"`
}

// maxSilence bounds how long one silence lasts.
const maxSilence = 7 * 24 * time.Hour

// silences answers GET (list) and POST (create) APIPath+"silences", and
// DELETE APIPath+"silences/ID" (expire).
func (a *API) silences(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet:
		am, filter, ok := a.alertmanagerRead(w, r)
		if !ok {
			return
		}
		list, err := am.Silences(r.Context(), filter...)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, apiError{err.Error()})
			return
		}
		if list == nil {
			list = []monitoring.Silence{}
		}
		writeJSON(w, http.StatusOK, list)
	case r.Method == http.MethodPost:
		var req SilenceRequest
		user, ok := a.caller(w, r, &req, &req.Team)
		if !ok {
			return
		}
		am, ok := a.alertmanager(w)
		if !ok {
			return
		}
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 || d > maxSilence {
			writeJSON(w, http.StatusBadRequest, apiError{"duration: from 1s to 168h, such as 2h"})
			return
		}
		var matchers []monitoring.Matcher
		for _, m := range req.Matchers {
			if m.Name == "team" {
				continue // the team comes from the request, checked above
			}
			if m.Name == "" || len(m.Name) > 100 || len(m.Value) > 1000 {
				writeJSON(w, http.StatusBadRequest, apiError{"a matcher needs a label name (and a value of at most 1000 bytes)"})
				return
			}
			matchers = append(matchers, m)
		}
		if req.Team != "" {
			matchers = append(matchers, monitoring.Matcher{Name: "team", Value: req.Team, IsEqual: true})
		} else if len(matchers) == 0 {
			writeJSON(w, http.StatusBadRequest, apiError{"a silence needs at least one matcher, such as alertname=SlipwayTargetDown"})
			return
		}
		if !user.Admin && req.Team == "" {
			writeJSON(w, http.StatusForbidden, apiError{"a team silences only its own alerts"})
			return
		}
		now := time.Now().UTC()
		id, err := am.CreateSilence(r.Context(), monitoring.Silence{Matchers: matchers, StartsAt: now, EndsAt: now.Add(d),
			CreatedBy: user.Name, Comment: strings.TrimSpace(req.Comment)})
		if err != nil {
			writeJSON(w, http.StatusBadGateway, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
	case r.Method == http.MethodDelete:
		user, teams, ok := a.readUser(w, r, "")
		if !ok {
			return
		}
		am, ok := a.alertmanager(w)
		if !ok {
			return
		}
		id := strings.TrimPrefix(r.URL.Path, APIPath+"silences/")
		s, err := am.Silence(r.Context(), id)
		if err != nil {
			writeJSON(w, http.StatusNotFound, apiError{"no silence " + id})
			return
		}
		if teams != nil && !silencesOnly(s.Matchers, teams[0]) {
			writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf("user %s may expire only its own team's silences", user.Name)})
			return
		}
		if err := am.ExpireSilence(r.Context(), id); err != nil {
			writeJSON(w, http.StatusBadGateway, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
	default:
		writeJSON(w, http.StatusMethodNotAllowed, apiError{"silences: GET, POST or DELETE"})
	}
}

// silencesOnly says whether a silence's matchers keep it to one team.
func silencesOnly(matchers []monitoring.Matcher, team string) bool {
	for _, m := range matchers {
		if m.Name == "team" && m.IsEqual && !m.IsRegex && m.Value == team {
			return true
		}
	}
	return false
}

// heldBy returns the critical alerts that hold back an app's promotion
// from an environment: firing (not silenced or inhibited) for the app in
// that team's namespace. No Alertmanager means nothing holds it.
func (a *API) heldBy(ctx context.Context, team, app, env string) ([]monitoring.Alert, error) {
	am, ok := runningAlertmanager(a.Config)
	if !ok {
		return nil, nil
	}
	namespace := fmt.Sprintf("namespace=%q", flux.TenantNamespace(team, env))
	if team == "" { // ops named no team: the app's release in any team's env
		namespace = fmt.Sprintf("namespace=~%q", ".+-"+env)
	}
	list, err := am.Alerts(ctx, namespace, fmt.Sprintf("app=%q", app), `severity="critical"`)
	if err != nil {
		return nil, err
	}
	var firing []monitoring.Alert
	for _, al := range list {
		if al.Status.State == "active" {
			firing = append(firing, al)
		}
	}
	return firing, nil
}

// Alerts reads the alerts the user may see through the platform's API.
func (p *Platform) Alerts(ctx context.Context, user, password, team string) ([]monitoring.Alert, error) {
	var out []monitoring.Alert
	return out, p.get(ctx, user, password, "alerts?"+teamQuery(team), &out)
}

// Silences lists the silences the user may see.
func (p *Platform) Silences(ctx context.Context, user, password, team string) ([]monitoring.Silence, error) {
	var out []monitoring.Silence
	return out, p.get(ctx, user, password, "silences?"+teamQuery(team), &out)
}

// CreateSilence asks the platform for a silence and returns its ID.
func (p *Platform) CreateSilence(ctx context.Context, user, password string, req SilenceRequest) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	return out.ID, p.call(ctx, user, password, "silences", req, &out)
}

// ExpireSilence ends a silence.
func (p *Platform) ExpireSilence(ctx context.Context, user, password, id string) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.GitURL()+APIPath+"silences/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	var out map[string]string
	return p.do(hr, user, password, "silences", &out)
}

func teamQuery(team string) string {
	if team == "" {
		return ""
	}
	return url.Values{"team": {team}}.Encode()
}

// AppMetrics are an app's series over a while, as `slipway metrics` shows
// them.
type AppMetrics struct {
	Team      string            `json:"team"`
	App       string            `json:"app"`
	Env       string            `json:"env"`
	Namespace string            `json:"namespace"`
	Series    []AppMetricSeries `json:"series"`
}

// AppMetricSeries is one named series.
type AppMetricSeries struct {
	Name   string             `json:"name"`
	Query  string             `json:"query"`
	Points []monitoring.Point `json:"points"`
}

// appMetricsWindow and appMetricsStep shape what GET metrics returns.
const (
	appMetricsWindow = 15 * time.Minute
	appMetricsStep   = 30 * time.Second
)

// readAppMetrics answers GET APIPath+"metrics?team=&app=&env=": the app's
// request rate, error ratio, latency, restarts and memory over the last
// 15 minutes, from Prometheus, to the app's team and ops.
func (a *API) readAppMetrics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	_, teams, ok := a.readUser(w, r, q.Get("team"))
	if !ok {
		return
	}
	team, app, env := q.Get("team"), q.Get("app"), q.Get("env")
	if teams != nil {
		team = teams[0]
	}
	if team == "" {
		writeJSON(w, http.StatusBadRequest, apiError{"say which team's app with --team"})
		return
	}
	if err := checkEnv(team, app, env); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	if !a.Config.MonitoringEnabled() {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the platform runs without monitoring (slipway up --no-monitoring)"})
		return
	}
	prom := a.prometheus()
	ns := flux.TenantNamespace(team, env)
	// The last point is now, to the second: a window ending on the last
	// whole step would show a restart or a load of the last half minute
	// only at the next step.
	end := time.Now().Truncate(time.Second)
	out := AppMetrics{Team: team, App: app, Env: env, Namespace: ns}
	for _, s := range monitoring.AppSeries(ns, app) {
		points, err := prom.QueryRange(r.Context(), s[1], end.Add(-appMetricsWindow), end, appMetricsStep)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, apiError{err.Error()})
			return
		}
		out.Series = append(out.Series, AppMetricSeries{Name: s[0], Query: s[1], Points: points})
	}
	writeJSON(w, http.StatusOK, out)
}

// AppMetrics reads an app's series through the platform's API.
func (p *Platform) AppMetrics(ctx context.Context, user, password, team, app, env string) (*AppMetrics, error) {
	q := url.Values{"app": {app}, "env": {env}}
	if team != "" {
		q.Set("team", team)
	}
	var out AppMetrics
	return &out, p.get(ctx, user, password, "metrics?"+q.Encode(), &out)
}
