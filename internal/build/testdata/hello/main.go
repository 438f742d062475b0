// Command hello answers every request with a greeting and the time zone
// data and CA certificates it found, to show the base image works.
package main

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, tzErr := time.LoadLocation("Europe/Amsterdam")
		pool, certErr := x509.SystemCertPool()
		certs := 0
		if certErr == nil {
			certs = len(pool.Subjects())
		}
		fmt.Fprintf(w, "hello from slipway uid=%d tz=%v certs=%d\n", os.Getuid(), tzErr == nil, certs)
	})
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
