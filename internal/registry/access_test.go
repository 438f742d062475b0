package registry_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

func statusOf(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

func TestAccessControl(t *testing.T) {
	reg := registrytest.Start(t)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	dev1 := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(reg.Addr + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	if err := remote.Write(ref("dev1/app:v1"), img, dev1); err != nil {
		t.Fatalf("dev1 pushing under dev1/: %v", err)
	}

	err = remote.Write(ref("dev2/app:v1"), img, dev1)
	if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), `may push only under dev1/`) {
		t.Fatalf("dev1 pushing under dev2/: want 403 naming the allowed prefix, got %v", err)
	}
	if _, err := remote.Head(ref("dev2/app:v1"), dev1); statusOf(err) != http.StatusNotFound {
		t.Fatalf("refused push left something behind: %v", err)
	}

	err = remote.Write(ref("dev1/app:anon"), img, remote.WithAuth(authn.Anonymous))
	if statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous push: want 401, got %v", err)
	}

	wrong := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", "not-the-password"))
	if _, err := remote.Head(ref("dev1/app:v1"), wrong); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("wrong password: want 401, got %v", err)
	}

	dev2 := remote.WithAuthFromKeychain(registrytest.Keychain("dev2", registrytest.Dev2Password))
	if _, err := remote.Image(ref("dev1/app:v1"), dev2); err != nil {
		t.Fatalf("authenticated users pull everything: %v", err)
	}
	if err := remote.Delete(ref("dev1/app:v1"), dev2); statusOf(err) != http.StatusForbidden {
		t.Fatalf("dev2 deleting dev1's tag: want 403, got %v", err)
	}

	if _, err := remote.Head(ref("dev1/app:v1"), remote.WithAuth(authn.Anonymous)); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous pull without anonymous access: want 401, got %v", err)
	}

	admin := remote.WithAuthFromKeychain(registrytest.Keychain("admin", registrytest.AdminPassword))
	if err := remote.Write(ref("anything/else:v1"), img, admin); err != nil {
		t.Fatalf("admin pushes anywhere: %v", err)
	}
}

func TestAnonymousPull(t *testing.T) {
	reg := registrytest.Start(t, func(o *registry.Options) { o.AnonymousPull = true })
	img, _ := random.Image(512, 1)
	ref, _ := name.ParseReference(reg.Addr + "/dev1/app:v1")
	if err := remote.Write(ref, img, remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref); err != nil {
		t.Fatalf("anonymous pull with anonymous access on: %v", err)
	}
	// Ops's private repositories (the databases' backups) stay closed to
	// anonymous readers and to teams; admins read them.
	private, _ := name.ParseReference(reg.Addr + "/" + auth.PrivatePrefix + "dev1/app:staging")
	if err := remote.Write(private, img, remote.WithAuthFromKeychain(registrytest.Keychain("admin", registrytest.AdminPassword))); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(private); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("anonymous read of a private repository: want 401, got %v", err)
	}
	if _, err := remote.Head(private, remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))); statusOf(err) != http.StatusForbidden {
		t.Errorf("dev1 reading a private repository under its own name: want 403, got %v", err)
	}
	if _, err := remote.Image(private, remote.WithAuthFromKeychain(registrytest.Keychain("admin", registrytest.AdminPassword))); err != nil {
		t.Errorf("admin reading a private repository: %v", err)
	}
	other, _ := random.Image(512, 1)
	if err := remote.Write(ref, other); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous push with anonymous pull on: want 401, got %v", err)
	}
}

func TestHealth(t *testing.T) {
	reg := registrytest.Start(t)
	resp, err := http.Get("http://" + reg.Addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s", resp.Status)
	}
}

// OnPush hears of each stored manifest, with who pushed it and by which
// reference; a refused push is not heard of.
func TestOnPushHearsStoredManifestsOnly(t *testing.T) {
	var mu sync.Mutex
	var heard []registry.Push
	reg := registrytest.Start(t, func(o *registry.Options) {
		o.OnPush = func(p registry.Push) {
			mu.Lock()
			defer mu.Unlock()
			heard = append(heard, p)
		}
	})
	img, _ := random.Image(512, 1)
	dev1 := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))
	ref, _ := name.ParseReference(reg.Addr + "/dev1/charts/hello:0.1.0")
	if err := remote.Write(ref, img, dev1); err != nil {
		t.Fatal(err)
	}
	refused, _ := name.ParseReference(reg.Addr + "/dev2/charts/hello:0.1.0")
	if err := remote.Write(refused, img, dev1); statusOf(err) != http.StatusForbidden {
		t.Fatalf("dev1 pushing under dev2/: want 403, got %v", err)
	}
	d, _ := img.Digest()
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 1 {
		t.Fatalf("heard %d pushes, want 1: %+v", len(heard), heard)
	}
	p := heard[0]
	if p.Repository != "dev1/charts/hello" || p.Reference != "0.1.0" || p.Digest != d.String() || p.User != "dev1" {
		t.Fatalf("heard %+v, want dev1/charts/hello:0.1.0 at %s by dev1", p, d)
	}
	if p.ArtifactType == "" {
		t.Fatalf("heard no artifact type (the config's media type): %+v", p)
	}
}

// Past the failed logins allowed from one address, the registry answers
// 429 even to the right password, without checking it.
func TestFailedLoginsAreThrottled(t *testing.T) {
	reg := registrytest.Start(t)
	ref, _ := name.ParseReference(reg.Addr + "/dev1/app:v1")
	wrong := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", "not-the-password"))
	for range 20 {
		if _, err := remote.Head(ref, wrong); statusOf(err) != http.StatusUnauthorized {
			t.Fatalf("wrong password: want 401, got %v", err)
		}
	}
	right := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))
	if _, err := remote.Head(ref, right, remote.WithRetryStatusCodes()); statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("after 20 failures: want 429, got %v", err)
	}
}
