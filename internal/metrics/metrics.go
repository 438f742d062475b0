// Package metrics is what Slipway's own services tell Prometheus: pushes
// to the git server, pipeline runs by result and duration, and the
// registry's requests, beside the Go runtime's and the process's own
// series. The platform serves them, with gotk_resource_info for Flux's
// objects (flux.ResourceCollector), at /metrics on the git server's
// addresses, to admins only.
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Platform holds the series of one running platform.
type Platform struct {
	Registry *prometheus.Registry

	pushes           *prometheus.CounterVec
	runs             *prometheus.CounterVec
	runSeconds       *prometheus.HistogramVec
	lastRun          *prometheus.GaugeVec
	registryRequests *prometheus.CounterVec
	registrySeconds  *prometheus.HistogramVec
}

// New makes the series, registered with a registry of their own (not the
// process-wide default, which libraries fill as they please).
func New() *Platform {
	p := &Platform{
		Registry: prometheus.NewRegistry(),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_git_pushes_total", Help: "Branch and tag changes the git server took, by team.",
		}, []string{"team"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_pipeline_runs_total", Help: "Pipeline runs that ended, by team, pipeline and result.",
		}, []string{"team", "pipeline", "result"}),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "slipway_pipeline_run_duration_seconds", Help: "How long pipeline runs took from start to end, by team, pipeline and result.",
			Buckets: []float64{5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"team", "pipeline", "result"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slipway_pipeline_last_run_succeeded", Help: "1 when the last run of a pipeline on a branch succeeded, 0 when it did not (known once a run ended since the platform started).",
		}, []string{"team", "pipeline", "branch"}),
		registryRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_registry_http_requests_total", Help: "Requests the registry answered, by method and status code.",
		}, []string{"method", "code"}),
		registrySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "slipway_registry_http_request_duration_seconds", Help: "How long the registry took to answer, by method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
	}
	p.Registry.MustRegister(p.pushes, p.runs, p.runSeconds, p.lastRun, p.registryRequests, p.registrySeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return p
}

// Pushed counts a ref change of a repository (TEAM/NAME).
func (p *Platform) Pushed(repo string) {
	team, _, _ := strings.Cut(repo, "/")
	p.pushes.WithLabelValues(team).Inc()
}

// RunEnded counts a finished run of a pipeline (TEAM/NAME) of a ref
// (refs/heads/main; "" for a manual run of a working tree) and its time.
func (p *Platform) RunEnded(pipeline, ref, result string, took time.Duration) {
	team, _, _ := strings.Cut(pipeline, "/")
	p.runs.WithLabelValues(team, pipeline, result).Inc()
	if took > 0 {
		p.runSeconds.WithLabelValues(team, pipeline, result).Observe(took.Seconds())
	}
	if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok && result != "canceled" {
		succeeded := 0.0
		if result == "succeeded" {
			succeeded = 1
		}
		p.lastRun.WithLabelValues(team, pipeline, branch).Set(succeeded)
	}
}

// InstrumentRegistry wraps the registry's handler to count and time its answers.
func (p *Platform) InstrumentRegistry(h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(p.registryRequests,
		promhttp.InstrumentHandlerDuration(p.registrySeconds, h))
}

// Handler serves the series, with any extra collectors (Flux's objects).
func (p *Platform) Handler(extra ...prometheus.Collector) http.Handler {
	g := prometheus.Gatherers{p.Registry}
	if len(extra) > 0 {
		r := prometheus.NewRegistry()
		r.MustRegister(extra...)
		g = append(g, r)
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
