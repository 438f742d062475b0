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
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
)

// Event is one ref a push changed.
type Event struct {
	Repo   string    `json:"repo"`
	Ref    string    `json:"ref"`
	Old    string    `json:"old"` // all zeros for a new ref
	New    string    `json:"new"` // all zeros for a deleted ref
	Pusher string    `json:"pusher"`
	At     time.Time `json:"at"`
}

// ZeroCommit stands for "no commit" in Event.Old and Event.New.
const ZeroCommit = "0000000000000000000000000000000000000000"

// Server serves the repositories under Root.
type Server struct {
	Root   string
	Users  *auth.Store
	OnPush func(Event)

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
	return &Server{Root: root, Users: users, backend: backend, locks: map[string]*sync.Mutex{}}, nil
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
	return nil
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

// ServeHTTP answers git's smart HTTP protocol at /<name>.git/….
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), ".git/")
	if !ok || ValidateName(repo) != nil {
		http.Error(w, "not a repository path: clone http://HOST/TEAM/NAME.git", http.StatusNotFound)
		return
	}
	write := rest == "git-receive-pack" || r.URL.Query().Get("service") == "git-receive-pack"
	name, password, hasAuth := r.BasicAuth()
	if !hasAuth {
		w.Header().Set("WWW-Authenticate", `Basic realm="slipway git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	user, err := s.Users.Authenticate(name, password)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="slipway git"`)
		http.Error(w, "wrong user name or password", http.StatusUnauthorized)
		return
	}
	if _, err := os.Stat(s.dir(repo)); err != nil {
		http.Error(w, fmt.Sprintf("no repository %s (an admin creates it with `slipway repo create %s`)", repo, repo), http.StatusNotFound)
		return
	}
	if write && !user.CanPush(repo) {
		http.Error(w, fmt.Sprintf("user %q may not push to %s", user.Name, repo), http.StatusForbidden)
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
	if rest != "git-receive-pack" {
		handler.ServeHTTP(w, r)
		return
	}
	// One push at a time per repository, so the refs read before and after
	// belong to this push alone.
	lock := s.repoLock(repo)
	lock.Lock()
	defer lock.Unlock()
	before := s.refs(repo)
	handler.ServeHTTP(w, r)
	after := s.refs(repo)
	if s.OnPush == nil {
		return
	}
	now := time.Now().UTC()
	for _, ev := range diffRefs(repo, user.Name, before, after, now) {
		s.OnPush(ev)
	}
}

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
