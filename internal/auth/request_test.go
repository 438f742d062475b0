package auth

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// A request over a real socket: no credentials and wrong ones get 401
// with a challenge, the right ones the user, and past the failures one
// address may make, even the right password gets 429 without a check.
func TestRequestUserRefusesAndThrottles(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), "users.yaml"))
	if err := s.Set("dev1", "pw1", false, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, status, err := s.RequestUser(w, r, "test")
		if err != nil {
			http.Error(w, Refusal(err, "no credentials"), status)
			return
		}
		w.Write([]byte(user.Name))
	}))
	defer srv.Close()
	ask := func(user, password string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := ask("", ""); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="test"` {
		t.Fatalf("no credentials: %s %v", resp.Status, resp.Header)
	}
	if resp := ask("dev1", "pw1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the right password: %s", resp.Status)
	}
	for range failuresPerUser {
		if resp := ask("dev1", "wrong"); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("a wrong password: %s %v", resp.Status, resp.Header)
		}
	}
	if resp := ask("dev1", "pw1"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the right password after %d failures: %s, want 429", failuresPerUser, resp.Status)
	}
}
