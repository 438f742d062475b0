package gitserver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/fsutil"
)

// A mirrored repository lives on an external git host (Azure Repos,
// GitHub, any smart-HTTP server) and is kept here as a read-only copy, so
// that everything downstream (the pipeline runner, jobs cloning from this
// server, the dashboard) works as for a repository pushed here. The copy
// follows the host by fetching: when the host's webhook says something
// changed, at a polling interval, and at each start. What a fetch changes
// is told to OnPush as pushes are, through the same journal, so a crash
// mid-fetch loses no change. Only what was fetched counts: a webhook's
// payload says who pushed, never which commit to build.

// mirrorFile holds a repository's Mirror, readable by the platform's user
// only (it holds the host's credentials). Smart HTTP serves no file of a
// repository's directory, and git reads none of this name.
const mirrorFile = "slipway-mirror.json"

// Mirror is where a mirrored repository comes from.
type Mirror struct {
	// URL is the host's clone URL: https://, or http:// on loopback.
	URL string `json:"url"`
	// Username and Password are the host's credentials (a personal
	// access token on Azure Repos or GitHub); empty for a public one.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Secret authenticates the host's webhooks (see WebhookPath).
	Secret string `json:"secret"`
	// Poll is how often to fetch unasked; zero: on webhooks and at start.
	Poll Duration `json:"poll,omitempty"`
}

// Duration reads and writes as Go's duration text ("1m").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// MinPoll is the shortest polling interval: hosts rate-limit clients.
const MinPoll = 10 * time.Second

// CheckMirrorURL accepts https:// URLs, and http:// on loopback (a host
// on this machine). Anything else, file:// and ssh:// included, is
// refused: a fetch must not reach the platform's own files.
func CheckMirrorURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("mirror URL: %w", err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("mirror URL %q: want https://HOST/PATH (the host's clone URL)", u.Redacted())
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("mirror URL %q: plain http:// only on this machine's loopback; use https://", u.Redacted())
		}
	}
	if u.User != nil {
		return fmt.Errorf("mirror URL %q: give the credentials with --username and --password-stdin, not in the URL", u.Redacted())
	}
	return nil
}

// Link creates a mirrored repository: empty, read-only here, filled by
// its first Sync. On a repository that is a mirror already it changes
// the settings instead (a new URL, credentials, interval), keeping what
// was fetched and the webhook secret unless m names a new one. The
// secret is made here when there is none.
func (s *Server) Link(name string, m Mirror) (Mirror, error) {
	if err := ValidateName(name); err != nil {
		return m, err
	}
	if err := CheckMirrorURL(m.URL); err != nil {
		return m, err
	}
	if m.Poll != 0 && time.Duration(m.Poll) < MinPoll {
		return m, fmt.Errorf("polling every %s: the shortest interval is %s", time.Duration(m.Poll), MinPoll)
	}
	old, mirrored, err := s.MirrorOf(name)
	if err != nil {
		return m, err
	}
	if m.Secret == "" {
		m.Secret = old.Secret
	}
	if m.Secret == "" {
		m.Secret = NewSecret()
	}
	if mirrored {
		lock := s.repoLock(name)
		lock.Lock()
		defer lock.Unlock()
		return m, s.writeMirror(name, m)
	}
	if _, err := os.Stat(s.dir(name)); err == nil {
		return m, fmt.Errorf("repository %s exists and takes pushes here: link another name, or move its history to the host first", name)
	}
	if err := s.Create(name); err != nil {
		return m, err
	}
	if err := s.writeMirror(name, m); err != nil {
		_ = os.RemoveAll(s.dir(name))
		return m, err
	}
	return m, nil
}

// NewSecret makes a webhook secret.
func NewSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Unlink ends a mirror: the repository keeps what it fetched and takes
// pushes here from then on.
func (s *Server) Unlink(name string) error {
	if _, mirrored, err := s.MirrorOf(name); err != nil {
		return err
	} else if !mirrored {
		return fmt.Errorf("repository %s is no mirror", name)
	}
	lock := s.repoLock(name)
	lock.Lock()
	defer lock.Unlock()
	_ = os.Remove(filepath.Join(s.dir(name), mirrorStatusFile))
	return os.Remove(filepath.Join(s.dir(name), mirrorFile))
}

// mirrorStatusFile records the last fetch of a mirror.
const mirrorStatusFile = "slipway-mirror-status.json"

// SyncStatus is how the last fetch of a mirror went.
type SyncStatus struct {
	At time.Time `json:"at"`
	// By is what asked for it: a webhook, the poll, the start.
	By    string `json:"by"`
	Error string `json:"error,omitempty"`
}

// MirrorStatus returns the last fetch's status; ok is false before the
// first.
func (s *Server) MirrorStatus(name string) (st SyncStatus, ok bool) {
	if ValidateName(name) != nil {
		return st, false
	}
	data, err := os.ReadFile(filepath.Join(s.dir(name), mirrorStatusFile))
	if err != nil || json.Unmarshal(data, &st) != nil {
		return st, false
	}
	return st, true
}

func (s *Server) writeMirror(name string, m Mirror) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(s.dir(name), mirrorFile), data, 0o600)
}

// MirrorOf returns a repository's Mirror; ok is false for a repository
// pushed here.
func (s *Server) MirrorOf(name string) (m Mirror, ok bool, err error) {
	if err := ValidateName(name); err != nil {
		return m, false, err
	}
	data, err := os.ReadFile(filepath.Join(s.dir(name), mirrorFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil {
		return m, false, fmt.Errorf("repository %s's mirror settings: %w", name, err)
	}
	return m, true, nil
}

// Mirrors returns every mirrored repository's name and Mirror.
func (s *Server) Mirrors() (map[string]Mirror, error) {
	names, err := s.List()
	if err != nil {
		return nil, err
	}
	out := map[string]Mirror{}
	for _, n := range names {
		m, ok, err := s.MirrorOf(n)
		if err != nil {
			return nil, err
		}
		if ok {
			out[n] = m
		}
	}
	return out, nil
}

// fetchTimeout bounds one fetch: a host that stalls does not hold the
// repository's lock for ever.
const fetchTimeout = 10 * time.Minute

// Sync fetches a mirrored repository's branches and tags from its host,
// pruning what the host deleted, and tells OnPush each ref that changed,
// with pusher as the one who pushed.
func (s *Server) Sync(ctx context.Context, name, pusher string) error {
	m, ok, err := s.MirrorOf(name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("repository %s is no mirror", name)
	}
	if err := CheckMirrorURL(m.URL); err != nil {
		return err // the file was changed by hand
	}
	lock := s.repoLock(name)
	lock.Lock()
	defer lock.Unlock()
	rec := &pushRecord{Repo: name, Pusher: pusher, At: time.Now().UTC(), Before: s.refs(name)}
	if err := s.beginPush(rec); err != nil {
		return fmt.Errorf("recording the fetch of %s: %w", name, err)
	}
	defer s.endPush(rec)
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	err = m.git(ctx, "--git-dir", s.dir(name), "fetch", "--quiet", "--prune", "--no-tags",
		"--no-write-fetch-head", "--no-recurse-submodules", m.URL, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
	if err != nil {
		err = fmt.Errorf("fetching %s from %s: %w", name, m.URL, err)
	}
	st := SyncStatus{At: rec.At, By: pusher}
	if err != nil {
		st.Error = err.Error()
	}
	if data, jerr := json.Marshal(st); jerr == nil {
		_ = fsutil.WriteFileAtomic(filepath.Join(s.dir(name), mirrorStatusFile), data, 0o644)
	}
	return err
}

// Check asks the host for the repository's refs, as a fetch begins: the
// host takes the credentials and the repository is there.
func (m Mirror) Check(ctx context.Context) error {
	if err := CheckMirrorURL(m.URL); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.git(ctx, "ls-remote", "--heads", m.URL); err != nil {
		return fmt.Errorf("reading %s: %w", m.URL, err)
	}
	return nil
}

// git runs git against the host: only the URL's own protocol, also
// across redirects; no prompt for a password the host refused;
// credentials in the environment, not in the process list, and never in
// an error.
func (m Mirror) git(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(os.Environ(), "GIT_ALLOW_PROTOCOL=https:http", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "GIT_CONFIG_NOSYSTEM=1")
	if m.Username != "" || m.Password != "" {
		basic := base64.StdEncoding.EncodeToString([]byte(m.Username + ":" + m.Password))
		cmd.Env = append(cmd.Env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("the host did not answer in time (%v)", ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if m.Password != "" {
			msg = strings.ReplaceAll(msg, m.Password, "***")
		}
		return errors.New(msg)
	}
	return nil
}

// WebhookPath is where hosts tell of pushes: WebhookPath + NAME, such as
// /-/hooks/git/dev1/hello.
const WebhookPath = "/-/hooks/git/"

// maxWebhookBody bounds a webhook's payload (a push of many commits is
// some hundred KiB).
const maxWebhookBody = 4 << 20

// Webhooks answers the hosts' webhooks: once one is authenticated with
// the repository's secret, the repository is synced (queued, so the host
// gets its answer at once). Three ways to authenticate are taken, which
// cover the usual hosts:
//
//   - GitHub (and Gitea, Forgejo): X-Hub-Signature-256, the body's
//     HMAC-SHA256 with the secret;
//   - Azure DevOps service hooks: Basic authentication whose password is
//     the secret (any user name);
//   - anything else: Authorization: Bearer SECRET.
//
// The payload is read for who pushed alone (GitHub's pusher.name, Azure
// DevOps's resource.pushedBy.uniqueName); what to build is what the
// fetch brings.
type Webhooks struct {
	Server *Server
	// Queue syncs a repository, with pusher as who pushed.
	Queue func(name, pusher string)
}

func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "webhooks are POSTed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, WebhookPath)
	if ValidateName(name) != nil {
		http.Error(w, "no such repository", http.StatusNotFound)
		return
	}
	m, ok, err := h.Server.MirrorOf(name)
	if err != nil {
		http.Error(w, "reading the repository's settings failed", http.StatusInternalServerError)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("the payload is larger than %d MiB", maxWebhookBody>>20), http.StatusRequestEntityTooLarge)
		return
	}
	// A repository that is no mirror is answered as a wrong secret is,
	// so the endpoint does not tell which repositories exist.
	if !ok || !webhookAuthentic(r, body, m.Secret) {
		http.Error(w, "the webhook's signature or secret is wrong", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("X-GitHub-Event") == "ping" {
		fmt.Fprintln(w, "pong")
		return
	}
	pusher := "webhook"
	if who := reportedPusher(body); who != "" {
		pusher = "webhook (" + who + ")"
	}
	h.Queue(name, pusher)
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "fetching %s\n", name)
}

func webhookAuthentic(r *http.Request, body []byte, secret string) bool {
	if secret == "" {
		return false
	}
	if sig, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256="); ok {
		got, err := hex.DecodeString(sig)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		return err == nil && hmac.Equal(got, mac.Sum(nil))
	}
	if _, password, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(password), []byte(secret)) == 1
	}
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(secret)) == 1
	}
	return false
}

// reportedPusher reads who pushed from GitHub's or Azure DevOps's push
// payload, as the host reports it: shown in the timeline, trusted for
// nothing.
func reportedPusher(body []byte) string {
	var p struct {
		Pusher   struct{ Name string } `json:"pusher"`
		Resource struct {
			PushedBy struct {
				UniqueName string `json:"uniqueName"`
			} `json:"pushedBy"`
		} `json:"resource"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	who := p.Pusher.Name
	if who == "" {
		who = p.Resource.PushedBy.UniqueName
	}
	// A name for a log line: printable, short.
	who = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, who)
	if len(who) > 64 {
		who = who[:64]
	}
	return who
}

// Syncer runs syncs one at a time per repository, coalescing requests
// that come while one runs into one more sync after it.
type Syncer struct {
	Server *Server
	// Failed hears of a sync that failed.
	Failed func(name string, err error)

	mu      sync.Mutex
	running map[string]*syncState
	wg      sync.WaitGroup
}

type syncState struct {
	again  bool
	pusher string
}

// Queue syncs name now, or once more after the sync that runs.
func (y *Syncer) Queue(ctx context.Context, name, pusher string) {
	y.mu.Lock()
	if y.running == nil {
		y.running = map[string]*syncState{}
	}
	if st, busy := y.running[name]; busy {
		st.again, st.pusher = true, pusher
		y.mu.Unlock()
		return
	}
	y.running[name] = &syncState{}
	y.mu.Unlock()
	y.wg.Add(1)
	go func() {
		defer y.wg.Done()
		for {
			if err := y.Server.Sync(ctx, name, pusher); err != nil && y.Failed != nil {
				y.Failed(name, err)
			}
			y.mu.Lock()
			st := y.running[name]
			if !st.again || ctx.Err() != nil {
				delete(y.running, name)
				y.mu.Unlock()
				return
			}
			st.again, pusher = false, st.pusher
			y.mu.Unlock()
		}
	}()
}

// Wait returns once every sync has ended (after ctx ended, they do soon:
// the fetch is killed).
func (y *Syncer) Wait() { y.wg.Wait() }

// Poll syncs every mirror at start, then each at its interval, until ctx
// ends.
func (y *Syncer) Poll(ctx context.Context) {
	last := map[string]time.Time{}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		mirrors, err := y.Server.Mirrors()
		if err == nil {
			now := time.Now()
			for name, m := range mirrors {
				at, seen := last[name]
				if !seen || (m.Poll > 0 && now.Sub(at) >= time.Duration(m.Poll)) {
					last[name] = now
					who := "poll"
					if !seen {
						who = "start"
					}
					y.Queue(ctx, name, who)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
