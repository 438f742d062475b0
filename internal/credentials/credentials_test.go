package credentials

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A loopback registry gets the scheme it serves; any other gets HTTPS
// unless plain HTTP is asked for.
func TestSchemeFollowsWhatALoopbackRegistryServes(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	tlsSrv := httptest.NewTLSServer(h)
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(h)
	defer plainSrv.Close()
	ctx := context.Background()
	for _, c := range []struct {
		registry string
		insecure bool
		want     string
	}{
		{strings.TrimPrefix(tlsSrv.URL, "https://"), false, "https"},
		{strings.TrimPrefix(plainSrv.URL, "http://"), false, "http"},
		{strings.TrimPrefix(tlsSrv.URL, "https://"), true, "http"},
		{"registry.example.com", false, "https"},
		{"10.244.0.1:5000", false, "https"},
	} {
		if got := Scheme(ctx, c.registry, c.insecure); got != c.want {
			t.Errorf("Scheme(%s, insecure=%v) = %s, want %s", c.registry, c.insecure, got, c.want)
		}
	}
}
