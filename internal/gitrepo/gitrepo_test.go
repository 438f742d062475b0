package gitrepo_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/gitserver/gitservertest"
	"github.com/slipway-dev/slipway/internal/testutil"
)

// serve runs the real git server with user ops (pushes ops/…) and dev1
// (pushes dev1/…), and an empty repository ops/fleet.
func serve(t *testing.T) string {
	return gitservertest.Start(t, "ops/fleet") + "/ops/fleet.git"
}

var author = gitrepo.Author{Name: "ops", Email: "ops@example.com"}

func write(name, content string) func(string) error {
	return func(dir string) error {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(content), 0o644)
	}
}

func TestChangeCommitsAndPushes(t *testing.T) {
	testutil.Slow(t)
	ctx := context.Background()
	r := gitrepo.Remote{URL: serve(t), Username: "ops", Password: "ops-pw"}
	if head, err := r.Head(ctx); err != nil || head != "" {
		t.Fatalf("empty repository head %q, %v", head, err)
	}
	if log, err := r.Log(ctx, 10, "%s"); err != nil || log != "" {
		t.Fatalf("empty repository's log %q, %v", log, err)
	}
	// The first commit starts the branch of an empty repository.
	first, err := r.Change(ctx, author, "first", write("a/b.yaml", "one\n"))
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := r.Head(ctx); head != first {
		t.Fatalf("head %q, want %q", head, first)
	}
	// The same content again is no change, and nothing is pushed.
	if _, err := r.Change(ctx, author, "again", write("a/b.yaml", "one\n")); !errors.Is(err, gitrepo.ErrNoChange) {
		t.Fatalf("unchanged tree: %v", err)
	}
	second, err := r.Change(ctx, author, "second", write("a/b.yaml", "two\n"))
	if err != nil || second == first {
		t.Fatal(second, err)
	}
	if got, err := r.ReadFile(ctx, "a/b.yaml"); err != nil || string(got) != "two\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	// The newest commits, newest first, as many as asked for.
	if log, err := r.Log(ctx, 1, "%H %s"); err != nil || strings.TrimSpace(log) != second+" second" {
		t.Fatalf("log of one commit %q, %v", log, err)
	}
	if log, err := r.Log(ctx, 10, "%s"); err != nil || strings.TrimSpace(log) != "second\nfirst" {
		t.Fatalf("log %q, %v", log, err)
	}
	// A refused account is an error, not an empty history.
	if _, err := (gitrepo.Remote{URL: r.URL, Username: "ops", Password: "wrong"}).Log(ctx, 10, "%s"); err == nil {
		t.Fatal("log with a wrong password: no error")
	}
}

// Several edits from one clone: each edit that changes the tree is a
// commit of its own, an edit that changes nothing is none, and all of them
// reach the server in one push. Run again, nothing is pushed and the head
// is the same.
func TestChangeEachCommitsEachEditThatChangesSomething(t *testing.T) {
	testutil.Slow(t)
	ctx := context.Background()
	r := gitrepo.Remote{URL: serve(t), Username: "ops", Password: "ops-pw"}
	edits := []gitrepo.Edit{
		{Message: "one", Apply: write("a", "1\n")},
		{Message: "one again", Apply: write("a", "1\n")},
		{Message: "two", Apply: write("b", "2\n")},
	}
	head, changed, err := r.ChangeEach(ctx, author, edits...)
	if err != nil || !changed {
		t.Fatalf("changed %v, %v", changed, err)
	}
	if remote, _ := r.Head(ctx); remote != head {
		t.Fatalf("head %q, server has %q", head, remote)
	}
	clone := t.TempDir()
	url := strings.Replace(r.URL, "http://", "http://ops:ops-pw@", 1)
	if out, err := exec.Command("git", "clone", "--quiet", url, clone).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	log, err := exec.Command("git", "-C", clone, "log", "--format=%s").Output()
	if err != nil || string(log) != "two\none\n" {
		t.Fatalf("commits %q, %v; want two, then one", log, err)
	}
	again, changed, err := r.ChangeEach(ctx, author, edits...)
	if err != nil || changed || again != head {
		t.Fatalf("again: head %q (was %q), changed %v, %v", again, head, changed, err)
	}
}

// A push that lands while a change is being made is kept: the change is
// made again on top of it.
func TestChangeRetriesOnTopOfAConcurrentPush(t *testing.T) {
	testutil.Slow(t)
	ctx := context.Background()
	r := gitrepo.Remote{URL: serve(t), Username: "ops", Password: "ops-pw"}
	if _, err := r.Change(ctx, author, "start", write("base", "x\n")); err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err := r.Change(ctx, author, "mine", func(dir string) error {
		calls++
		if calls == 1 {
			if _, err := r.Change(ctx, author, "theirs", write("theirs", "t\n")); err != nil {
				return err
			}
		}
		return write("mine", "m\n")(dir)
	})
	if err != nil || calls != 2 {
		t.Fatalf("err %v after %d attempts", err, calls)
	}
	for _, f := range []string{"theirs", "mine", "base"} {
		if _, err := r.ReadFile(ctx, f); err != nil {
			t.Errorf("%s lost: %v", f, err)
		}
	}
}

func TestChangeRefusedKeepsTheRepository(t *testing.T) {
	testutil.Slow(t)
	ctx := context.Background()
	url := serve(t)
	ops := gitrepo.Remote{URL: url, Username: "ops", Password: "ops-pw"}
	head, err := ops.Change(ctx, author, "start", write("base", "x\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []gitrepo.Remote{
		{URL: url, Username: "ops", Password: "wrong"},
		{URL: url, Username: "dev1", Password: "dev1-pw"}, // may read, not push
	} {
		_, err := r.Change(ctx, author, "intrude", write("base", "changed\n"))
		if err == nil {
			t.Fatalf("%s changed the fleet", r.Username)
		}
		if strings.Contains(err.Error(), r.Password) && r.Password != "" {
			t.Fatalf("error shows the password: %v", err)
		}
	}
	if now, _ := ops.Head(ctx); now != head {
		t.Fatalf("head moved to %s", now)
	}
}
