// Command quotes is team dev2's example app: it serves a quote of the day
// as JSON, and keeps its quotes in PostgreSQL when the pod names a
// database (PGHOST and the other libpq variables; the chart sets them from
// the database's Secret), in memory otherwise. It counts and times its requests for Prometheus, on a port of
// their own ($METRICS_PORT), where the platform scrapes every pod that
// names a container port "metrics".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// version is what this build of the app calls itself.
const version = "1.0"

// validSlug is a quote's name in its URL.
var validSlug = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func handler(st store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		all, err := st.List(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		if len(all) == 0 {
			fail(w, errNotFound)
			return
		}
		reply(w, http.StatusOK, map[string]string{
			"quote":   all[time.Now().YearDay()%len(all)].Text,
			"version": version,
			"store":   st.Kind(),
		})
	})
	mux.HandleFunc("GET /quotes", func(w http.ResponseWriter, r *http.Request) {
		all, err := st.List(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"quotes": all, "store": st.Kind()})
	})
	mux.HandleFunc("GET /quotes/{slug}", func(w http.ResponseWriter, r *http.Request) {
		q, err := st.Get(r.Context(), r.PathValue("slug"))
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, q)
	})
	// PUT stores a quote under its slug, as many times as asked: the
	// smoke test writes the same one on every run.
	mux.HandleFunc("PUT /quotes/{slug}", func(w http.ResponseWriter, r *http.Request) {
		q := Quote{Slug: r.PathValue("slug")}
		var body struct {
			Text string `json:"text"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		switch err := dec.Decode(&body); {
		case !validSlug.MatchString(q.Slug):
			http.Error(w, "a slug is lower-case letters, digits and dashes, at most 63", http.StatusBadRequest)
			return
		case err != nil || strings.TrimSpace(body.Text) == "" || len(body.Text) > 1000:
			http.Error(w, `send {"text": "..."} with 1 to 1000 characters`, http.StatusBadRequest)
			return
		}
		q.Text = body.Text
		if err := st.Put(r.Context(), q); err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, q)
	})
	return mux
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, errReadOnly):
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		log.Printf("store: %v", err)
		http.Error(w, "the quotes are out of reach right now", http.StatusServiceUnavailable)
	}
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
	var st store = newMemoryStore()
	// The chart takes PGHOST and the rest from the database's Secret when
	// there is one (slipway db create); without it, memory.
	if os.Getenv("PGHOST") != "" {
		pg, err := openPostgres(context.Background())
		if err != nil {
			log.Fatalf("database %s: %v", os.Getenv("PGHOST"), err)
		}
		st = pg
	}
	log.Printf("quotes %s: keeping quotes in %s", version, st.Kind())
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	go func() {
		log.Fatal(http.ListenAndServe(":"+metricsPort, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	}()
	log.Fatal(http.ListenAndServe(":"+port, instrumented(reg, handler(st))))
}
