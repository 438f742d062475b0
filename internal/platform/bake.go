package platform

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/release"
)

// BakeRequest asks the platform to bake the version an app runs in an
// environment: for a while it sends the app a sample of traffic (through
// the API server's service proxy, as the smoke checks) and watches the
// app's critical alerts. A version can pass its smoke test and still fail
// under traffic; the bake is where the line sees it before prod.
type BakeRequest struct {
	Team string `json:"team,omitempty"`
	App  string `json:"app"`
	Env  string `json:"env"`
	// Duration is how long, as a Go duration ("90s"), at most maxBake.
	Duration string `json:"duration"`
	// Rate is the requests per second sent to Path (at most
	// release.MaxLoadRate); 0 sends none, for an app with traffic of its
	// own.
	Rate float64 `json:"rate,omitempty"`
	Path string  `json:"path,omitempty"`
}

// BakeResult is the platform's verdict on a bake.
type BakeResult struct {
	Passed  bool   `json:"passed"`
	Message string `json:"message"`
	// Answers counts the requests sent, by the app's status code ("0":
	// no answer).
	Answers map[string]int `json:"answers"`
	Seconds float64        `json:"seconds"`
}

const (
	maxBake = 15 * time.Minute
	// bakeGrace is how long a bake waits past its time for an alert
	// still pending to fire or clear, and for an alert from before it
	// (the version this one replaces) to resolve.
	bakeGrace = 3 * time.Minute
	bakePoll  = 5 * time.Second
)

// check bounds the bake and its traffic, before anything reaches the
// cluster: the path is asked with the platform's rights.
func (req *BakeRequest) check() error {
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d < time.Second || d > maxBake {
		return fmt.Errorf("bake duration %q: want between 1s and %s", req.Duration, maxBake)
	}
	if req.Rate < 0 || req.Rate > release.MaxLoadRate {
		return fmt.Errorf("rate %v requests/s: want between 0 and %d", req.Rate, release.MaxLoadRate)
	}
	if req.Path == "" {
		req.Path = "/"
	}
	return release.CheckPath(req.Path)
}

func (a *API) bake(w http.ResponseWriter, r *http.Request) {
	var req BakeRequest
	_, c, ok := a.releaseCaller(w, r, &req, &req.Team, &req.App, &req.Env)
	if !ok {
		return
	}
	if _, ok := runningAlertmanager(a.Config); !ok {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"a bake watches the app's alerts, and the platform runs without monitoring (slipway up --no-monitoring)"})
		return
	}
	d, _ := time.ParseDuration(req.Duration) // checked
	ctx, cancel := context.WithTimeout(r.Context(), d+bakeGrace+time.Minute)
	defer cancel()
	ns := flux.TenantNamespace(req.Team, req.Env)

	traffic, stopTraffic := context.WithCancel(ctx)
	watch, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	type sent struct {
		answers map[int]int
		err     error
	}
	done := make(chan sent, 1)
	go func() {
		answers, err := release.Load(traffic, c, ns, req.App, req.Path, req.Rate)
		if err != nil {
			stopWatching() // no traffic (no Service): no bake
		}
		done <- sent{answers, err}
	}()
	start := time.Now()
	passed, msg := a.bakeVerdict(watch, req.Team, req.App, req.Env, start, d)
	stopTraffic()
	s := <-done
	if s.err != nil {
		passed, msg = false, "sending the app traffic: "+s.err.Error()
	}
	res := BakeResult{Passed: passed, Message: msg, Answers: map[string]int{}, Seconds: time.Since(start).Seconds()}
	for code, n := range s.answers {
		res.Answers[strconv.Itoa(code)] = n
	}
	writeJSON(w, http.StatusOK, res)
}

// bakeVerdict watches the app's critical alerts in the environment (as
// the promotion gate sees them: firing, not silenced or inhibited; and
// Prometheus's pending ones) from start for d. An alert that fires during
// the bake fails it at once. When the time is up, an alert still pending,
// or firing since before the bake, is waited for up to bakeGrace: the
// bake passes when none is left.
func (a *API) bakeVerdict(ctx context.Context, team, app, env string, start time.Time, d time.Duration) (bool, string) {
	ns := flux.TenantNamespace(team, env)
	prom := a.prometheus()
	end := start.Add(d)
	for {
		firing, err := a.heldBy(ctx, team, app, env)
		if err != nil {
			return false, "reading the app's alerts: " + err.Error()
		}
		for _, al := range firing {
			if !al.StartsAt.Before(start) {
				return false, fmt.Sprintf("%s fired %s into the bake: %s", al.Labels["alertname"],
					al.StartsAt.Sub(start).Round(time.Second), alertText(al.Labels, al.Annotations))
			}
		}
		rules, err := prom.Alerts(ctx)
		if err != nil {
			return false, "reading Prometheus's pending alerts: " + err.Error()
		}
		var pending []string
		for _, al := range rules {
			l := al.Labels
			if al.State == "pending" && l["severity"] == "critical" && l["namespace"] == ns && l["app"] == app {
				pending = append(pending, l["alertname"])
			}
		}
		now := time.Now()
		if now.After(end) {
			switch {
			case len(firing) == 0 && len(pending) == 0:
				return true, fmt.Sprintf("no critical alert for %s in %s during the %s bake", app, ns, d)
			case now.After(end.Add(bakeGrace)) && len(firing) > 0:
				return false, fmt.Sprintf("%s still fires %s after the bake (since %s): %s", firing[0].Labels["alertname"], bakeGrace,
					firing[0].StartsAt.UTC().Format(time.RFC3339), alertText(firing[0].Labels, firing[0].Annotations))
			case now.After(end.Add(bakeGrace)):
				return false, fmt.Sprintf("%s still pending %s after the bake", pending[0], bakeGrace)
			}
		}
		select {
		case <-ctx.Done():
			return false, "the bake was cut short: " + ctx.Err().Error()
		case <-time.After(bakePoll):
		}
	}
}

// Bake asks the platform to bake an app's running version; it answers
// when the bake ends.
func (p *Platform) Bake(ctx context.Context, user, password string, req BakeRequest) (*BakeResult, error) {
	var out BakeResult
	return &out, p.call(ctx, user, password, "bakes", req, &out)
}
