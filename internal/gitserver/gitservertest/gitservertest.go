// Package gitservertest serves the real git server over plain HTTP on a
// loopback port for other packages' tests, with users dev1 (pushes dev1/)
// and ops (pushes ops/), each with the password NAME-pw.
package gitservertest

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/gitserver"
)

// Start serves the given repositories (TEAM/NAME, created empty) until
// the test ends, and returns the server's base URL (http://HOST:PORT).
func Start(t testing.TB, repos ...string) string {
	t.Helper()
	dir := t.TempDir()
	users := auth.Open(filepath.Join(dir, "users.yaml"))
	for _, name := range []string{"dev1", "ops"} {
		if err := users.Set(name, name+"-pw", false, []string{name + "/"}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := gitserver.New(filepath.Join(dir, "repos"), users)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		if err := srv.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}
