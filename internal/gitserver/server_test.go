package gitserver_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/gitserver"
)

type events struct {
	mu  sync.Mutex
	got []gitserver.Event
}

func (e *events) add(ev gitserver.Event) { e.mu.Lock(); e.got = append(e.got, ev); e.mu.Unlock() }
func (e *events) all() []gitserver.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]gitserver.Event(nil), e.got...)
}

// start serves a git server with users dev1 (pushes dev1/…), dev2 and ops.
func start(t *testing.T) (string, *gitserver.Server, *events) {
	t.Helper()
	dir := t.TempDir()
	users := auth.Open(filepath.Join(dir, "users.yaml"))
	for _, u := range []struct{ name, prefix string }{{"dev1", "dev1/"}, {"dev2", "dev2/"}, {"ops", "fleet/"}} {
		if err := users.Set(u.name, u.name+"-pw", false, []string{u.prefix}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := gitserver.New(filepath.Join(dir, "repos"), users)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	srv.OnPush = ev.add
	for _, r := range []string{"dev1/hello", "dev2/shop"} {
		if err := srv.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The repositories are removed only once every request's handler is
	// done (a push's handler still reads refs after its client left).
	var handling sync.WaitGroup
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handling.Add(1)
		defer handling.Done()
		srv.ServeHTTP(w, r)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close(); handling.Wait() })
	return ln.Addr().String(), srv, ev
}

func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCloneAndPushWithRealGit(t *testing.T) {
	addr, srv, ev := start(t)
	work := t.TempDir()
	url := func(user, repo string) string {
		if user == "" {
			return "http://" + addr + "/" + repo + ".git"
		}
		return "http://" + user + ":" + user + "-pw@" + addr + "/" + repo + ".git"
	}
	if out, err := git(t, work, "clone", url("dev1", "dev1/hello"), "hello"); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	repo := filepath.Join(work, "hello")
	os.WriteFile(filepath.Join(repo, "main.go"), []byte("package main\nfunc main() {}\n"), 0o644)
	git(t, repo, "add", ".")
	if out, err := git(t, repo, "commit", "-qm", "first"); err != nil {
		t.Fatalf("commit: %v\n%s", err, out)
	}
	if out, err := git(t, repo, "push", "origin", "HEAD:main"); err != nil {
		t.Fatalf("dev1 pushing to dev1/hello: %v\n%s", err, out)
	}
	head, _ := git(t, repo, "rev-parse", "HEAD")
	got := ev.all()
	if len(got) != 1 || got[0].Repo != "dev1/hello" || got[0].Ref != "refs/heads/main" || got[0].Old != gitserver.ZeroCommit ||
		got[0].New != strings.TrimSpace(head) || got[0].Pusher != "dev1" {
		t.Fatalf("push events %+v", got)
	}

	// Refused: a wrong password, anonymous push, another team's repository.
	if out, err := git(t, repo, "push", "http://dev1:wrong@"+addr+"/dev1/hello.git", "HEAD:refs/heads/x"); err == nil || !strings.Contains(out, "401") && !strings.Contains(out, "Authentication failed") {
		t.Fatalf("wrong password: %v\n%s", err, out)
	}
	if out, err := git(t, repo, "push", url("", "dev1/hello"), "HEAD:refs/heads/y"); err == nil {
		t.Fatalf("anonymous push accepted:\n%s", out)
	}
	if out, err := git(t, repo, "push", url("dev1", "dev2/shop"), "HEAD:main"); err == nil || !strings.Contains(out, "error: 403") {
		t.Fatalf("dev1 pushing to dev2/shop: %v\n%s", err, out)
	}
	if out, err := git(t, work, "clone", url("", "dev1/hello"), "anon"); err == nil {
		t.Fatalf("anonymous clone accepted:\n%s", out)
	}
	// Every authenticated user reads.
	if out, err := git(t, work, "clone", url("dev2", "dev1/hello"), "as-dev2"); err != nil {
		t.Fatalf("dev2 reading dev1/hello: %v\n%s", err, out)
	}
	if len(ev.all()) != 1 {
		t.Fatalf("refused pushes produced events: %+v", ev.all())
	}

	// A second push reports old and new commits.
	os.WriteFile(filepath.Join(repo, "README"), []byte("hi\n"), 0o644)
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "second")
	if out, err := git(t, repo, "push", "origin", "HEAD:main"); err != nil {
		t.Fatalf("second push: %v\n%s", err, out)
	}
	second := ev.all()[1]
	if second.Old != strings.TrimSpace(head) {
		t.Fatalf("second push event %+v", second)
	}

	names, err := srv.List()
	if err != nil || strings.Join(names, ",") != "dev1/hello,dev2/shop" {
		t.Fatalf("list %v %v", names, err)
	}
	if err := srv.Create("dev1/hello"); err == nil {
		t.Fatal("creating an existing repository succeeded")
	}
	if err := srv.Create("../escape"); err == nil {
		t.Fatal("a path outside the root was accepted")
	}
}

// main is protected by default: real git's force-push and delete are
// refused with a message and change nothing; other branches are free;
// the protected branches are set per repository.
func TestMainIsProtected(t *testing.T) {
	addr, srv, ev := start(t)
	work := t.TempDir()
	origin := "http://dev1:dev1-pw@" + addr + "/dev1/hello.git"
	repo := filepath.Join(work, "hello")
	if out, err := git(t, work, "clone", origin, "hello"); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	commit := func(msg string) string {
		t.Helper()
		os.WriteFile(filepath.Join(repo, "f"), []byte(msg), 0o644)
		git(t, repo, "add", ".")
		if out, err := git(t, repo, "commit", "-qm", msg); err != nil {
			t.Fatalf("commit: %v\n%s", err, out)
		}
		out, _ := git(t, repo, "rev-parse", "HEAD")
		return strings.TrimSpace(out)
	}
	first := commit("one")
	commit("two")
	if out, err := git(t, repo, "push", "origin", "HEAD:main", "HEAD:topic"); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	remoteMain := func() string {
		out, _ := git(t, repo, "ls-remote", "origin", "refs/heads/main")
		sha, _, _ := strings.Cut(out, "\t")
		return sha
	}
	before, events := remoteMain(), len(ev.all())

	// Rewrite history and force it onto main: refused.
	git(t, repo, "reset", "-q", "--hard", first)
	commit("rewritten")
	out, err := git(t, repo, "push", "--force", "origin", "HEAD:main")
	if err == nil || !strings.Contains(out, "main is protected: only fast-forward pushes") {
		t.Fatalf("force-push to main: %v\n%s", err, out)
	}
	out, err = git(t, repo, "push", "origin", "--delete", "main")
	if err == nil || !strings.Contains(out, "main is protected: it cannot be deleted") {
		t.Fatalf("deleting main: %v\n%s", err, out)
	}
	if remoteMain() != before || len(ev.all()) != events {
		t.Fatalf("refused pushes changed main (%s, was %s) or made events %+v", remoteMain(), before, ev.all()[events:])
	}
	// Other branches take both.
	if out, err := git(t, repo, "push", "--force", "origin", "HEAD:topic"); err != nil {
		t.Fatalf("force-push to topic: %v\n%s", err, out)
	}
	if out, err := git(t, repo, "push", "origin", "--delete", "topic"); err != nil {
		t.Fatalf("deleting topic: %v\n%s", err, out)
	}

	// Per repository: protect topic instead, then nothing.
	if err := srv.SetProtected("dev1/hello", []string{"release"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.Protected("dev1/hello"); strings.Join(got, ",") != "release" {
		t.Fatalf("protected: %v", got)
	}
	if out, err := git(t, repo, "push", "--force", "origin", "HEAD:main"); err != nil {
		t.Fatalf("force-push to an unprotected main: %v\n%s", err, out)
	}
	if err := srv.SetProtected("dev1/hello", []string{"main", "bad..name"}); err == nil {
		t.Fatal("a bad branch name was taken")
	}
	if got, _ := srv.Protected("dev1/hello"); strings.Join(got, ",") != "release" {
		t.Fatalf("a refused change changed the protection: %v", got)
	}
	if err := srv.SetProtected("dev1/hello", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.Protected("dev1/hello"); len(got) != 0 {
		t.Fatalf("protected after clearing: %v", got)
	}
	if got, _ := srv.Protected("dev2/shop"); strings.Join(got, ",") != "main" {
		t.Fatalf("default protection: %v", got)
	}
}

// A push larger than the limit is refused and changes nothing; a client
// that stalls mid-push is dropped, so the repository's lock is released
// and the next push goes through.
func TestPushesAreBounded(t *testing.T) {
	addr, srv, ev := start(t)
	srv.MaxPushBytes, srv.PushIdle = 64<<10, time.Second
	work := t.TempDir()
	origin := "http://dev1:dev1-pw@" + addr + "/dev1/hello.git"
	repo := filepath.Join(work, "hello")
	if out, err := git(t, work, "clone", origin, "hello"); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	big := make([]byte, 256<<10)
	rand.Read(big)
	os.WriteFile(filepath.Join(repo, "big.bin"), big, 0o644)
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "big")
	if out, err := git(t, repo, "push", "origin", "HEAD:main"); err == nil {
		t.Fatalf("a 256 KiB push past a 64 KiB limit was taken:\n%s", out)
	}
	if out, _ := git(t, repo, "ls-remote", "origin"); strings.TrimSpace(out) != "" || len(ev.all()) != 0 {
		t.Fatalf("the refused push left refs %q or events %+v", out, ev.all())
	}

	// A client sends the start of a push and then nothing.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /dev1/hello.git/git-receive-pack HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 100000\r\n\r\n0000",
		addr, base64.StdEncoding.EncodeToString([]byte("dev1:dev1-pw")))
	time.Sleep(200 * time.Millisecond) // it now holds the repository's lock
	small := filepath.Join(work, "small")
	git(t, work, "clone", origin, "small")
	os.WriteFile(filepath.Join(small, "f"), []byte("small"), 0o644)
	git(t, small, "add", ".")
	git(t, small, "commit", "-qm", "small")
	if out, err := git(t, small, "push", "origin", "HEAD:main"); err != nil {
		t.Fatalf("a push after a stalled one: %v\n%s", err, out)
	}

	// A client that announces more than it sends and hangs up leaves no
	// git-http-backend behind (one with CONTENT_LENGTH spins on the
	// missing bytes at full CPU for ever).
	gone, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(gone, "POST /dev1/hello.git/git-receive-pack HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 100000\r\n\r\n0000",
		addr, base64.StdEncoding.EncodeToString([]byte("dev1:dev1-pw")))
	gone.Close()
	for i := 0; backendsUnder(srv.Root) > 0; i++ {
		if i == 600 {
			t.Fatalf("git-http-backend still runs for %s a minute after its client left", srv.Root)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// backendsUnder counts the git-http-backend processes serving root.
func backendsUnder(root string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(env), "GIT_PROJECT_ROOT="+root+"\x00") {
			n++
		}
	}
	return n
}

// A crash between git updating a ref and OnPush hearing of it loses no
// push: the journal written before git ran tells it on the next start,
// with the ID it would have had, and tells it once.
func TestPushCutOffBeforeItWasToldIsReplayed(t *testing.T) {
	addr, srv, _ := start(t)
	var cutOff gitserver.Event
	srv.OnPush = func(ev gitserver.Event) {
		cutOff = ev
		panic(http.ErrAbortHandler) // the process dies here, as far as the push knows
	}
	work := t.TempDir()
	git(t, work, "init", "-q", "-b", "main", "app")
	repo := filepath.Join(work, "app")
	os.WriteFile(filepath.Join(repo, "f"), []byte("x\n"), 0o644)
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "one")
	head, _ := git(t, repo, "rev-parse", "HEAD")
	head = strings.TrimSpace(head)
	if out, err := git(t, repo, "push", "http://dev1:dev1-pw@"+addr+"/dev1/hello.git", "HEAD:main"); err == nil {
		t.Logf("the push whose server died reported success:\n%s", out)
	}
	if cutOff.New != head || cutOff.ID == "" {
		t.Fatalf("OnPush saw %+v", cutOff)
	}

	// The next start: a new server on the same repositories.
	again, err := gitserver.New(srv.Root, srv.Users)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	again.OnPush = ev.add
	if n, err := again.Replay(); err != nil || n != 1 {
		t.Fatalf("replay: %d pushes, %v", n, err)
	}
	got := ev.all()
	if len(got) != 1 || got[0].Repo != "dev1/hello" || got[0].New != head || got[0].Old != gitserver.ZeroCommit ||
		got[0].Pusher != "dev1" || got[0].ID != cutOff.ID {
		t.Fatalf("replayed %+v, want the cut-off push %+v", got, cutOff)
	}
	if n, err := again.Replay(); err != nil || n != 0 || len(ev.all()) != 1 {
		t.Fatalf("a second replay: %d pushes, %v, events %+v", n, err, ev.all())
	}
}
