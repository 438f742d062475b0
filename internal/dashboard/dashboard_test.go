package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/events"
)

// fixture is a dashboard on a real socket with the platform's user store
// (admin, dev1, dev2) and a timeline holding one event of each team and
// one of the platform's.
type fixture struct {
	srv      *httptest.Server
	users    *auth.Store
	timeline *events.Log
}

func newFixture(t testing.TB, setup ...func(*Server)) *fixture {
	t.Helper()
	dir := t.TempDir()
	users := auth.Open(filepath.Join(dir, "users.json"))
	for _, u := range []struct {
		name  string
		admin bool
		push  []string
	}{{"admin", true, nil}, {"dev1", false, []string{"dev1/"}}, {"dev2", false, []string{"dev2/"}}} {
		if err := users.Set(u.name, u.name+"-password", u.admin, u.push); err != nil {
			t.Fatal(err)
		}
	}
	timeline := events.Open(filepath.Join(dir, "timeline.jsonl"), 0)
	for _, e := range []events.Event{
		{Source: events.SourceGit, Team: "dev1", Message: "dev1 pushed hello"},
		{Source: events.SourceGit, Team: "dev2", Message: "dev2 pushed quotes"},
		{Source: events.SourceFlux, Message: "the fleet was applied"},
	} {
		e.Time, e.Severity = time.Now(), "info"
		if err := timeline.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{Users: users, Timeline: timeline, Secret: []byte("test-secret"),
		TeamOf: func(u *auth.User) string {
			if len(u.Push) == 1 {
				return strings.TrimSuffix(u.Push[0], "/")
			}
			return ""
		}}
	for _, f := range setup {
		f(s)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, users: users, timeline: timeline}
}

// browser is a client that keeps cookies and does not follow redirects.
func (f *fixture) browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) signIn(t *testing.T, c *http.Client, user, password string) *http.Response {
	t.Helper()
	res, err := c.PostForm(f.srv.URL+Path+"login", url.Values{"user": {user}, "password": {password}, "next": {Path + "timeline"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// A team's user sees its own team's events, on the page and in the
// JSON, and nothing of another team's; ops sees all; without a session
// nothing is shown.
func TestTimelineIsScopedToTheTeam(t *testing.T) {
	f := newFixture(t)
	anon := f.browser(t)
	if code, _ := get(t, anon, f.srv.URL+Path+"timeline"); code != http.StatusSeeOther {
		t.Errorf("the timeline signed out: %d, want a redirect to sign in", code)
	}
	if code, _ := get(t, anon, f.srv.URL+Path+"api/events"); code != http.StatusUnauthorized {
		t.Errorf("the events signed out: %d, want 401", code)
	}
	if res := f.signIn(t, anon, "dev1", "wrong"); res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
		t.Errorf("a wrong password: %d, cookies %v", res.StatusCode, res.Cookies())
	}

	dev1 := f.browser(t)
	if res := f.signIn(t, dev1, "dev1", "dev1-password"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != Path+"timeline" {
		t.Fatalf("signing in: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	code, page := get(t, dev1, f.srv.URL+Path+"timeline")
	if code != http.StatusOK || !strings.Contains(page, "dev1 pushed hello") || strings.Contains(page, "dev2 pushed") || strings.Contains(page, "the fleet was applied") {
		t.Errorf("dev1's timeline page (%d):\n%s", code, page)
	}
	code, body := get(t, dev1, f.srv.URL+Path+"api/events")
	var list []events.Event
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil || len(list) != 1 || list[0].Team != "dev1" {
		t.Errorf("dev1's events (%d): %s", code, body)
	}
	for _, p := range []string{"timeline?team=dev2", "api/events?team=dev2", "api/events/stream?team=dev2"} {
		if code, body := get(t, dev1, f.srv.URL+Path+p); code != http.StatusForbidden || strings.Contains(body, "dev2 pushed") {
			t.Errorf("dev1 asking %s: %d %s", p, code, body)
		}
	}

	ops := f.browser(t)
	f.signIn(t, ops, "admin", "admin-password")
	if _, page := get(t, ops, f.srv.URL+Path+"timeline"); !strings.Contains(page, "dev1 pushed hello") || !strings.Contains(page, "dev2 pushed quotes") || !strings.Contains(page, "the fleet was applied") {
		t.Errorf("ops's timeline:\n%s", page)
	}
	if _, page := get(t, ops, f.srv.URL+Path+"timeline?team=dev2"); strings.Contains(page, "dev1 pushed") || !strings.Contains(page, "dev2 pushed quotes") {
		t.Errorf("ops's timeline of dev2:\n%s", page)
	}
}

// A session cannot be forged or outlive the password it was made with.
func TestSessionsCannotBeForged(t *testing.T) {
	f := newFixture(t)
	dev1 := f.browser(t)
	res := f.signIn(t, dev1, "dev1", "dev1-password")
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == cookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the session cookie: %+v", cookie)
	}
	u, _ := url.Parse(f.srv.URL)
	parts := strings.Split(cookie.Value, "|")
	for name, value := range map[string]string{
		"another user's name": "dev2|" + parts[1] + "|" + parts[2],
		"a later expiry":      "dev1|" + "99999999999" + "|" + parts[2],
		"no signature":        "dev1|" + parts[1] + "|",
		"garbage":             "admin",
	} {
		forged := f.browser(t)
		forged.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: value, Path: Path}})
		if code, _ := get(t, forged, f.srv.URL+Path+"api/events"); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	if code, _ := get(t, dev1, f.srv.URL+Path+"api/events"); code != http.StatusOK {
		t.Fatalf("the real session: %d", code)
	}
	if err := f.users.Set("dev1", "a-new-password", false, []string{"dev1/"}); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, dev1, f.srv.URL+Path+"api/events"); code != http.StatusUnauthorized {
		t.Errorf("after a password change the old session reads: %d", code)
	}
}

// The stream brings the team's new events as they are appended, and not
// another team's.
func TestStreamIsLiveAndScoped(t *testing.T) {
	f := newFixture(t)
	dev1 := f.browser(t)
	f.signIn(t, dev1, "dev1", "dev1-password")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+Path+"api/events/stream", nil)
	res, err := dev1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("the stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(res.Body)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("the stream's opening: %q %v", line, err)
	}
	for _, e := range []events.Event{
		{Source: events.SourceGit, Team: "dev2", Message: "dev2 pushed again"},
		{Source: events.SourcePipeline, Team: "dev1", Message: "run 7 of hello succeeded"},
	} {
		e.Time, e.Severity = time.Now(), "info"
		if err := f.timeline.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var e events.Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil {
			t.Fatal(err)
		}
		if e.Team != "dev1" || e.Message != "run 7 of hello succeeded" {
			t.Fatalf("dev1's stream brought %+v", e)
		}
		return
	}
}
