// Command quotes is team dev2's example app: it serves a quote of the day
// as JSON.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

// version is what this build of the app calls itself.
const version = "1.0"

var quotes = []string{
	"Ship small, ship often.",
	"A tested version is the only one worth promoting.",
	"Every hand-off is an artifact.",
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"quote":   quotes[time.Now().YearDay()%len(quotes)],
			"version": version,
		})
	})
	return mux
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Fatal(http.ListenAndServe(":"+port, handler()))
}
