package platform

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/events"
)

// Flux's event endpoint and the timeline's API from the attacker's side,
// over a real socket: an event counts only when signed with its owner's
// key and about its owner's namespaces, and a team reads only its own.
func TestFluxEventsNeedTheOwnersKeyAndNamespace(t *testing.T) {
	cfg := config.Config{Home: t.TempDir()}
	users := auth.Open(filepath.Join(t.TempDir(), "users.yaml"))
	for _, u := range []struct {
		name  string
		admin bool
		push  []string
	}{{"admin", true, nil}, {"dev1", false, []string{"dev1/"}}, {"dev2", false, []string{"dev2/"}}} {
		if err := users.Set(u.name, u.name+"-password", u.admin, u.push); err != nil {
			t.Fatal(err)
		}
	}
	keys := map[string]string{}
	for _, team := range []string{"dev1", "dev2", ""} {
		k, err := notifyKey(cfg, "events", team)
		if err != nil {
			t.Fatal(err)
		}
		keys[team] = k
	}
	if again, _ := notifyKey(cfg, "events", "dev1"); again != keys["dev1"] {
		t.Fatal("a team's key changed when read again")
	}
	timeline := events.Open(TimelinePath(cfg), 0)
	mux := http.NewServeMux()
	mux.Handle("POST "+FluxEventsPath, &FluxEvents{Config: cfg, Timeline: timeline})
	mux.Handle(APIPath, &API{Config: cfg, Users: users})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	event := func(ns, name, msg string) []byte {
		return fmt.Appendf(nil, `{"involvedObject":{"kind":"HelmRelease","namespace":%q,"name":%q},"severity":"info","timestamp":"2026-11-27T10:00:00Z","message":%q,"reason":"UpgradeSucceeded","metadata":{"revision":"1.0.3"},"reportingController":"helm-controller"}`, ns, name, msg)
	}
	sign := func(key string, body []byte) string {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write(body)
		return "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	post := func(owner, signature string, body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+FluxEventsPath+owner, bytes.NewReader(body))
		if signature != "" {
			req.Header.Set("X-Signature", signature)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	good := event("dev1-staging", "hello", "Helm upgrade succeeded")
	for _, tc := range []struct {
		what, owner, signature string
		body                   []byte
		want                   int
	}{
		{"no signature", "teams/dev1", "", good, http.StatusUnauthorized},
		{"signed with another team's key", "teams/dev1", sign(keys["dev2"], good), good, http.StatusUnauthorized},
		{"a body changed after signing", "teams/dev1", sign(keys["dev1"], good), event("dev1-staging", "hello", "forged"), http.StatusUnauthorized},
		{"the team's key, another team's namespace", "teams/dev1", sign(keys["dev1"], event("dev2-prod", "quotes", "x")), event("dev2-prod", "quotes", "x"), http.StatusForbidden},
		{"the team's key, the fleet's namespace", "teams/dev1", sign(keys["dev1"], event("flux-system", "flux-system", "x")), event("flux-system", "flux-system", "x"), http.StatusForbidden},
		{"the fleet's key, a team's namespace", "fleet", sign(keys[""], event("dev2-prod", "quotes", "x")), event("dev2-prod", "quotes", "x"), http.StatusForbidden},
		{"a team with no key", "teams/dev9", sign("guess", good), good, http.StatusNotFound},
		{"a team name that is no team's", "teams/DEV1", sign(keys["dev1"], good), good, http.StatusNotFound},
		{"a path that cleans to the fleet's", "teams/../fleet", sign(keys[""], good), good, http.StatusForbidden},
		{"too big", "teams/dev1", "sha256=00", bytes.Repeat([]byte("x"), maxFluxEventBytes+1), http.StatusRequestEntityTooLarge},
		{"not JSON", "teams/dev1", sign(keys["dev1"], []byte("{")), []byte("{"), http.StatusBadRequest},
	} {
		if got := post(tc.owner, tc.signature, tc.body); got != tc.want {
			t.Errorf("%s: answered %d, want %d", tc.what, got, tc.want)
		}
	}
	if list, _ := timeline.Read(events.Filter{}); len(list) != 0 {
		t.Fatalf("refused events reached the timeline: %+v", list)
	}

	// The owners' own events count.
	if got := post("teams/dev1", sign(keys["dev1"], good), good); got != http.StatusAccepted {
		t.Fatalf("dev1's event: %d", got)
	}
	dev2 := event("dev2-prod", "quotes", "Helm install succeeded")
	if got := post("teams/dev2", sign(keys["dev2"], dev2), dev2); got != http.StatusAccepted {
		t.Fatalf("dev2's event: %d", got)
	}
	fleet := event("flux-system", "tenants-prod", "Reconciliation finished")
	if got := post("fleet", sign(keys[""], fleet), fleet); got != http.StatusAccepted {
		t.Fatalf("the fleet's event: %d", got)
	}

	// Reading: a team sees its own; ops sees all.
	p := &Platform{State: State{Addresses: Addresses{Git: srv.URL}}}
	ctx := context.Background()
	mine, err := p.Events(ctx, "dev1", "dev1-password", "", "", 0)
	if err != nil || len(mine) != 1 || mine[0].Team != "dev1" || mine[0].Revision != "1.0.3" || mine[0].Reason != "UpgradeSucceeded" {
		t.Fatalf("dev1 reads %+v, %v", mine, err)
	}
	if _, err := p.Events(ctx, "dev1", "dev1-password", "dev2", "", 0); err == nil || !strings.Contains(err.Error(), "only its own team") {
		t.Fatalf("dev1 asking for dev2's events: %v", err)
	}
	if _, err := p.Events(ctx, "dev1", "guess", "", "", 0); err == nil {
		t.Fatal("a wrong password read the timeline")
	}
	if _, err := p.Events(ctx, "", "", "", "", 0); err == nil {
		t.Fatal("no credentials read the timeline")
	}
	all, err := p.Events(ctx, "admin", "admin-password", "", "", 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("ops reads %d events, %v", len(all), err)
	}
	if only, err := p.Events(ctx, "admin", "admin-password", "dev2", "", 0); err != nil || len(only) != 1 || only[0].Namespace != "dev2-prod" {
		t.Fatalf("ops reading dev2's: %+v, %v", only, err)
	}
	if _, err := p.Events(ctx, "admin", "admin-password", "", "yesterday", 0); err == nil || !strings.Contains(err.Error(), "since") {
		t.Fatalf("a bad since: %v", err)
	}
}
