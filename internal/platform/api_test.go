package platform

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/release"
)

// The promotion API from the attacker's side: who may ask for what, over
// real HTTP with the platform's real user store. Promote records what
// reached it; the cluster side is tested end to end.
func TestPromotionAPIChecksWhoAsks(t *testing.T) {
	users := auth.Open(filepath.Join(t.TempDir(), "users.yaml"))
	for _, u := range []struct {
		name  string
		admin bool
		push  []string
	}{{"admin", true, nil}, {"dev1", false, []string{"dev1/"}}, {"ci-dev1", false, []string{"dev1/"}}, {"dev2", false, []string{"dev2/"}}, {"reader", false, nil}} {
		if err := users.Set(u.name, u.name+"-password", u.admin, u.push); err != nil {
			t.Fatal(err)
		}
	}
	var reached []release.Promotion
	api := &API{Users: users, Promote: func(_ context.Context, p release.Promotion) (*release.Promoted, error) {
		reached = append(reached, p)
		return &release.Promoted{Team: p.Team, Version: "1.0.0", From: p.From, To: p.To}, nil
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	p := &Platform{State: State{Addresses: Addresses{Git: srv.URL}}}

	ask := func(user, password string, req PromotionRequest) error {
		_, err := p.RequestPromotion(context.Background(), user, password, req)
		return err
	}
	hello := PromotionRequest{Team: "dev1", App: "hello", From: "staging", To: "prod", For: "dev1"}
	for _, tc := range []struct {
		what, user, password string
		req                  PromotionRequest
		want                 string
	}{
		{"no credentials", "", "", hello, "log in"},
		{"a wrong password", "dev1", "guess", hello, "wrong user name or password"},
		{"another team's app", "dev2", "dev2-password", hello, "does not belong to team dev1"},
		{"a user of no team", "reader", "reader-password", hello, "does not belong to team dev1"},
		{"another team's app, team left out", "dev2", "dev2-password", PromotionRequest{App: "hello", From: "staging", To: "prod"}, ""},
		{"an unknown environment", "dev1", "dev1-password", PromotionRequest{Team: "dev1", App: "hello", From: "staging", To: "production"}, "environment \"production\""},
		{"from and to the same", "dev1", "dev1-password", PromotionRequest{Team: "dev1", App: "hello", From: "prod", To: "prod"}, "same environment"},
		{"a bad team name", "admin", "admin-password", PromotionRequest{Team: "../dev1", App: "hello", From: "staging", To: "prod"}, "team name"},
	} {
		reached = nil
		err := ask(tc.user, tc.password, tc.req)
		if tc.want == "" {
			// dev2 without a team means dev2's own app: never dev1's.
			if err != nil || len(reached) != 1 || reached[0].Team != "dev2" {
				t.Errorf("%s: %v, reached %+v", tc.what, err, reached)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || len(reached) != 0 {
			t.Errorf("%s: got %v (reached promote %d times), want a refusal saying %q", tc.what, err, len(reached), tc.want)
		}
	}

	// The team's people and CI account, and ops, may; the record names the
	// account that asked and whom it acted for.
	for _, who := range []string{"dev1", "ci-dev1", "admin"} {
		reached = nil
		if err := ask(who, who+"-password", hello); err != nil || len(reached) != 1 {
			t.Fatalf("%s: %v", who, err)
		}
		want := who
		if who != "dev1" {
			want = who + " for dev1"
		}
		if reached[0].By != want || reached[0].Team != "dev1" {
			t.Errorf("%s: promotion by %q for team %q", who, reached[0].By, reached[0].Team)
		}
	}

	// Only POST promotions exists; a body that is not a request is refused.
	res, err := http.Get(srv.URL + APIPath + "promotions")
	if err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("GET: %v %v", err, res.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+APIPath+"promotions", strings.NewReader(`{"app":"hello","from":"staging","to":"prod","sneaky":true}`))
	req.SetBasicAuth("admin", "admin-password")
	res, err = http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown field: %v %v", err, res.Status)
	}
}

// Readiness and tests are recorded by the platform: the same rule of who
// may ask holds, and an allowed caller gets as far as the cluster.
func TestRecordsAPIChecksWhoAsks(t *testing.T) {
	p, reachedCluster := apiWithoutCluster(t)
	ctx := context.Background()

	ready := ReadinessRequest{Team: "dev1", App: "hello", Env: "staging", Version: "1.0.0"}
	tests := TestRequest{Team: "dev1", App: "hello", Env: "staging"}
	if _, err := p.ConfirmReady(ctx, "dev2", "dev2-password", ready); err == nil || !strings.Contains(err.Error(), "does not belong to team dev1") {
		t.Errorf("dev2 confirming dev1's release: %v", err)
	}
	if _, err := p.RunTests(ctx, "dev2", "dev2-password", tests); err == nil || !strings.Contains(err.Error(), "does not belong to team dev1") {
		t.Errorf("dev2 testing dev1's release: %v", err)
	}
	if _, err := p.RunTests(ctx, "dev1", "wrong", tests); err == nil || !strings.Contains(err.Error(), "wrong user name or password") {
		t.Errorf("a wrong password: %v", err)
	}
	if _, err := p.ConfirmReady(ctx, "admin", "admin-password", ReadinessRequest{App: "hello", Env: "staging", Version: "1.0.0"}); err == nil || !strings.Contains(err.Error(), "--team") {
		t.Errorf("ops without a team: %v", err)
	}
	// A smoke path that climbs out of the app's Service proxy would make
	// the platform read another team's Secrets with its own rights.
	climb := TestRequest{App: "hello", Env: "staging", Smoke: []release.SmokeCheck{{Path: "/../../../../namespaces/dev2-staging/secrets", Contains: "x"}}}
	if _, err := p.RunTests(ctx, "dev1", "dev1-password", climb); err == nil || !strings.Contains(err.Error(), "no . or .. segments") {
		t.Errorf("a smoke path out of the Service: %v", err)
	}
	if *reachedCluster != 0 {
		t.Fatalf("refused requests reached the cluster %d times", *reachedCluster)
	}
	if _, err := p.ConfirmReady(ctx, "dev1", "dev1-password", ready); err == nil || !strings.Contains(err.Error(), "no cluster in this test") || *reachedCluster != 1 {
		t.Errorf("dev1 confirming its own release: %v (cluster reached %d times)", err, *reachedCluster)
	}
	if _, err := p.RunTests(ctx, "dev1", "dev1-password", TestRequest{App: "hello", Env: "staging"}); err == nil || *reachedCluster != 2 {
		t.Errorf("dev1 testing its own release, team left out: %v (cluster reached %d times)", err, *reachedCluster)
	}
}

// A bake sends traffic with the platform's rights for as long as it is
// asked: only the app's team asks, and its duration, rate and path are
// bounded before anything reaches the cluster.
func TestBakeAPIBoundsItsInput(t *testing.T) {
	p, reachedCluster := apiWithoutCluster(t)
	ctx := context.Background()
	bake := func(user string, req BakeRequest) error {
		_, err := p.Bake(ctx, user, user+"-password", req)
		return err
	}
	for _, c := range []struct {
		user string
		req  BakeRequest
		want string
	}{
		{"dev2", BakeRequest{Team: "dev1", App: "hello", Env: "staging", Duration: "1m"}, "does not belong to team dev1"},
		{"dev1", BakeRequest{App: "hello", Env: "staging", Duration: "2h"}, "want between 1s and 15m"},
		{"dev1", BakeRequest{App: "hello", Env: "staging", Duration: "soon"}, "bake duration"},
		{"dev1", BakeRequest{App: "hello", Env: "staging", Duration: "1m", Rate: 5000}, "requests/s"},
		{"dev1", BakeRequest{App: "hello", Env: "staging", Duration: "1m", Rate: -1}, "requests/s"},
		{"dev1", BakeRequest{App: "hello", Env: "staging", Duration: "1m", Path: "/../../../../namespaces/dev2-staging/secrets"}, "no . or .. segments"},
		{"dev1", BakeRequest{App: "hello", Env: "qa", Duration: "1m"}, "environment"},
	} {
		if err := bake(c.user, c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s bakes %+v: %v, want %q", c.user, c.req, err, c.want)
		}
	}
	if *reachedCluster != 0 {
		t.Fatalf("refused bakes reached the cluster %d times", *reachedCluster)
	}
	if err := bake("dev1", BakeRequest{App: "hello", Env: "staging", Duration: "1m"}); err == nil || *reachedCluster != 1 {
		t.Errorf("dev1 baking its own app: %v (cluster reached %d times)", err, *reachedCluster)
	}
}

// apiWithoutCluster serves the platform's API to users dev1 and dev2 (a
// team each, password USER-password) and admin (admin-password); the
// count says how often a request got as far as the cluster, which there
// is none of.
func apiWithoutCluster(t *testing.T) (*Platform, *int) {
	t.Helper()
	users := auth.Open(filepath.Join(t.TempDir(), "users.yaml"))
	for _, u := range []string{"dev1", "dev2"} {
		if err := users.Set(u, u+"-password", false, []string{u + "/"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := users.Set("admin", "admin-password", true, nil); err != nil {
		t.Fatal(err)
	}
	reachedCluster := new(int)
	api := &API{Users: users, Clients: func() (*release.Clients, error) {
		*reachedCluster++
		return nil, errors.New("no cluster in this test")
	}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &Platform{State: State{Addresses: Addresses{Git: srv.URL}}}, reachedCluster
}

// TestUpgradeAPIIsOpsOnly: a team's user, a wrong password and no
// password are refused before anything is read; ops' malformed requests
// are refused before anything is built; and a platform without a
// cluster says so.
func TestUpgradeAPIIsOpsOnly(t *testing.T) {
	p, _ := apiWithoutCluster(t)
	ctx := context.Background()
	upgrade := func(user, password string, req UpgradeRequest) error {
		_, _, err := p.UpgradeCluster(ctx, user, password, req, io.Discard)
		return err
	}
	for _, c := range []struct {
		user, password string
		req            UpgradeRequest
		want           string
	}{
		{"dev1", "dev1-password", UpgradeRequest{Plan: true}, "only ops"},
		{"dev1", "dev1-password", UpgradeRequest{To: components.KubernetesVersion}, "only ops"},
		{"admin", "wrong", UpgradeRequest{Plan: true}, "refused"},
		{"", "", UpgradeRequest{Plan: true}, "log in"},
		{"admin", "admin-password", UpgradeRequest{To: "v1.99.0"}, "not one this slipway can run"},
		{"admin", "admin-password", UpgradeRequest{APIServerArgs: map[string]string{"--x": "1"}}, "want a flag name"},
		{"admin", "admin-password", UpgradeRequest{APIServerArgs: map[string]string{"v": "1\n--authorization-mode=AlwaysAllow"}}, "one line"},
		{"admin", "admin-password", UpgradeRequest{Plan: true}, "runs no cluster"},
	} {
		if err := upgrade(c.user, c.password, c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %+v: %v, want %q", c.user, c.req, err, c.want)
		}
	}
}
