package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelineFromAnExternalHost: a team's repository lives on another
// git host (here a second platform's git server, standing in for Azure
// Repos or GitHub). Ops links it; a push there runs the pipeline here,
// told by the host's webhook (GitHub's signed shape) or found by polling;
// the copy takes no push, a webhook with a wrong secret does nothing, and
// a link the host refuses creates nothing.
func TestPipelineFromAnExternalHost(t *testing.T) {
	host := newEnv(t)
	hostGit := freeAddr(t)
	host.vars = append(host.vars, "SLIPWAY_GIT_ADDR="+hostGit, "SLIPWAY_REGISTRY_ADDR="+freeAddr(t), "SLIPWAY_PLAIN_HTTP_ON_LOOPBACK=true")
	hostUp := host.startUp()
	hostDev1 := strings.TrimSpace(host.mustRun("", "user", "set", "dev1", "--push", "dev1/").stdout)
	host.mustRun("", "repo", "create", "dev1/hello")

	e := newEnv(t)
	gitAddr := freeAddr(t)
	e.vars = append(e.vars, "SLIPWAY_GIT_ADDR="+gitAddr, "SLIPWAY_REGISTRY_ADDR="+freeAddr(t))
	up := e.startUp()
	hostURL := "http://" + hostGit + "/dev1/hello.git"

	// A link the host refuses creates nothing.
	refused := e.run("not-the-password\n", "repo", "link", "dev1/hello", hostURL, "-u", "dev1", "--password-stdin")
	if refused.code != 1 || !strings.Contains(refused.stderr, "reading "+hostURL) || !strings.Contains(refused.stderr, "nothing was created") {
		t.Fatalf("link with a wrong password: exit %d\n%s", refused.code, refused.stderr)
	}
	if list := e.mustRun("", "repo", "list").stdout; strings.Contains(list, "dev1/hello") {
		t.Fatalf("the refused link left a repository:\n%s", list)
	}
	linked := e.mustRun(hostDev1+"\n", "repo", "link", "dev1/hello", hostURL, "-u", "dev1", "--password-stdin", "--poll", "10s")
	hook, secret := "", ""
	for _, l := range strings.Split(linked.stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "webhook: "); ok {
			hook = v
		}
		if v, ok := strings.CutPrefix(l, "secret:  "); ok {
			secret = v
		}
	}
	if hook != "https://"+gitAddr+"/-/hooks/git/dev1/hello" || len(secret) < 24 {
		t.Fatalf("repo link printed:\n%s", linked.stdout)
	}
	if list := e.mustRun("", "repo", "list").stdout; !strings.Contains(list, "dev1/hello (mirror of "+hostURL+";") {
		t.Errorf("repo list:\n%s", list)
	}

	// dev1 works on the host.
	clone := filepath.Join(t.TempDir(), "hello")
	gitCmd(t, "", "clone", "--quiet", fmt.Sprintf("http://dev1:%s@%s/dev1/hello.git", hostDev1, hostGit), clone)
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), "steps:\n- script: echo \"built $(Build.SourceVersion)\"\n  displayName: Build\n")
	first := gitPush(t, clone, "first, on the host")

	// The host's webhook, as GitHub sends it.
	webhook := func(secret string) int {
		t.Helper()
		body := []byte(`{"ref":"refs/heads/main","after":"` + first + `","pusher":{"name":"dev1"}}`)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, hook, bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := webhook("not-the-secret"); code != http.StatusUnauthorized {
		t.Fatalf("webhook with a wrong secret: %d", code)
	}
	if code := webhook(secret); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}
	r := e.waitRun(t, first, finished)
	if logs := e.mustRun("", "pipeline", "logs", fmt.Sprint(r.ID)).stdout; r.Status != "succeeded" || !strings.Contains(logs, "built "+first) {
		t.Fatalf("the run of the host's commit: %s %s\n%s", r.Status, r.Error, logs)
	}

	if r.RequestedBy != "webhook (dev1)" {
		t.Errorf("the run was requested by %q, want the webhook's report", r.RequestedBy)
	}

	// No webhook: polling finds each push (twice, so the second is
	// surely found at the interval, not at the first look).
	for _, n := range []string{"second", "third"} {
		writeFile(t, filepath.Join(clone, "README"), n+"\n")
		commit := gitPush(t, clone, n+", on the host")
		if r := e.waitRun(t, commit, finished); r.Status != "succeeded" || (n == "third" && r.RequestedBy != "poll") {
			t.Fatalf("the %s, polled run: %s %s (requested by %q)", n, r.Status, r.Error, r.RequestedBy)
		}
	}

	if list := e.mustRun("", "repo", "list").stdout; !strings.Contains(list, "; fetched at ") {
		t.Errorf("repo list does not say when the copy was fetched:\n%s", list)
	}

	// The link changes without the password given again (it is kept);
	// with --new-secret the old secret stops working.
	relinked := e.mustRun("", "repo", "link", "dev1/hello", hostURL, "--poll", "20s", "--new-secret")
	if !strings.Contains(relinked.stderr, "changed the link of dev1/hello") || strings.Contains(relinked.stdout, secret) || !strings.Contains(relinked.stdout, "polling: every 20s") {
		t.Fatalf("changing the link:\n%s%s", relinked.stdout, relinked.stderr)
	}
	if code := webhook(secret); code != http.StatusUnauthorized {
		t.Fatalf("webhook with the replaced secret: %d", code)
	}

	// The copy takes no push, not even from its team.
	dev1 := strings.TrimSpace(e.mustRun("", "user", "set", "dev1", "--push", "dev1/").stdout)
	out, err := gitCommand("-C", clone, "-c", "http.sslCAInfo="+e.caFile(), "push", fmt.Sprintf("https://dev1:%s@%s/dev1/hello.git", dev1, gitAddr), "HEAD:refs/heads/sneaky").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "403") {
		t.Fatalf("push to the copy: %v\n%s", err, out)
	}

	e.mustRun("", "down")
	up.wait(t)
	host.mustRun("", "down")
	hostUp.wait(t)
}
