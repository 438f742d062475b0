package platform

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/events"
)

// Only the platform's Alertmanager, with its token, puts alerts on the
// timeline; what it sends lands under the team its labels name.
func TestAlertsWebhookNeedsAlertmanagersToken(t *testing.T) {
	cfg := config.Config{Home: t.TempDir()}
	if err := os.MkdirAll(filepath.Dir(alertsTokenFile(cfg)), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(alertsTokenFile(cfg), []byte("the-token"), 0o600)
	timeline := events.Open(TimelinePath(cfg), 0)
	srv := httptest.NewServer(&AlertsWebhook{Config: cfg, Timeline: timeline})
	defer srv.Close()
	body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"SlipwayTargetDown","team":"dev1","namespace":"dev1-staging","severity":"warning"},"annotations":{"summary":"down"},"startsAt":"2026-11-27T10:00:00Z","fingerprint":"abc"},
{"status":"resolved","labels":{"alertname":"SlipwayReleaseNotReady","team":"../dev2","severity":"critical"},"annotations":{},"startsAt":"2026-11-27T09:00:00Z","endsAt":"2026-11-27T10:00:00Z"}]}`
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, auth := range []string{"", "Bearer guess", "Bearer the-token2", "Basic the-token", "the-token"} {
		if got := post(auth); got != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d", auth, got)
		}
	}
	if list, _ := timeline.Read(events.Filter{}); len(list) != 0 {
		t.Fatalf("refused alerts reached the timeline: %+v", list)
	}
	if got := post("Bearer the-token"); got != http.StatusOK {
		t.Fatalf("Alertmanager's own call: %d", got)
	}
	list, _ := timeline.Read(events.Filter{})
	if len(list) != 2 || list[0].Team != "dev1" || list[0].Reason != "AlertFiring" || list[0].Message != "down" ||
		list[1].Team != "" || list[1].Reason != "AlertResolved" || list[1].Message != "SlipwayReleaseNotReady" {
		t.Fatalf("timeline: %+v", list)
	}
}
