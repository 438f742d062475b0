package dashboard

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/release"
)

// maxReleaseEvents is how many of a release's Flux events its page shows.
const maxReleaseEvents = 30

// releaseView is one app's release in every environment, and Flux's
// recent events about it.
type releaseView struct {
	Team, App string
	Envs      []release.Detail
	Events    []events.Event
}

// releaseOf reads the release a request names (TEAM/APP in the path),
// once the viewer may see the team's.
func (s *Server) releaseOf(r *http.Request, v *viewer) (*releaseView, int, error) {
	team, app := r.PathValue("team"), r.PathValue("app")
	if flux.ValidTeam(team) != nil || flux.ValidTeam(app) != nil {
		return nil, http.StatusNotFound, fmt.Errorf("no release %s/%s", team, app)
	}
	if v.Teams != nil && !slices.Contains(v.Teams, team) {
		return nil, http.StatusForbidden, fmt.Errorf("%s/%s is not %s's: user %s sees only its own team's releases", team, app, v.Team, v.User.Name)
	}
	if s.Release == nil {
		return nil, http.StatusNotFound, fmt.Errorf("this platform runs no releases (no cluster or no Flux)")
	}
	envs, err := s.Release(r.Context(), team, app)
	if err != nil {
		return nil, http.StatusServiceUnavailable, err
	}
	view := &releaseView{Team: team, App: app, Envs: envs}
	list, err := s.Timeline.Read(events.Filter{Teams: []string{team}, Source: events.SourceFlux})
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	for i := len(list) - 1; i >= 0 && len(view.Events) < maxReleaseEvents; i-- {
		if e := list[i]; e.Kind == "HelmRelease" && e.Name == app {
			view.Events = append(view.Events, e)
		}
	}
	return view, http.StatusOK, nil
}

func (s *Server) releasePage(w http.ResponseWriter, r *http.Request, v *viewer) {
	view, status, err := s.releaseOf(r, v)
	if err != nil {
		refusePage(w, v, status, "No such release", err)
		return
	}
	render(w, "release.html", map[string]any{"Viewer": v, "Release": view, "Title": view.Team + "/" + view.App, "Page": "release"})
}

func (s *Server) releaseJSON(w http.ResponseWriter, r *http.Request, v *viewer) {
	view, status, err := s.releaseOf(r, v)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, view)
}
