package registry_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

// authLog records how each /v2/ request authenticated, to show that
// clients went through the token flow.
type authLog struct {
	mu      sync.Mutex
	schemes map[string]int
}

func (l *authLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/") && r.Method == http.MethodPut {
			scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			l.mu.Lock()
			l.schemes[scheme]++
			l.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func startTokenRegistry(t *testing.T, modify ...func(*registry.Options)) (*registrytest.Registry, *authLog) {
	log := &authLog{schemes: map[string]int{}}
	reg := registrytest.Start(t, append([]func(*registry.Options){func(o *registry.Options) {
		o.TokenAuth = true
		o.Instrument = log.wrap
	}}, modify...)...)
	return reg, log
}

// tokenResponse asks the token endpoint as a client of the token flow does.
func askToken(t *testing.T, reg *registrytest.Registry, user, password string, scopes ...string) (int, map[string]any) {
	t.Helper()
	q := url.Values{"service": {registry.TokenService}, "scope": scopes}
	req, _ := http.NewRequest(http.MethodGet, "http://"+reg.Addr+registry.TokenPath+"?"+q.Encode(), nil)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// grantedActions reads the token's claims (without checking them: the
// registry does that) for what it grants on repo.
func grantedActions(t *testing.T, token, repo string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is no JWT", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Access []struct {
			Type, Name string
			Actions    []string
		}
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	for _, a := range claims.Access {
		if a.Type == "repository" && a.Name == repo {
			return a.Actions
		}
	}
	return nil
}

// withToken sends one registry request with a Bearer token.
func withToken(t *testing.T, reg *registrytest.Registry, method, path, token string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+reg.Addr+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

// TestTokenAuthServesRealClients pushes and pulls with
// go-containerregistry and Debian's skopeo, which both follow the Bearer
// challenge to the token endpoint, as they do against ACR.
func TestTokenAuthServesRealClients(t *testing.T) {
	reg, log := startTokenRegistry(t)
	img, _ := random.Image(2048, 2)
	ref, _ := name.ParseReference(reg.Addr + "/dev1/app:v1")
	dev1 := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))
	if err := remote.Write(ref, img, dev1); err != nil {
		t.Fatalf("dev1 pushing under dev1/ through the token flow: %v", err)
	}
	log.mu.Lock()
	schemes := map[string]int{}
	for k, v := range log.schemes {
		schemes[k] = v
	}
	log.mu.Unlock()
	if schemes["Bearer"] == 0 || schemes["Basic"] != 0 {
		t.Fatalf("the push's PUT requests authenticated as %v: want Bearer tokens only", schemes)
	}
	dev2 := remote.WithAuthFromKeychain(registrytest.Keychain("dev2", registrytest.Dev2Password))
	got, err := remote.Image(ref, dev2)
	if err != nil {
		t.Fatalf("dev2 pulling dev1/app: %v", err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled %s, pushed %s", d, want)
	}
	// Catalog and tag listing go through tokens of their own scopes.
	if _, err := remote.CatalogPage(ref.Context().Registry, "", 50, dev2); err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if tags, err := remote.List(ref.Context(), dev2); err != nil || len(tags) != 1 {
		t.Fatalf("tags: %v %v", tags, err)
	}

	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command(skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
			"--src-creds", "dev2:"+registrytest.Dev2Password, "--dest-creds", "dev2:"+registrytest.Dev2Password,
			"docker://"+reg.Addr+"/dev1/app:v1", "docker://"+reg.Addr+"/dev2/copy:v1").CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo copy through the token flow: %v\n%s", err, out)
		}
	} else {
		t.Log("skopeo not installed; its half of the test is left out")
	}
}

// TestTokenAuthRefusesWhatTheUserMayNot tries each way past the token
// flow: asking for more than the user may, using a token beyond its
// grants, forging, expiring and outliving the user or the user's rights.
func TestTokenAuthRefusesWhatTheUserMayNot(t *testing.T) {
	reg, _ := startTokenRegistry(t)
	img, _ := random.Image(1024, 1)
	dev1 := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))

	// A real client, refused with the reason.
	ref, _ := name.ParseReference(reg.Addr + "/dev2/app:v1")
	err := remote.Write(ref, img, dev1)
	if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "may push only under dev1/") {
		t.Fatalf("dev1 pushing under dev2/: want 403 naming the allowed prefix, got %v", err)
	}

	// Asking for push on dev2/ grants pull only.
	status, body := askToken(t, reg, "dev1", registrytest.Dev1Password, "repository:dev2/app:pull,push")
	if status != http.StatusOK {
		t.Fatalf("token request: %d %v", status, body)
	}
	token := body["token"].(string)
	if got := grantedActions(t, token, "dev2/app"); len(got) != 1 || got[0] != "pull" {
		t.Fatalf("dev1 asking for push on dev2/app was granted %v; want pull only", got)
	}
	// The token used for a push anyway: refused by the user's rights.
	if code, _, body := withToken(t, reg, http.MethodPost, "/v2/dev2/app/blobs/uploads/", token); code != http.StatusForbidden || !strings.Contains(body, "may push only under dev1/") {
		t.Fatalf("push on dev2/ with dev1's token: want 403, got %d %s", code, body)
	}
	// Ops's backups are not granted to a team at all.
	_, body = askToken(t, reg, "dev1", registrytest.Dev1Password, "repository:slipway/backups/db:pull")
	if got := grantedActions(t, body["token"].(string), "slipway/backups/db"); len(got) != 0 {
		t.Fatalf("dev1 granted %v on ops's backups", got)
	}

	// A token for dev1/app does not open dev1/other: the client is sent
	// back for a token of that scope.
	_, body = askToken(t, reg, "dev1", registrytest.Dev1Password, "repository:dev1/app:pull,push")
	own := body["token"].(string)
	if code, _, _ := withToken(t, reg, http.MethodPost, "/v2/dev1/app/blobs/uploads/", own); code != http.StatusAccepted {
		t.Fatalf("dev1's token on dev1/app: want 202, got %d", code)
	}
	code, challenge, _ := withToken(t, reg, http.MethodPost, "/v2/dev1/other/blobs/uploads/", own)
	if code != http.StatusUnauthorized || !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, `scope="repository:dev1/other:pull,push"`) {
		t.Fatalf("token beyond its scope: want 401 insufficient_scope, got %d %q", code, challenge)
	}

	// Forged: the payload changed (granting dev2/app), the signature not.
	parts := strings.Split(own, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.ReplaceAll(string(payload), "dev1/app", "dev2/app"))) + "." + parts[2]
	if code, challenge, _ := withToken(t, reg, http.MethodPost, "/v2/dev2/app/blobs/uploads/", forged); code != http.StatusUnauthorized || !strings.Contains(challenge, "invalid_token") {
		t.Fatalf("forged token: want 401 invalid_token, got %d %q", code, challenge)
	}
	// Unsigned ("alg": "none").
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	if code, _, _ := withToken(t, reg, http.MethodGet, "/v2/dev1/app/tags/list", none); code != http.StatusUnauthorized {
		t.Fatalf("unsigned token: want 401, got %d", code)
	}

	// Expired: the registry's clock moves past the token's lifetime.
	registry.SetClock(reg.Server, func() time.Time { return time.Now().Add(registry.TokenLifetime + time.Minute) })
	if code, challenge, _ := withToken(t, reg, http.MethodGet, "/v2/dev1/app/tags/list", own); code != http.StatusUnauthorized || !strings.Contains(challenge, "invalid_token") {
		t.Fatalf("expired token: want 401 invalid_token, got %d %q", code, challenge)
	}
	registry.SetClock(reg.Server, time.Now)

	// Rights taken away count at once, token or not.
	if err := reg.Users.Set("dev1", registrytest.Dev1Password, false, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := withToken(t, reg, http.MethodPost, "/v2/dev1/app/blobs/uploads/", own); code != http.StatusForbidden {
		t.Fatalf("push after dev1 lost its push rights: want 403, got %d", code)
	}
	if err := reg.Users.Delete("dev1"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := withToken(t, reg, http.MethodGet, "/v2/dev1/app/tags/list", own); code != http.StatusUnauthorized {
		t.Fatalf("token of a deleted user: want 401, got %d", code)
	}

	// The token endpoint itself.
	if status, body := askToken(t, reg, "dev2", "not-the-password", "repository:dev2/app:pull"); status != http.StatusUnauthorized || body["error_description"] != "wrong user name or password" {
		t.Fatalf("wrong password: want 401, got %d %v", status, body)
	}
	if status, _ := askToken(t, reg, "", "", "repository:dev2/app:pull"); status != http.StatusUnauthorized {
		t.Fatalf("anonymous token without anonymous pulls: want 401, got %d", status)
	}
	many := make([]string, 17)
	for i := range many {
		many[i] = "repository:dev2/app:pull"
	}
	if status, _ := askToken(t, reg, "dev2", registrytest.Dev2Password, many...); status != http.StatusBadRequest {
		t.Fatalf("17 scopes: want 400, got %d", status)
	}
	if status, body := askToken(t, reg, "dev2", registrytest.Dev2Password, "repository:dev2/app"); status != http.StatusBadRequest {
		t.Fatalf("scope without actions: want 400, got %d %v", status, body)
	}

	// Slipway's own garbage collection takes an admin's Basic
	// credentials, never a token.
	_, body = askToken(t, reg, "admin", registrytest.AdminPassword, "repository:dev2/app:*", "registry:catalog:*")
	if code, _, _ := withToken(t, reg, http.MethodPost, "/slipway/v1/gc", body["token"].(string)); code != http.StatusUnauthorized {
		t.Fatalf("gc with a token: want 401, got %d", code)
	}
}

// TestLoginFollowsTheTokenFlow: `slipway login`'s check answers the
// registry's Bearer challenge, and the token endpoint judges the password.
func TestLoginFollowsTheTokenFlow(t *testing.T) {
	for _, tokenAuth := range []bool{true, false} {
		reg := registrytest.Start(t, func(o *registry.Options) { o.TokenAuth = tokenAuth })
		if err := credentials.Check(t.Context(), reg.Addr, "dev1", registrytest.Dev1Password, false); err != nil {
			t.Errorf("token auth %v, right password: %v", tokenAuth, err)
		}
		if err := credentials.Check(t.Context(), reg.Addr, "dev1", "wrong", false); !errors.Is(err, credentials.ErrUnauthorized) {
			t.Errorf("token auth %v, wrong password: want ErrUnauthorized, got %v", tokenAuth, err)
		}
	}
}

// TestTokenAuthAnonymousPull: with anonymous pulls on, a client without
// credentials gets a pull-only token.
func TestTokenAuthAnonymousPull(t *testing.T) {
	reg, _ := startTokenRegistry(t, func(o *registry.Options) { o.AnonymousPull = true })
	img, _ := random.Image(512, 1)
	ref, _ := name.ParseReference(reg.Addr + "/dev1/app:v1")
	if err := remote.Write(ref, img, remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatalf("anonymous pull: %v", err)
	}
	other, _ := random.Image(512, 1)
	if err := remote.Write(ref, other, remote.WithAuth(authn.Anonymous)); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous push: want 401, got %v", err)
	}
	_, body := askToken(t, reg, "", "", "repository:dev1/app:pull,push")
	if got := grantedActions(t, body["token"].(string), "dev1/app"); len(got) != 1 || got[0] != "pull" {
		t.Fatalf("anonymous token grants %v; want pull only", got)
	}
}

// TestNoTokensWithoutTokenAuth: a registry that takes Basic credentials
// issues no tokens.
func TestNoTokensWithoutTokenAuth(t *testing.T) {
	reg := registrytest.Start(t)
	if status, _ := askToken(t, reg, "dev1", registrytest.Dev1Password, "repository:dev1/app:pull"); status != http.StatusNotFound {
		t.Fatalf("token request to a Basic registry: want 404, got %d", status)
	}
	if code, challenge, _ := withToken(t, reg, http.MethodGet, "/v2/dev1/app/tags/list", "anything"); code != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Basic") {
		t.Fatalf("Bearer to a Basic registry: want a Basic challenge, got %d %q", code, challenge)
	}
}
