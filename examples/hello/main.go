// Command hello is team dev1's example app: a small web server that says
// hello and which version it is. It counts and times its requests for
// Prometheus, on a port of their own ($METRICS_PORT), where the platform
// scrapes every pod that names a container port "metrics".
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// version is what this build of the app calls itself.
const version = "1.0"

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from dev1, version %s\n", version)
	})
	return mux
}

// instrumented counts h's requests by status code and method and times
// them, under the names the platform's alert rules and `slipway metrics`
// read: http_requests_total and http_request_duration_seconds.
func instrumented(reg prometheus.Registerer, h http.Handler) http.Handler {
	labels := []string{"code", "method"}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests answered, by status code and method.",
	}, labels)
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "How long HTTP requests took to answer, by status code and method.",
		Buckets: prometheus.DefBuckets,
	}, labels)
	reg.MustRegister(requests, duration)
	return promhttp.InstrumentHandlerDuration(duration, promhttp.InstrumentHandlerCounter(requests, h))
}

func main() {
	port, metricsPort := os.Getenv("PORT"), os.Getenv("METRICS_PORT")
	if port == "" {
		port = "8080"
	}
	if metricsPort == "" {
		metricsPort = "9100"
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	go func() {
		log.Fatal(http.ListenAndServe(":"+metricsPort, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	}()
	log.Fatal(http.ListenAndServe(":"+port, instrumented(reg, handler())))
}
