package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/lineview"
)

// envNames are the line's environments, in order.
var envNames = flux.Environments

// funcs are the templates' helpers: short forms of long names, and times
// a script turns into the reader's own zone.
var funcs = template.FuncMap{
	// short cuts a commit to 12 characters.
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	// digest is an image reference's digest, shortened: sha256:0123456789ab.
	"digest": func(ref string) string {
		if _, d, ok := strings.Cut(ref, "@"); ok {
			if len(d) > 7+12 {
				return d[:7+12]
			}
			return d
		}
		return ref
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock": func(t time.Time) string {
		return t.UTC().Format("Jan 2 15:04:05")
	},
	"seconds": func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) },
	// envOf is a version's state in one environment (nil: never there).
	"envOf": func(v lineview.Version, env string) *lineview.Env {
		for i := range v.Envs {
			if v.Envs[i].Env == env {
				return &v.Envs[i]
			}
		}
		return nil
	},
	"unfinished": func(status string) bool {
		switch status {
		case "queued", "running", "notStarted":
			return true
		}
		return false
	},
	"duration": func(from, to time.Time) string {
		if from.IsZero() || to.IsZero() {
			return ""
		}
		return to.Sub(from).Round(100 * time.Millisecond).String()
	},
}
