package gitserver_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/gitserver"
)

// TestMirrorFollowsItsHost links a repository of this server to one on
// another server (the "host", over real HTTP) and syncs it: what the host
// changed is fetched and told as pushes are, once; the copy takes no
// pushes of its own.
func TestMirrorFollowsItsHost(t *testing.T) {
	hostAddr, _, _ := start(t)
	addr, srv, ev := start(t)
	ctx := context.Background()
	good := gitserver.Mirror{URL: "http://" + hostAddr + "/dev1/hello.git", Username: "dev1", Password: "dev1-pw"}
	if err := good.Check(ctx); err != nil {
		t.Fatalf("checking the host: %v", err)
	}
	bad := gitserver.Mirror{URL: good.URL, Username: "dev1", Password: "wrong-pw-XYZ"}
	if err := bad.Check(ctx); err == nil || strings.Contains(err.Error(), "wrong-pw-XYZ") || !strings.Contains(err.Error(), "reading "+good.URL) {
		t.Fatalf("checking the host with a wrong password: %v", err)
	}
	if err := (gitserver.Mirror{URL: "http://" + hostAddr + "/dev1/none.git", Username: "dev1", Password: "dev1-pw"}).Check(ctx); err == nil {
		t.Fatal("checking a repository the host does not have passed")
	}
	m, err := srv.Link("dev1/linked", gitserver.Mirror{URL: "http://" + hostAddr + "/dev1/hello.git", Username: "dev1", Password: "dev1-pw"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Secret) < 24 {
		t.Fatalf("webhook secret %q is short", m.Secret)
	}
	if info, err := os.Stat(filepath.Join(srv.Root, "dev1", "linked.git", "slipway-mirror.json")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the mirror's settings (with the host's password) are not private: %v %v", info.Mode(), err)
	}
	// Nothing on the host yet: no change.
	if err := srv.Sync(ctx, "dev1/linked", "start"); err != nil || len(ev.all()) != 0 {
		t.Fatalf("first sync of an empty host: %v %+v", err, ev.all())
	}

	work := t.TempDir()
	host := "http://dev1:dev1-pw@" + hostAddr + "/dev1/hello.git"
	git(t, work, "clone", "--quiet", host, "w")
	repo := filepath.Join(work, "w")
	commit := func(msg string) string {
		os.WriteFile(filepath.Join(repo, "f"), []byte(msg), 0o644)
		git(t, repo, "add", ".")
		git(t, repo, "commit", "-qm", msg)
		out, _ := git(t, repo, "rev-parse", "HEAD")
		return strings.TrimSpace(out)
	}
	first := commit("first")
	if out, err := git(t, repo, "push", "-q", "origin", "HEAD:main", "HEAD:refs/heads/feature"); err != nil {
		t.Fatalf("push to the host: %v\n%s", err, out)
	}
	if err := srv.Sync(ctx, "dev1/linked", "webhook (alice)"); err != nil {
		t.Fatal(err)
	}
	got := ev.all()
	if len(got) != 2 || got[0].Repo != "dev1/linked" || got[0].New != first || got[0].Old != gitserver.ZeroCommit || got[0].Pusher != "webhook (alice)" {
		t.Fatalf("events after the first fetch: %+v", got)
	}
	// Again, with nothing new: nothing told.
	if err := srv.Sync(ctx, "dev1/linked", "poll"); err != nil || len(ev.all()) != 2 {
		t.Fatalf("a sync without changes: %v %+v", err, ev.all())
	}
	// A new commit, a tag, a deleted branch.
	second := commit("second")
	git(t, repo, "tag", "v1")
	if out, err := git(t, repo, "push", "-q", "origin", "HEAD:main", "v1", ":refs/heads/feature"); err != nil {
		t.Fatalf("second push to the host: %v\n%s", err, out)
	}
	if err := srv.Sync(ctx, "dev1/linked", "poll"); err != nil {
		t.Fatal(err)
	}
	changes := map[string]gitserver.Event{}
	for _, e := range ev.all()[2:] {
		changes[e.Ref] = e
	}
	if len(changes) != 3 || changes["refs/heads/main"].Old != first || changes["refs/heads/main"].New != second ||
		changes["refs/tags/v1"].New != second || changes["refs/heads/feature"].New != gitserver.ZeroCommit {
		t.Fatalf("events after the second fetch: %+v", changes)
	}

	// The copy is read like any repository, by any user.
	if out, err := git(t, work, "clone", "--quiet", "http://dev2:dev2-pw@"+addr+"/dev1/linked.git", "copy"); err != nil {
		t.Fatalf("cloning the copy: %v\n%s", err, out)
	}
	if out, _ := git(t, filepath.Join(work, "copy"), "rev-parse", "HEAD"); strings.TrimSpace(out) != second {
		t.Fatalf("the copy's main is %s, want %s", out, second)
	}
	// And takes no push, not even from its team.
	out, err := git(t, repo, "push", "http://dev1:dev1-pw@"+addr+"/dev1/linked.git", "HEAD:refs/heads/sneaky")
	if err == nil || !strings.Contains(out, "403") {
		t.Fatalf("push to a mirror: %v\n%s", err, out)
	}
	if len(ev.all()) != 5 {
		t.Fatalf("the refused push was told: %+v", ev.all())
	}

	// A host that refuses the credentials: the error says so, without
	// the password, and nothing changes.
	if _, err := srv.Link("dev1/refused", gitserver.Mirror{URL: "http://" + hostAddr + "/dev1/hello.git", Username: "dev1", Password: "not-the-password-XYZ"}); err != nil {
		t.Fatal(err)
	}
	err = srv.Sync(ctx, "dev1/refused", "poll")
	if err == nil || !strings.Contains(err.Error(), "fetching dev1/refused from http://"+hostAddr) || strings.Contains(err.Error(), "not-the-password-XYZ") {
		t.Fatalf("sync with a refused password: %v", err)
	}
	if st, ok := srv.MirrorStatus("dev1/refused"); !ok || st.By != "poll" || !strings.Contains(st.Error, "fetching dev1/refused") {
		t.Fatalf("status of the refused fetch: %+v %v", st, ok)
	}
	// New credentials (a renewed token): the link changes, its secret
	// stays, and the next fetch works.
	refusedSecret, _, _ := srv.MirrorOf("dev1/refused")
	updated, err := srv.Link("dev1/refused", gitserver.Mirror{URL: good.URL, Username: "dev1", Password: "dev1-pw"})
	if err != nil || updated.Secret != refusedSecret.Secret {
		t.Fatalf("updating the link: %v (secret %q, was %q)", err, updated.Secret, refusedSecret.Secret)
	}
	if err := srv.Sync(ctx, "dev1/refused", "webhook"); err != nil {
		t.Fatal(err)
	}
	if st, ok := srv.MirrorStatus("dev1/refused"); !ok || st.Error != "" || st.By != "webhook" {
		t.Fatalf("status after the renewed credentials: %+v", st)
	}

	if err := srv.Sync(ctx, "dev1/hello", "poll"); err == nil {
		t.Fatal("a repository pushed here synced as a mirror")
	}
	if _, err := srv.Link("dev1/hello", good); err == nil || !strings.Contains(err.Error(), "takes pushes here") {
		t.Fatalf("linking over a repository pushed here: %v", err)
	}

	// Unlinked, the copy keeps its history and takes pushes.
	if err := srv.Unlink("dev1/linked"); err != nil {
		t.Fatal(err)
	}
	if out, err := git(t, repo, "push", "http://dev1:dev1-pw@"+addr+"/dev1/linked.git", "HEAD:refs/heads/after-unlink"); err != nil {
		t.Fatalf("push after unlink: %v\n%s", err, out)
	}
	if err := srv.Unlink("dev1/linked"); err == nil {
		t.Fatal("unlinking twice passed")
	}
}

// TestMirrorURLsReachNothingButAHost: a mirror cannot be pointed at the
// platform's own files or at another protocol.
func TestMirrorURLsReachNothingButAHost(t *testing.T) {
	_, srv, _ := start(t)
	for _, u := range []string{
		"file://" + filepath.Join(srv.Root, "dev2", "shop.git"),
		srv.Root + "/dev2/shop.git",
		"ssh://git@example.com/x.git",
		"ext::sh -c touch% /tmp/pwned",
		"http://example.com/x.git",
		"https://user:secret@example.com/x.git",
	} {
		if _, err := srv.Link("dev1/evil", gitserver.Mirror{URL: u}); err == nil {
			t.Errorf("linking to %q was accepted", u)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the URL's password: %v", err)
		}
	}
	if names, _ := srv.List(); len(names) != 2 {
		t.Fatalf("refused links left repositories: %v", names)
	}
	if _, err := srv.Link("dev1/fast", gitserver.Mirror{URL: "https://example.com/x.git", Poll: gitserver.Duration(time.Second)}); err == nil {
		t.Error("polling every second was accepted")
	}
}

// TestWebhooksTakeOnlyTheRepositorysSecret sends the three shapes of
// webhook, and the ways to get one wrong.
func TestWebhooksTakeOnlyTheRepositorysSecret(t *testing.T) {
	_, srv, _ := start(t)
	linked, err := srv.Link("dev1/linked", gitserver.Mirror{URL: "https://example.com/dev1/hello.git"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := srv.Link("dev2/linked", gitserver.Mirror{URL: "https://example.com/dev2/shop.git"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var queued []string
	hooks := httptest.NewServer(&gitserver.Webhooks{Server: srv, Queue: func(name, pusher string) {
		mu.Lock()
		queued = append(queued, name+" by "+pusher)
		mu.Unlock()
	}})
	defer hooks.Close()
	send := func(repo string, body []byte, set func(*http.Request)) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, hooks.URL+gitserver.WebhookPath+repo, bytes.NewReader(body))
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		last := ""
		if len(queued) > 0 {
			last = queued[len(queued)-1]
			queued = nil
		}
		return resp.StatusCode, last
	}
	github := func(secret string) func(*http.Request) {
		return func(r *http.Request) {
			mac := hmac.New(sha256.New, []byte(secret))
			body, _ := r.GetBody()
			b := new(bytes.Buffer)
			b.ReadFrom(body)
			mac.Write(b.Bytes())
			r.Header.Set("X-GitHub-Event", "push")
			r.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		}
	}
	ghPush := []byte(`{"ref":"refs/heads/main","after":"deadbeef","pusher":{"name":"alice"}}`)
	adoPush := []byte(`{"eventType":"git.push","resource":{"pushedBy":{"uniqueName":"bob@example.com"}}}`)

	if code, q := send("dev1/linked", ghPush, github(linked.Secret)); code != http.StatusAccepted || q != "dev1/linked by webhook (alice)" {
		t.Fatalf("GitHub's push: %d %q", code, q)
	}
	if code, q := send("dev1/linked", adoPush, func(r *http.Request) { r.SetBasicAuth("azure", linked.Secret) }); code != http.StatusAccepted || q != "dev1/linked by webhook (bob@example.com)" {
		t.Fatalf("Azure DevOps's push: %d %q", code, q)
	}
	if code, q := send("dev1/linked", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+linked.Secret) }); code != http.StatusAccepted || q != "dev1/linked by webhook" {
		t.Fatalf("a generic webhook: %d %q", code, q)
	}
	if code, q := send("dev1/linked", []byte(`{"zen":"hi"}`), func(r *http.Request) {
		github(linked.Secret)(r)
		r.Header.Set("X-GitHub-Event", "ping")
	}); code != http.StatusOK || q != "" {
		t.Fatalf("GitHub's ping: %d %q", code, q)
	}

	for _, c := range []struct {
		what string
		repo string
		body []byte
		set  func(*http.Request)
		want int
	}{
		{"no secret", "dev1/linked", ghPush, nil, http.StatusUnauthorized},
		{"GitHub's signature with another secret", "dev1/linked", ghPush, github("guess"), http.StatusUnauthorized},
		{"dev2's secret on dev1's repository", "dev1/linked", ghPush, github(other.Secret), http.StatusUnauthorized},
		{"a signature of another body", "dev1/linked", ghPush, func(r *http.Request) {
			github(linked.Secret)(r)
			r.Body = http.NoBody
			r.ContentLength = 0
		}, http.StatusUnauthorized},
		{"Basic with a wrong password", "dev1/linked", adoPush, func(r *http.Request) { r.SetBasicAuth("azure", "guess") }, http.StatusUnauthorized},
		{"a repository pushed here", "dev1/hello", ghPush, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+linked.Secret) }, http.StatusUnauthorized},
		{"a path out of the root", "../dev1/linked", ghPush, nil, http.StatusNotFound},
		{"a payload over 4 MiB", "dev1/linked", bytes.Repeat([]byte("x"), 5<<20), func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+linked.Secret) }, http.StatusRequestEntityTooLarge},
	} {
		if code, q := send(c.repo, c.body, c.set); code != c.want || q != "" {
			t.Errorf("%s: %d (queued %q), want %d and nothing queued", c.what, code, q, c.want)
		}
	}
	resp, err := http.Get(hooks.URL + gitserver.WebhookPath + "dev1/linked")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %s", resp.Status)
	}
}
