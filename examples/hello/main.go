// Command hello is team dev1's example app: a small web server that says
// hello and which version it is.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
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

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Fatal(http.ListenAndServe(":"+port, handler()))
}
