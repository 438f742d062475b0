package gitserver

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/auth"
)

// recordingServer is a git server whose backend is git-http-backend
// behind a script that first writes down what it was asked to run
// (method, PATH_INFO, QUERY_STRING): what git acts on, whatever the URL
// looked like. dev1 pushes dev1/…, dev2 pushes dev2/….
func recordingServer(t testing.TB) (*Server, func() []string) {
	t.Helper()
	dir := t.TempDir()
	users := auth.Open(filepath.Join(dir, "users.yaml"))
	for _, u := range []string{"dev1", "dev2"} {
		if err := users.Set(u, u+"-pw", false, []string{u + "/"}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(filepath.Join(dir, "repos"), users)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"dev1/hello", "dev2/shop"} {
		if err := srv.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "backend.log")
	script := filepath.Join(dir, "backend")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\nprintf '%%s %%s %%s\\n' \"$REQUEST_METHOD\" \"$PATH_INFO\" \"$QUERY_STRING\" >> %q\nexec %q \"$@\"\n", log, srv.backend)), 0o755); err != nil {
		t.Fatal(err)
	}
	srv.backend = script
	return srv, func() []string {
		data, _ := os.ReadFile(log)
		return strings.Fields(strings.ReplaceAll(string(data), " ", "|"))
	}
}

// reachedReceivePack says whether any backend run was receive-pack's.
func reachedReceivePack(runs []string) bool {
	for _, r := range runs {
		if strings.Contains(r, "git-receive-pack") {
			return true
		}
	}
	return false
}

// rawRequest sends the request line exactly as written, so that no
// client cleans or re-encodes the path.
func rawRequest(t *testing.T, addr, method, target, user string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := &http.Request{Method: method, Header: http.Header{}}
	req.SetBasicAuth(user, user+"-pw")
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, target, addr, req.Header.Get("Authorization"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Requests whose URL reads as one repository or service while git would
// run another are refused before git runs: dev1 never reaches dev2's
// receive-pack.
func TestRoutingRefusesDisguisedPushes(t *testing.T) {
	srv, runs := recordingServer(t)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")
	for _, c := range []struct {
		method, target string
		want           int
	}{
		{"POST", "/dev1/hello.git/%2e%2e/%2e%2e/dev2/shop.git/git-receive-pack", http.StatusBadRequest},
		{"POST", "/dev1/hello.git/../../dev2/shop.git/git-receive-pack", http.StatusBadRequest},
		{"POST", "/dev2/shop.git/%2Fgit-receive-pack", http.StatusBadRequest},
		{"POST", "/dev2/shop.git//git-receive-pack", http.StatusBadRequest},
		{"GET", "/dev2/shop.git/info/refs?service=git-upload-pack&service=git-receive-pack", http.StatusBadRequest},
		{"GET", "/dev2/shop.git/info/refs?service=git-receive-pack&x=1", http.StatusBadRequest},
		{"POST", "/dev2/shop.git/git-receive-pack?service=git-upload-pack", http.StatusBadRequest},
		{"GET", "/dev2/shop.git/git-receive-pack", http.StatusMethodNotAllowed},
		{"GET", "/dev2/shop.git/HEAD", http.StatusBadRequest},
		{"GET", "/dev2/shop.git/info/refs", http.StatusBadRequest},
		{"POST", "/dev2/shop.git/git-receive-pack", http.StatusForbidden},
		{"GET", "/dev2/shop.git/info/refs?service=git-receive-pack", http.StatusForbidden},
		// The push journal lives under the root; no route reaches it.
		{"GET", "/.pushes/x.json", http.StatusNotFound},
		{"GET", "/.pushes.git/info/refs?service=git-upload-pack", http.StatusNotFound},
	} {
		if got := rawRequest(t, addr, c.method, c.target, "dev1"); got != c.want {
			t.Errorf("dev1 %s %s: status %d, want %d", c.method, c.target, got, c.want)
		}
	}
	if r := runs(); reachedReceivePack(r) {
		t.Fatalf("git-http-backend ran receive-pack for dev1 on dev2's repository: %v", r)
	}
	// The same requests, right, still work for the owner.
	if got := rawRequest(t, addr, "GET", "/dev2/shop.git/info/refs?service=git-receive-pack", "dev2"); got != http.StatusOK {
		t.Fatalf("dev2's own receive-pack advertisement: status %d", got)
	}
	if r := runs(); len(r) != 1 || r[0] != "GET|/dev2/shop.git/info/refs|service=git-receive-pack" {
		t.Fatalf("backend runs: %v", r)
	}
}

// FuzzRouting: whatever the method, path and query, a user without push
// rights on a repository never gets git-http-backend to run
// receive-pack. CI runs the seeds; `go test -fuzz FuzzRouting
// ./internal/gitserver` searches further.
func FuzzRouting(f *testing.F) {
	for _, s := range [][3]string{
		{"POST", "/dev2/shop.git/git-receive-pack", ""},
		{"GET", "/dev2/shop.git/info/refs", "service=git-receive-pack"},
		{"GET", "/dev2/shop.git/info/refs", "service=git-upload-pack&service=git-receive-pack"},
		{"POST", "/dev1/hello.git/../../dev2/shop.git/git-receive-pack", ""},
		{"POST", "/dev2/shop.git//git-receive-pack", ""},
		{"POST", "/dev2/shop.git/git-receive-pack/", ""},
		{"POST", "/dev2//shop.git/git-receive-pack", ""},
		{"GET", "/dev1/hello.git/info/refs", "service=git-upload-pack"},
		{"POST", "/dev1/hello.git/git-upload-pack", ""},
		{"PUT", "/dev2/shop.git/git-receive-pack", ""},
		{"GET", "/dev2/shop.git/info/refs", "service=git-receive-pack%00"},
		{"GET", "/dev2/shop.git/info/refs", "service=git%2dreceive-pack"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	srv, runs := recordingServer(f)
	f.Fuzz(func(t *testing.T, method, path, query string) {
		if !validMethod(method) {
			return
		}
		req := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{}, Host: "git"}
		req.RequestURI = req.URL.RequestURI()
		req.Body = http.NoBody
		req.SetBasicAuth("dev1", "dev1-pw")
		srv.ServeHTTP(httptest.NewRecorder(), req)
		for _, r := range runs() {
			parts := strings.SplitN(r, "|", 3)
			ranPath := parts[1]
			if strings.Contains(r, "git-receive-pack") && (!strings.HasPrefix(ranPath, "/dev1/hello.git/") || strings.Contains(ranPath, "..")) {
				t.Fatalf("%s %q ?%q: git-http-backend ran %s", method, path, query, r)
			}
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
