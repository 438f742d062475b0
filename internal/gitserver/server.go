// Package gitserver hosts git repositories over smart HTTP with Debian's
// git (`git http-backend`, run through Go's CGI handler). Users come from
// the same store as the registry's: every authenticated user may read,
// a user may push to repositories under its push prefixes (team dev1 to
// dev1/…), anonymous access is refused. After a push has updated refs, an
// Event per ref is handed to OnPush — the pipeline runner's trigger.
package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/fsutil"
)

// Event is one ref a push changed.
type Event struct {
	Repo   string    `json:"repo"`
	Ref    string    `json:"ref"`
	Old    string    `json:"old"` // all zeros for a new ref
	New    string    `json:"new"` // all zeros for a deleted ref
	Pusher string    `json:"pusher"`
	At     time.Time `json:"at"`
	// ID is unique to this ref's change and sorts in push order; a push
	// told again by Replay carries the same ID as when it was first told.
	ID string `json:"id"`
}

// ZeroCommit stands for "no commit" in Event.Old and Event.New.
const ZeroCommit = "0000000000000000000000000000000000000000"

// Server serves the repositories under Root.
type Server struct {
	Root   string
	Users  *auth.Store
	OnPush func(Event)
	// MaxPushBytes bounds one push's pack (default 1 GiB); PushIdle is how
	// long a push may send nothing before it is dropped (default 1
	// minute), so a stalled client does not hold the repository's lock.
	MaxPushBytes int64
	PushIdle     time.Duration

	backend string
	mu      sync.Mutex
	locks   map[string]*sync.Mutex
}

// New checks that git and its http-backend are installed.
func New(root string, users *auth.Store) (*Server, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, errors.New("git is not installed: install it (apt-get install git)")
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return nil, fmt.Errorf("git-http-backend not found at %s: install git", backend)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	s := &Server{Root: root, Users: users, backend: backend, locks: map[string]*sync.Mutex{}}
	// Repositories made by an earlier version get today's hooks.
	names, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if err := installHooks(s.dir(n)); err != nil {
			return nil, fmt.Errorf("repository %s: %w", n, err)
		}
	}
	return s, nil
}

var validRepo = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$`)

// ValidateName checks a repository name such as dev1/hello.
func ValidateName(name string) error {
	if !validRepo.MatchString(name) || strings.Contains(name, "..") || strings.HasSuffix(name, ".git") {
		return fmt.Errorf("repository name %q: use lower-case path segments such as dev1/hello (no .git)", name)
	}
	return nil
}

func (s *Server) dir(name string) string {
	return filepath.Join(s.Root, filepath.FromSlash(name)+".git")
}

// Create makes an empty bare repository whose default branch is main.
func (s *Server) Create(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	dir := s.dir(name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("repository %s already exists", name)
	}
	if out, err := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch=main", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("creating %s: %v: %s", name, err, out)
	}
	return installHooks(dir)
}

// protectKey is the repository's git config key naming its protected
// branches (refs/heads/NAME, one value each); unset means main alone, one
// empty value means none.
const protectKey = "slipway.protect"

// preReceive refuses, on the protected branches, a delete and any push
// that is not a fast-forward: git runs it before it updates any ref, so a
// refused push changes nothing.
const preReceive = `#!/bin/sh
# Written by slipway: protected branches take no force-push and no delete.
# Set them with: slipway repo protect NAME BRANCH...
zero=0000000000000000000000000000000000000000
protected=$(git config --get-all ` + protectKey + `) || protected=refs/heads/main
status=0
while read -r old new ref; do
	for p in $protected; do
		[ "$ref" = "$p" ] || continue
		if [ "$new" = $zero ]; then
			echo "slipway: ${ref#refs/heads/} is protected: it cannot be deleted" >&2
			status=1
		elif [ "$old" != $zero ] && ! git merge-base --is-ancestor "$old" "$new"; then
			echo "slipway: ${ref#refs/heads/} is protected: only fast-forward pushes are taken (pull, merge or rebase, then push without --force)" >&2
			status=1
		fi
	done
done
exit $status
`

// installHooks writes the repository's pre-receive hook, anew each time
// (a server of a later version may change it).
func installHooks(dir string) error {
	hooks := filepath.Join(dir, "hooks")
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(hooks, "pre-receive"), []byte(preReceive), 0o755)
}

// SetProtected sets the branches of a repository that take no force-push
// and no delete; none leaves every branch open.
func (s *Server) SetProtected(name string, branches []string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	dir := s.dir(name)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no repository %s", name)
	}
	config := func(args ...string) error {
		out, err := exec.Command("git", append([]string{"--git-dir", dir, "config"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("git config: %v: %s", err, out)
		}
		return nil
	}
	// Every name is checked before anything changes.
	for _, b := range branches {
		if out, err := exec.Command("git", "check-ref-format", "--branch", b).CombinedOutput(); err != nil || strings.ContainsAny(b, " \t") {
			return fmt.Errorf("branch name %q: %s", b, strings.TrimSpace(string(out)))
		}
	}
	_ = config("--unset-all", protectKey) // absent is fine
	if len(branches) == 0 {
		return config("--add", protectKey, "")
	}
	for _, b := range branches {
		if err := config("--add", protectKey, "refs/heads/"+b); err != nil {
			return err
		}
	}
	return nil
}

// Protected returns the protected branches of a repository.
func (s *Server) Protected(name string) ([]string, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.dir(name)); err != nil {
		return nil, fmt.Errorf("no repository %s", name)
	}
	out, err := exec.Command("git", "--git-dir", s.dir(name), "config", "--get-all", protectKey).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return []string{"main"}, nil // the default
		}
		return nil, fmt.Errorf("reading %s's protected branches: %w", name, err)
	}
	var branches []string
	for _, l := range strings.Fields(string(out)) {
		branches = append(branches, strings.TrimPrefix(l, "refs/heads/"))
	}
	return branches, nil
}

// Ensure creates the repository unless it exists; created says which.
func (s *Server) Ensure(name string) (created bool, err error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	if _, err := os.Stat(s.dir(name)); err == nil {
		return false, nil
	}
	return true, s.Create(name)
}

// List returns the repository names, sorted.
func (s *Server) List() ([]string, error) {
	var out []string
	err := filepath.WalkDir(s.Root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasSuffix(p, ".git") {
			rel, _ := filepath.Rel(s.Root, p)
			out = append(out, strings.TrimSuffix(filepath.ToSlash(rel), ".git"))
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// route is what git-http-backend runs for a request: a service of one
// repository, and whether the request asks for its ref advertisement
// (GET info/refs) or runs it (POST).
type route struct {
	repo, service string
	advertise     bool
}

const (
	uploadPack  = "git-upload-pack"
	receivePack = "git-receive-pack"
)

// routeError is a request git's smart HTTP protocol has no place for:
// the status and message it is answered with.
type routeError struct {
	status int
	msg    string
}

// parseRoute decides the repository and service of a request, exactly as
// the request will be handed to git-http-backend: the backend is given a
// path and query rebuilt from the route, never the client's own, so what
// is checked is what runs. Only the smart protocol's three requests are
// served; anything else (dumb-protocol reads, dot segments, doubled
// slashes, repeated or extra query parameters) is refused.
func parseRoute(r *http.Request) (route, *routeError) {
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), ".git/")
	if !ok || !strings.HasPrefix(r.URL.Path, "/") || ValidateName(repo) != nil {
		return route{}, &routeError{http.StatusNotFound, "not a repository path: clone https://HOST/TEAM/NAME.git"}
	}
	badRequest := &routeError{http.StatusBadRequest, "not a request of git's smart HTTP protocol"}
	switch rest {
	case "info/refs":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return route{}, &routeError{http.StatusMethodNotAllowed, "info/refs is read with GET"}
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil || len(q) != 1 || len(q["service"]) != 1 {
			return route{}, badRequest
		}
		service := q.Get("service")
		if service != uploadPack && service != receivePack {
			return route{}, badRequest
		}
		return route{repo: repo, service: service, advertise: true}, nil
	case uploadPack, receivePack:
		if r.Method != http.MethodPost {
			return route{}, &routeError{http.StatusMethodNotAllowed, rest + " is called with POST"}
		}
		if r.URL.RawQuery != "" {
			return route{}, badRequest
		}
		return route{repo: repo, service: rest}, nil
	}
	return route{}, badRequest
}

// backendRequest is r as git-http-backend must see it: the path and
// query of the route alone.
func (rt route) backendRequest(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	u := *r.URL
	u.Path, u.RawPath, u.RawQuery = "/"+rt.repo+".git/"+rt.service, "", ""
	if rt.advertise {
		u.Path, u.RawQuery = "/"+rt.repo+".git/info/refs", "service="+rt.service
	}
	out.URL = &u
	out.RequestURI = u.RequestURI()
	if !rt.advertise {
		// Without CONTENT_LENGTH the backend reads its input to the end.
		// With it, a body that ends early (a client gone, or cut by
		// boundPush) leaves git-http-backend spinning on the missing
		// bytes for ever.
		out.ContentLength = -1
		out.Header.Del("Content-Length")
	}
	return out
}

// ServeHTTP answers git's smart HTTP protocol at /<name>.git/….
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, bad := parseRoute(r)
	if bad != nil {
		http.Error(w, bad.msg, bad.status)
		return
	}
	user, status, err := s.Users.RequestUser(w, r, "slipway git")
	if err != nil {
		http.Error(w, auth.Refusal(err, "authentication required"), status)
		return
	}
	if _, err := os.Stat(s.dir(rt.repo)); err != nil {
		http.Error(w, fmt.Sprintf("no repository %s (an admin creates it with `slipway repo create %s`)", rt.repo, rt.repo), http.StatusNotFound)
		return
	}
	if rt.service == receivePack {
		if m, mirrored, err := s.MirrorOf(rt.repo); err != nil || mirrored {
			msg := fmt.Sprintf("repository %s mirrors %s: push there; its webhook or polling brings the change here", rt.repo, m.URL)
			if err != nil {
				msg = err.Error()
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
	}
	if rt.service == receivePack && !user.CanPush(rt.repo) {
		http.Error(w, fmt.Sprintf("user %q may not push to %s", user.Name, rt.repo), http.StatusForbidden)
		return
	}
	handler := &cgi.Handler{
		Path: s.backend,
		Dir:  s.Root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + user.Name,
		},
	}
	r = rt.backendRequest(r)
	if !rt.advertise {
		r.Body = s.boundPush(w, r.Body)
	}
	if rt.service != receivePack || rt.advertise {
		handler.ServeHTTP(w, r)
		return
	}
	// One push at a time per repository, so the refs read before and after
	// belong to this push alone.
	lock := s.repoLock(rt.repo)
	lock.Lock()
	defer lock.Unlock()
	rec := &pushRecord{Repo: rt.repo, Pusher: user.Name, At: time.Now().UTC(), Before: s.refs(rt.repo)}
	if err := s.beginPush(rec); err != nil {
		http.Error(w, "the server cannot record the push, so it takes none: "+err.Error(), http.StatusInternalServerError)
		return
	}
	handler.ServeHTTP(w, r)
	s.endPush(rec)
}

// boundPush wraps the body of a POST (a push's pack, a fetch's
// negotiation): past MaxPushBytes, or after PushIdle without a byte,
// reading ends, so receive-pack stops before updating any ref (git
// writes refs only after the whole pack arrived and checked out).
func (s *Server) boundPush(w http.ResponseWriter, body io.ReadCloser) io.ReadCloser {
	limit, idle := s.MaxPushBytes, s.PushIdle
	if limit <= 0 {
		limit = 1 << 30
	}
	if idle <= 0 {
		idle = time.Minute
	}
	return &boundedBody{body: body, left: limit, limit: limit, idle: idle, rc: http.NewResponseController(w)}
}

type boundedBody struct {
	body        io.ReadCloser
	left, limit int64
	idle        time.Duration
	rc          *http.ResponseController
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the push is larger than %d MiB, the most this server takes", b.limit>>20)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.body.Close() }

func (s *Server) repoLock(repo string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[repo] == nil {
		s.locks[repo] = &sync.Mutex{}
	}
	return s.locks[repo]
}

// refs reads every ref of a repository: name → commit.
func (s *Server) refs(repo string) map[string]string {
	out, err := exec.CommandContext(context.Background(), "git", "--git-dir", s.dir(repo), "for-each-ref", "--format=%(refname) %(objectname)").Output()
	refs := map[string]string{}
	if err != nil {
		return refs
	}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if name, sha, ok := strings.Cut(string(line), " "); ok {
			refs[name] = sha
		}
	}
	return refs
}

func diffRefs(repo, pusher string, before, after map[string]string, at time.Time) []Event {
	// (Events are numbered by the caller, in this order.)
	var events []Event
	for ref, sha := range after {
		if before[ref] != sha {
			old := before[ref]
			if old == "" {
				old = ZeroCommit
			}
			events = append(events, Event{Repo: repo, Ref: ref, Old: old, New: sha, Pusher: pusher, At: at})
		}
	}
	for ref, sha := range before {
		if _, ok := after[ref]; !ok {
			events = append(events, Event{Repo: repo, Ref: ref, Old: sha, New: ZeroCommit, Pusher: pusher, At: at})
		}
	}
	sort.Slice(events, func(i, j int) bool { return events[i].Ref < events[j].Ref })
	return events
}
