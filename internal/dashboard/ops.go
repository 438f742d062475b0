package dashboard

import (
	"net/http"

	"github.com/slipway-dev/slipway/internal/opsview"
)

// opsOnly refuses a team's user: the Ops page is the platform's, across
// teams.
func opsOnly(v *viewer) bool { return v.User.Admin }

func (s *Server) opsPage(w http.ResponseWriter, r *http.Request, v *viewer) {
	if !opsOnly(v) {
		w.WriteHeader(http.StatusForbidden)
		render(w, "error.html", map[string]any{"Title": "Not yours", "Message": "the Ops page is for the platform's admins (ops); user " + v.User.Name + " sees its team's Line, Runs and Releases", "Viewer": v})
		return
	}
	view := &opsview.View{}
	if s.Ops != nil {
		view = s.Ops(r.Context())
	}
	render(w, "ops.html", map[string]any{"Viewer": v, "Ops": view, "Title": "Ops", "Page": "ops"})
}

func (s *Server) opsJSON(w http.ResponseWriter, r *http.Request, v *viewer) {
	if !opsOnly(v) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "the ops view is for the platform's admins (ops)"})
		return
	}
	view := &opsview.View{}
	if s.Ops != nil {
		view = s.Ops(r.Context())
	}
	writeJSON(w, http.StatusOK, view)
}
