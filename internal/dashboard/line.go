package dashboard

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/lineview"
)

// lineCacheFor is how long one reading of the line serves every browser:
// pages refresh on the timeline's events, and however many are open, the
// platform reads the cluster at most once in that time.
const lineCacheFor = time.Second

// lineCache keeps the last reading of the whole line.
type lineCache struct {
	mu   sync.Mutex
	at   time.Time
	apps []lineview.App
}

// line is the viewer's part of the line.
func (s *Server) line(ctx context.Context, v *viewer) ([]lineview.App, error) {
	if s.Line == nil {
		return nil, nil
	}
	c := &s.lines
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps == nil || time.Since(c.at) > lineCacheFor {
		apps, err := s.Line(ctx)
		if err != nil {
			return nil, err
		}
		c.apps, c.at = apps, time.Now()
	}
	var out []lineview.App
	for _, a := range c.apps {
		if v.Teams == nil || slices.Contains(v.Teams, a.Team) {
			out = append(out, a)
		}
	}
	return out, nil
}

// lineData is what the Line page and its live part render.
func (s *Server) lineData(w http.ResponseWriter, r *http.Request, v *viewer) (map[string]any, bool) {
	apps, err := s.line(r.Context(), v)
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		render(w, "error.html", map[string]any{"Title": "The line cannot be read", "Message": err.Error(), "Viewer": v})
		return nil, false
	}
	return map[string]any{"Viewer": v, "Apps": apps, "Title": "Line", "Page": "line", "Envs": envNames}, true
}

func (s *Server) linePage(w http.ResponseWriter, r *http.Request, v *viewer) {
	if data, ok := s.lineData(w, r, v); ok {
		render(w, "line.html", data)
	}
}

// lineApps is the part of the Line page that its script swaps in when
// the line changes.
func (s *Server) lineApps(w http.ResponseWriter, r *http.Request, v *viewer) {
	if data, ok := s.lineData(w, r, v); ok {
		w.Header().Set("Cache-Control", "no-store")
		render(w, "line-apps", data)
	}
}

func (s *Server) lineJSON(w http.ResponseWriter, r *http.Request, v *viewer) {
	apps, err := s.line(r.Context(), v)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	if apps == nil {
		apps = []lineview.App{}
	}
	writeJSON(w, http.StatusOK, apps)
}
