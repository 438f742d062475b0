package targets

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/gitserver/gitservertest"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

func TestRegistryCheckFollowsTheTokenFlowAndWritesNothing(t *testing.T) {
	reg := registrytest.Start(t, func(o *registry.Options) { o.TokenAuth = true })
	ctx := context.Background()
	check := func(user, password, repo string) Result {
		return Registry{Host: reg.Addr, Repository: repo, Keychain: credentials.Static(user, password)}.Check(ctx)
	}
	if r := check("dev1", registrytest.Dev1Password, "dev1/check"); r.Err != nil || r.Found != reg.Addr+" as dev1: may push to dev1/check" {
		t.Fatalf("dev1 on dev1/: %+v", r)
	}
	// Nothing was pushed: the upload was begun and cancelled.
	repo, _ := name.NewRepository(reg.Addr + "/dev1/check")
	if tags, err := remote.List(repo, remote.WithAuthFromKeychain(credentials.Static("admin", registrytest.AdminPassword))); err == nil || len(tags) != 0 {
		t.Fatalf("the check left tags %v (%v)", tags, err)
	}
	if r := check("dev1", registrytest.Dev1Password, "dev2/check"); r.Err == nil || !strings.Contains(r.Err.Error(), "refuses a push to dev2/check as dev1") {
		t.Fatalf("dev1 on dev2/: %+v", r)
	}
	if r := check("dev1", "wrong", "dev1/check"); r.Err == nil || !strings.Contains(r.Err.Error(), "refuses the credentials (as dev1)") {
		t.Fatalf("wrong password: %+v", r)
	}
	anon := Registry{Host: reg.Addr, Repository: "dev1/check", Keychain: authn.NewMultiKeychain()}.Check(ctx)
	if anon.Err == nil || !strings.Contains(anon.Err.Error(), "refuses the credentials (anonymously)") {
		t.Fatalf("no credentials: %+v", anon)
	}
}

func TestGitCheckAsksWhatAPushBeginsWith(t *testing.T) {
	base := gitservertest.Start(t, "ops/fleet")
	host := strings.TrimPrefix(base, "http://")
	ctx := context.Background()
	if r := (Git{URL: "http://ops:ops-pw@" + host + "/ops/fleet.git"}).Check(ctx); r.Err != nil || strings.Contains(r.Found, "ops-pw") {
		t.Fatalf("ops on its fleet: %+v", r)
	}
	if r := (Git{URL: base + "/ops/fleet.git", Username: "ops", Password: "ops-pw"}).Check(ctx); r.Err != nil {
		t.Fatalf("credentials from the environment: %+v", r)
	}
	for _, c := range []struct{ url, want string }{
		{"http://dev1:dev1-pw@" + host + "/ops/fleet.git", `refuses a push to ` + base + `/ops/fleet.git as dev1: user "dev1" may not push to ops/fleet`},
		{"http://ops:wrong@" + host + "/ops/fleet.git", "refuses the credentials (as ops)"},
		{base + "/ops/fleet.git", "refuses the credentials (anonymously)"},
		{"http://ops:ops-pw@" + host + "/ops/none.git", "no repository at " + base + "/ops/none.git"},
		{"ssh://git@" + host + "/ops/fleet.git", "want https://HOST/PATH.git"},
	} {
		r := (Git{URL: c.url}).Check(ctx)
		if r.Err == nil || !strings.Contains(r.Err.Error(), c.want) {
			t.Errorf("%s: want %q, got %+v", c.url, c.want, r)
		}
		if r.Err != nil && (strings.Contains(r.Err.Error(), "ops-pw") || strings.Contains(r.Err.Error(), "dev1-pw")) {
			t.Errorf("the error shows a password: %v", r.Err)
		}
	}
}

// With Read, the check asks what a fetch begins with: an account that may
// only read passes, a wrong password and a missing repository do not.
func TestGitCheckForReadingAsksWhatAFetchBeginsWith(t *testing.T) {
	base := gitservertest.Start(t, "ops/fleet")
	ctx := context.Background()
	if r := (Git{URL: base + "/ops/fleet.git", Username: "dev1", Password: "dev1-pw", Read: true}).Check(ctx); r.Err != nil || r.Found != base+"/ops/fleet.git as dev1: may read" {
		t.Fatalf("dev1 reading ops/fleet: %+v", r)
	}
	for _, c := range []struct{ user, password, repo, want string }{
		{"dev1", "wrong", "ops/fleet", "refuses the credentials (as dev1)"},
		{"dev1", "dev1-pw", "ops/none", "no repository at " + base + "/ops/none.git"},
	} {
		r := (Git{URL: base + "/" + c.repo + ".git", Username: c.user, Password: c.password, Read: true}).Check(ctx)
		if r.Err == nil || !strings.Contains(r.Err.Error(), c.want) {
			t.Errorf("%s on %s: want %q, got %+v", c.user, c.repo, c.want, r)
		}
	}
}

// A CA file for the git host that holds no certificate is named as such,
// before anything is asked of the host.
func TestGitCheckNamesAnUnusableCAFile(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o600)
	r := (Git{URL: "https://git.invalid/ops/fleet.git", Username: "ops", Password: "pw", CAFile: empty}).Check(context.Background())
	if r.Err == nil || !strings.Contains(r.Err.Error(), "the git host's CA file "+empty+" holds no certificate") {
		t.Fatalf("an unusable CA file: %+v", r)
	}
}

func TestClusterCheckNamesTheContextAndTheServer(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {server: "https://`+addr+`", insecure-skip-tls-verify: true}
users:
- name: someone
  user: {token: abc}
contexts:
- name: aks-prod
  context: {cluster: gone, user: someone}
- name: aks-test
  context: {cluster: gone, user: someone}
`), 0o600)
	ctx := context.Background()
	for _, c := range []struct{ context, want string }{
		{"", kubeconfig + " names no current context: name one with --context (it has: aks-prod, aks-test)"},
		{"aks-dev", `context "aks-dev" is not in ` + kubeconfig + " (it has: aks-prod, aks-test)"},
		{"aks-prod", `cannot reach the API server at https://` + addr + ` (context "aks-prod")`},
	} {
		r := Cluster{Kubeconfig: kubeconfig, Context: c.context}.Check(ctx)
		if r.Err == nil || !strings.Contains(r.Err.Error(), c.want) {
			t.Errorf("context %q: want %q, got %v", c.context, c.want, r.Err)
		}
	}
	if r := (Cluster{Kubeconfig: filepath.Join(t.TempDir(), "none")}).Check(ctx); r.Err == nil {
		t.Error("a kubeconfig that does not exist passed")
	}

	var out bytes.Buffer
	err = WriteReport(&out, []Result{{Target: "registry", Found: "r as x: may push"}, Cluster{Kubeconfig: kubeconfig, Context: "aks-dev"}.Check(ctx)})
	if err == nil || err.Error() != "1 of 2 targets failed the check; nothing was written to any" {
		t.Fatalf("report: %v", err)
	}
	if !strings.HasPrefix(out.String(), "✔ registry r as x: may push\n✗ cluster  context") {
		t.Errorf("report:\n%s", out.String())
	}
}

// With Pull, the check asks for a tag's manifest: whether the account
// may pull it, and whether it is there at all.
func TestRegistryCheckForPulling(t *testing.T) {
	reg := registrytest.Start(t, func(o *registry.Options) { o.TokenAuth = true })
	if err := reg.Users.Set("reader", "read-secret", false, nil); err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(reg.Addr + "/slipway/http-check:latest")
	if err := remote.Write(ref, img, remote.WithAuthFromKeychain(credentials.Static("admin", registrytest.AdminPassword))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(password, tag string) Result {
		return Registry{Host: reg.Addr, Repository: "slipway/http-check", Pull: tag, Keychain: credentials.Static("reader", password)}.Check(ctx)
	}
	if r := check("read-secret", "latest"); r.Err != nil || r.Found != reg.Addr+" as reader: may pull slipway/http-check:latest" {
		t.Fatalf("the reader on a tag that is there: %+v", r)
	}
	if r := check("read-secret", "v9"); r.Err == nil || !strings.Contains(r.Err.Error(), "has no slipway/http-check:v9") {
		t.Fatalf("a tag that is not there: %+v", r)
	}
	if r := check("wrong", "latest"); r.Err == nil || !strings.Contains(r.Err.Error(), "refuses the credentials (as reader)") {
		t.Fatalf("a wrong password: %+v", r)
	}
	noCA := Registry{Host: reg.Addr, Repository: "slipway/http-check", Pull: "latest", CAFile: filepath.Join(t.TempDir(), "ca.crt"),
		Keychain: credentials.Static("reader", "read-secret")}.Check(ctx)
	if noCA.Err == nil || !strings.Contains(noCA.Err.Error(), "CA file") {
		t.Fatalf("a CA file that is not there: %+v", noCA)
	}
}
