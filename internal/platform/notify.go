package platform

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/gitserver"
	"github.com/slipway-dev/slipway/internal/trust"
)

// FluxEventsPath is where Flux's notification-controller posts events:
// FluxEventsPath+"fleet" for the fleet's own objects, and
// FluxEventsPath+"teams/TEAM" for a team's. Each is signed (generic-hmac)
// with a key of its own, so a team's key vouches only for its own
// namespaces.
const FluxEventsPath = APIPath + "flux-events/"

// FluxEventsURL is the endpoint of a team's events (the fleet's when team
// is ""), on the git server as the cluster reaches it (gitNode).
func FluxEventsURL(gitNode, team string) string {
	if team == "" {
		return gitNode + FluxEventsPath + "fleet"
	}
	return gitNode + FluxEventsPath + "teams/" + team
}

// FluxEventsURL is a team's event endpoint on this platform.
func (p *Platform) FluxEventsURL(team string) (string, error) {
	if p.State.Addresses.GitNode == "" {
		return "", ErrNoCluster
	}
	return FluxEventsURL(p.State.Addresses.GitNode, team), nil
}

// TimelinePath is the line's timeline (see package events).
func TimelinePath(cfg config.Config) string { return filepath.Join(cfg.LogDir(), "timeline.jsonl") }

// notifyKeyPath is the file of one notification key: "events" or
// "receiver", of a team or, for owner "", of the fleet.
func notifyKeyPath(cfg config.Config, kind, team string) string {
	owner := "fleet"
	if team != "" {
		owner = "team-" + team
	}
	return filepath.Join(cfg.ClusterDir(), "notify", owner+"."+kind)
}

// notifyKey reads a notification key, making it the first time. Only
// root reads it; the cluster gets it in a Secret.
func notifyKey(cfg config.Config, kind, team string) (string, error) {
	path := notifyKeyPath(cfg, kind, team)
	if data, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(data))) >= 16 {
		return strings.TrimSpace(string(data)), nil
	}
	key := auth.RandomPassword()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return key, fsutil.WriteFileAtomic(path, []byte(key+"\n"), 0o600)
}

// TenantFluxSecrets are the Secrets Flux needs in one of a team's
// namespaces, as one YAML stream: the read-only registry account, the key
// that signs the team's events, and the token of its chart Receiver.
// They are applied to the cluster, never committed.
func TenantFluxSecrets(cfg config.Config, team, namespace string) ([]byte, error) {
	reader, err := chartsReaderSecret(cfg, namespace)
	if err != nil {
		return nil, err
	}
	events, err := eventsSecret(cfg, team, namespace)
	if err != nil {
		return nil, err
	}
	receiverToken, err := notifyKey(cfg, "receiver", team)
	if err != nil {
		return nil, err
	}
	rest, err := flux.Marshal(events, flux.ReceiverSecret(namespace, receiverToken))
	if err != nil {
		return nil, err
	}
	return append(reader, rest...), nil
}

// chartsReaderSecret is the registry Secret of a tenant namespace, which
// its chart sources pull with: the platform's read-only account and CA,
// or the line registry's reader and CA when it has one of its own.
func chartsReaderSecret(cfg config.Config, namespace string) ([]byte, error) {
	r := cfg.LineRegistry()
	if r == nil {
		return FluxReaderSecret(cfg, flux.RegistrySecretName, namespace)
	}
	user, password, err := r.Reader()
	if err != nil {
		return nil, err
	}
	ca, err := r.CA()
	if err != nil {
		return nil, err
	}
	return flux.Marshal(flux.ReaderSecret(flux.RegistrySecretName, namespace, user, password, ca))
}

// fleetEventsSecret is the events Secret of flux-system.
func fleetEventsSecret(cfg config.Config) ([]byte, error) {
	secret, err := eventsSecret(cfg, "", flux.Namespace)
	if err != nil {
		return nil, err
	}
	return flux.Marshal(secret)
}

// eventsSecret holds the key a team's (or, for team "", the fleet's)
// events are signed with, and the platform's CA, in one namespace.
func eventsSecret(cfg config.Config, team, namespace string) (*corev1.Secret, error) {
	key, err := notifyKey(cfg, "events", team)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(trust.Files{Dir: cfg.TLSDir()}.CA())
	if err != nil {
		return nil, err
	}
	return flux.EventsSecret(namespace, key, ca), nil
}

// maxFluxEventBytes bounds one event's body; Flux's are a few hundred bytes.
const maxFluxEventBytes = 64 << 10

// fluxEvent is what notification-controller's generic providers post (the
// fields the timeline keeps).
type fluxEvent struct {
	InvolvedObject struct {
		Kind      string `json:"kind"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"involvedObject"`
	Severity  string            `json:"severity"`
	Timestamp time.Time         `json:"timestamp"`
	Message   string            `json:"message"`
	Reason    string            `json:"reason"`
	Metadata  map[string]string `json:"metadata"`
}

// FluxEvents takes Flux's events into the timeline. A request counts only
// with the signature of its owner's key, and only for the owner's
// namespaces: the fleet's events are flux-system's, a team's are its
// environments'.
type FluxEvents struct {
	Config   config.Config
	Timeline *events.Log
}

func (h *FluxEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	owner := strings.TrimPrefix(r.URL.Path, FluxEventsPath)
	team, isTeam := strings.CutPrefix(owner, "teams/")
	switch {
	case owner == "fleet":
		team = ""
	case isTeam && flux.ValidTeam(team) == nil:
	default:
		writeJSON(w, http.StatusNotFound, apiError{"no such event endpoint: " + r.URL.Path})
		return
	}
	key, err := os.ReadFile(notifyKeyPath(h.Config, "events", team))
	if errors.Is(err, os.ErrNotExist) {
		writeJSON(w, http.StatusNotFound, apiError{"no events are taken for " + owner})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFluxEventBytes))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{"an event is at most 64 KiB"})
		return
	}
	if !validSignature(r.Header.Get("X-Signature"), body, []byte(strings.TrimSpace(string(key)))) {
		writeJSON(w, http.StatusUnauthorized, apiError{"the event's X-Signature is not the HMAC-SHA256 of its body with " + owner + "'s key"})
		return
	}
	var ev fluxEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"reading the event: " + err.Error()})
		return
	}
	if !ownsNamespace(team, ev.InvolvedObject.Namespace) {
		writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf("%s's key does not vouch for namespace %q", owner, ev.InvolvedObject.Namespace)})
		return
	}
	e := events.Event{
		Time: ev.Timestamp.UTC(), Source: events.SourceFlux, Team: team,
		Namespace: ev.InvolvedObject.Namespace, Kind: ev.InvolvedObject.Kind, Name: ev.InvolvedObject.Name,
		Severity: ev.Severity, Reason: ev.Reason, Message: ev.Message,
	}
	if e.Time.IsZero() || e.Time.After(time.Now().Add(time.Minute)) {
		e.Time = time.Now().UTC()
	}
	for k, v := range ev.Metadata {
		if k == "revision" || strings.HasSuffix(k, "/revision") {
			e.Revision = v
		}
	}
	if err := h.Timeline.Append(e); err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{"keeping the event: " + err.Error()})
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// validSignature checks a generic-hmac signature, "sha256=HEX".
func validSignature(header string, body, key []byte) bool {
	sum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// ownsNamespace says whether a namespace is the team's (one of its
// environments), or flux-system for the fleet (team "").
func ownsNamespace(team, ns string) bool {
	if team == "" {
		return ns == flux.Namespace
	}
	for _, env := range flux.Environments {
		if ns == flux.TenantNamespace(team, env) {
			return true
		}
	}
	return false
}

// maxEventsRead bounds one read of the timeline.
const maxEventsRead = 5000

// readEvents answers GET APIPath+"events": the timeline, to ops whole, to
// a team's user its own team's events. Query: team, since (a duration such
// as 15m, or a time), source, limit (default 200).
func (a *API) readEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	_, teams, ok := a.readUser(w, r, q.Get("team"))
	if !ok {
		return
	}
	f := events.Filter{Teams: teams, Source: q.Get("source"), Limit: 200}
	if since := q.Get("since"); since != "" {
		if d, err := time.ParseDuration(since); err == nil {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, since); err == nil {
			f.Since = t
		} else {
			writeJSON(w, http.StatusBadRequest, apiError{"since: a duration such as 15m, or a time such as 2026-01-02T15:04:05Z"})
			return
		}
	}
	if limit := q.Get("limit"); limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > maxEventsRead {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("limit: a number from 1 to %d", maxEventsRead)})
			return
		}
		f.Limit = n
	}
	list, err := events.Open(TimelinePath(a.Config), 0).Read(f)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	if list == nil {
		list = []events.Event{}
	}
	writeJSON(w, http.StatusOK, list)
}

// Events reads the timeline through the running platform's API, as the
// user given; team "" means every team the user may see.
func (p *Platform) Events(ctx context.Context, user, password string, team, since string, limit int) ([]events.Event, error) {
	q := url.Values{}
	if team != "" {
		q.Set("team", team)
	}
	if since != "" {
		q.Set("since", since)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []events.Event
	return out, p.get(ctx, user, password, "events?"+q.Encode(), &out)
}

// pushEvent is a git push on the timeline.
func pushEvent(ev gitserver.Event) events.Event {
	team, _, _ := strings.Cut(ev.Repo, "/")
	what := "pushed " + shortCommit(ev.New) + " to " + ev.Ref
	switch {
	case ev.New == gitserver.ZeroCommit:
		what = "deleted " + ev.Ref
	case ev.Old == gitserver.ZeroCommit:
		what = "created " + ev.Ref + " at " + shortCommit(ev.New)
	}
	return events.Event{Time: ev.At.UTC(), Source: events.SourceGit, Team: teamOf(team), Kind: "Repository", Name: ev.Repo,
		Severity: "info", Reason: "Pushed", Message: ev.Pusher + " " + what, Revision: ev.New, By: ev.Pusher}
}

// runEvent is a pipeline run that ended, on the timeline.
func runEvent(run *runner.Run) events.Event {
	team, _, _ := strings.Cut(run.Pipeline, "/")
	severity := "info"
	if run.Status != runner.Succeeded {
		severity = "error"
	}
	msg := fmt.Sprintf("run %s (#%d) %s in %s", run.Number, run.ID, run.Status, run.FinishedAt.Sub(run.StartedAt).Round(100*time.Millisecond))
	if run.Error != "" {
		msg += ": " + run.Error
	}
	return events.Event{Time: run.FinishedAt.UTC(), Source: events.SourcePipeline, Team: teamOf(team), Kind: "Pipeline", Name: run.Pipeline,
		Severity: severity, Reason: runReason(run.Status), Message: msg, Revision: run.Commit, By: run.RequestedBy}
}

// teamOf is the team a repository's first segment names, "" for the
// platform's own (ops/fleet).
func teamOf(segment string) string {
	if flux.ValidTeam(segment) != nil || segment == "ops" {
		return ""
	}
	return segment
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// runReason names an ended run's outcome the way Flux names its reasons:
// RunSucceeded, RunFailed, RunCanceled.
func runReason(status string) string {
	if status == "" {
		return "RunEnded"
	}
	return "Run" + strings.ToUpper(status[:1]) + status[1:]
}
