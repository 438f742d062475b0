// Package dashboard is the line in the browser: sign-in with the
// platform's users, and pages that show a team member their team's part
// of the line and ops all of it, kept live by server-sent events from the
// platform's own timeline (no browser polls the cluster).
//
// This first part serves the Timeline: the events `slipway events`
// prints, as they happen. The page and its JSON are the same data the
// CLI reads, filtered by the same rule: a team's user sees its team's
// events, ops sees every team's and the platform's own.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/lineview"
	"github.com/slipway-dev/slipway/internal/opsview"
	"github.com/slipway-dev/slipway/internal/release"
)

// Path is where the dashboard answers, on the platform's HTTPS address.
const Path = "/-/ui/"

//go:embed templates/*.html static/*
var files embed.FS

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))

// Server serves the dashboard.
type Server struct {
	Users    *auth.Store
	Timeline *events.Log
	// TeamOf is the team a user belongs to ("" for none); admins see
	// every team.
	TeamOf func(*auth.User) string
	// Secret keys the session cookies (a new one signs every session
	// out).
	Secret []byte
	// Line reads every team's line (lineview.Gather); nil shows none.
	Line func(ctx context.Context) ([]lineview.App, error)
	// Runs is the pipeline runs' store; nil shows none.
	Runs *runner.Store
	// Release reads an app's release in each environment; nil on a
	// platform without releases.
	Release func(ctx context.Context, team, app string) ([]release.Detail, error)
	// Ops reads the platform as ops sees it; nil shows no Ops page.
	Ops func(ctx context.Context) *opsview.View
	// Rerun runs a run's commit again as a push by the named user; nil
	// offers no re-run.
	Rerun func(run *runner.Run, by string) error

	lines lineCache
}

// Handler routes the dashboard's requests (mount it at Path).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path+"{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path+"line", http.StatusSeeOther)
	})
	mux.HandleFunc("GET "+Path+"login", s.loginPage)
	mux.HandleFunc("POST "+Path+"login", s.login)
	mux.HandleFunc("POST "+Path+"logout", func(w http.ResponseWriter, r *http.Request) {
		s.endSession(w, r)
		http.Redirect(w, r, Path+"login", http.StatusSeeOther)
	})
	mux.Handle("GET "+Path+"static/", http.StripPrefix(Path, http.FileServerFS(files)))
	mux.HandleFunc("GET "+Path+"timeline", s.page(s.timelinePage))
	mux.HandleFunc("GET "+Path+"api/events", s.api(s.eventsJSON))
	mux.HandleFunc("GET "+Path+"api/events/stream", s.api(s.eventStream))
	mux.HandleFunc("GET "+Path+"line", s.page(s.linePage))
	mux.HandleFunc("GET "+Path+"line/apps", s.api(s.lineApps))
	mux.HandleFunc("GET "+Path+"api/line", s.api(s.lineJSON))
	mux.HandleFunc("GET "+Path+"releases/{team}/{app}", s.page(s.releasePage))
	mux.HandleFunc("GET "+Path+"api/releases/{team}/{app}", s.api(s.releaseJSON))
	mux.HandleFunc("GET "+Path+"ops", s.page(s.opsPage))
	mux.HandleFunc("GET "+Path+"api/ops", s.api(s.opsJSON))
	mux.HandleFunc("GET "+Path+"runs/{id}", s.page(s.runPage))
	mux.HandleFunc("GET "+Path+"api/runs/{id}", s.api(s.runJSON))
	mux.HandleFunc("GET "+Path+"api/runs/{id}/stream", s.api(s.runStream))
	mux.HandleFunc("POST "+Path+"api/runs/{id}/cancel", s.api(s.cancelRun))
	mux.HandleFunc("POST "+Path+"api/runs/{id}/rerun", s.api(s.rerunRun))
	return securityHeaders(mux)
}

// securityHeaders: no framing, no sniffing, scripts and styles from the
// dashboard itself only.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// viewer is a signed-in user and the teams they may see (nil: all).
type viewer struct {
	User  *auth.User
	Teams []string
	Team  string // the team asked for, if any
}

// errForbidden is a user asking for another team's view.
var errForbidden = errors.New("forbidden")

// viewerOf reads the request's user and the team it asks for (?team=).
func (s *Server) viewerOf(r *http.Request) (*viewer, error) {
	u, err := s.sessionUser(r)
	if err != nil {
		return nil, err
	}
	v := &viewer{User: u, Team: r.URL.Query().Get("team")}
	if u.Admin {
		if v.Team != "" {
			v.Teams = []string{v.Team}
		}
		return v, nil
	}
	own := s.TeamOf(u)
	if own == "" || (v.Team != "" && v.Team != own) {
		return nil, fmt.Errorf("%w: user %s sees only its own team's part of the line", errForbidden, u.Name)
	}
	v.Team, v.Teams = own, []string{own}
	return v, nil
}

// page wraps an HTML page: signed out goes to the sign-in page, another
// team's page is refused.
func (s *Server) page(f func(http.ResponseWriter, *http.Request, *viewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := s.viewerOf(r)
		switch {
		case errors.Is(err, errForbidden):
			w.WriteHeader(http.StatusForbidden)
			render(w, "error.html", map[string]any{"Title": "Not yours", "Message": err.Error()})
		case err != nil:
			http.Redirect(w, r, Path+"login?next="+templateEscapePath(r.URL.Path), http.StatusSeeOther)
		default:
			f(w, r, v)
		}
	}
}

// api wraps a JSON or event-stream answer: 401 signed out, 403 for
// another team's.
func (s *Server) api(f func(http.ResponseWriter, *http.Request, *viewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := s.viewerOf(r)
		switch {
		case errors.Is(err, errForbidden):
			writeJSON(w, http.StatusForbidden, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "sign in first: " + Path + "login"})
		default:
			f(w, r, v)
		}
	}
}

// refusePage answers a page that is not the viewer's ("Not yours") or
// not there (notFound names it).
func refusePage(w http.ResponseWriter, v *viewer, status int, notFound string, err error) {
	title := notFound
	if status == http.StatusForbidden {
		title = "Not yours"
	}
	w.WriteHeader(status)
	render(w, "error.html", map[string]any{"Title": title, "Message": err.Error(), "Viewer": v})
}

func templateEscapePath(p string) string {
	if !strings.HasPrefix(p, Path) {
		return Path
	}
	return p
}

func render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	render(w, "login.html", map[string]any{"Title": "Sign in", "Next": templateEscapePath(r.URL.Query().Get("next"))})
}

// login checks the name and password (throttled as every sign-in of the
// platform) and starts a session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "a sign-in form is small", http.StatusBadRequest)
		return
	}
	next := templateEscapePath(r.PostForm.Get("next"))
	u, err := s.Users.AuthenticateFrom(r.RemoteAddr, r.PostForm.Get("user"), r.PostForm.Get("password"))
	if err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, auth.ErrThrottled) {
			status = http.StatusTooManyRequests
		}
		w.WriteHeader(status)
		render(w, "login.html", map[string]any{"Title": "Sign in", "Next": next, "Error": auth.Refusal(err, "")})
		return
	}
	s.newSession(w, r, u)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// maxTimeline is how many past events a view starts with.
const maxTimeline = 200

func (s *Server) timelinePage(w http.ResponseWriter, r *http.Request, v *viewer) {
	list, err := s.Timeline.Read(events.Filter{Teams: v.Teams, Limit: maxTimeline})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// Newest first, as the page shows them.
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	render(w, "timeline.html", map[string]any{"Viewer": v, "Events": list, "Title": "Timeline", "Page": "timeline"})
}

func (s *Server) eventsJSON(w http.ResponseWriter, r *http.Request, v *viewer) {
	f := events.Filter{Teams: v.Teams, Source: r.URL.Query().Get("source"), Limit: maxTimeline}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxTimeline {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("limit: a number from 1 to %d", maxTimeline)})
			return
		}
		f.Limit = n
	}
	list, err := s.Timeline.Read(f)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if list == nil {
		list = []events.Event{}
	}
	writeJSON(w, http.StatusOK, list)
}

// eventStream sends the viewer's events as they are appended, as
// server-sent events, with a comment every 20 s to keep proxies from
// closing a quiet stream.
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request, v *viewer) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	ch, stop := s.Timeline.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": the line's events\n\n")
	flusher.Flush()
	keepAlive := time.NewTicker(20 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			fmt.Fprint(w, ": still here\n\n")
		case e := <-ch:
			if v.Teams != nil && !slices.Contains(v.Teams, e.Team) {
				continue
			}
			data, err := json.Marshal(e)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "event: line\ndata: %s\n\n", data)
		}
		flusher.Flush()
	}
}
