// Package auth keeps Slipway's users: names, bcrypt password hashes and the
// repository prefixes each may write to. The registry (and later the git
// server) authenticate against the same store, so one team has one login.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/fsutil"
	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// ErrBadCredentials is returned for an unknown user or a wrong password;
// the two are not told apart, so names cannot be probed.
var ErrBadCredentials = errors.New("wrong user name or password")

// User is one account.
type User struct {
	Name         string `json:"name"`
	PasswordHash string `json:"passwordHash"`
	// Admin may write anywhere and run maintenance such as garbage collection.
	Admin bool `json:"admin,omitempty"`
	// Push lists the repository prefixes this user may write and delete
	// under, for example "dev1/". Every authenticated user may read, but
	// under PrivatePrefix.
	Push []string `json:"push,omitempty"`
}

// PrivatePrefix starts the repositories only admins may read or write:
// the databases' backups, which hold the teams' data.
const PrivatePrefix = "slipway/backups/"

// CanPull reports whether u may read repository repo. Every user may,
// except in the private repositories.
func (u *User) CanPull(repo string) bool {
	return u != nil && (u.Admin || !strings.HasPrefix(repo, PrivatePrefix))
}

// CanPush reports whether u may write to repository repo.
func (u *User) CanPush(repo string) bool {
	if u.Admin {
		return true
	}
	for _, p := range u.Push {
		if strings.HasPrefix(repo, p) {
			return true
		}
	}
	return false
}

type file struct {
	Users []User `json:"users"`
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidateName checks a user name: lower-case letters, digits, '.', '_' and
// '-', starting with a letter or digit.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("user name %q: use lower-case letters, digits, '.', '_' or '-' (at most 63), starting with a letter or digit", name)
	}
	return nil
}

// ValidatePrefix checks a push prefix. A prefix must end in '/' so that
// "dev1/" cannot be confused with "dev10/".
func ValidatePrefix(p string) error {
	if p == "" || !strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/") {
		return fmt.Errorf("push prefix %q: write it as a repository path ending in '/', for example dev1/", p)
	}
	return nil
}

// Store is the users file, re-read when it changes on disk so that a
// running server sees users added by another slipway command.
type Store struct {
	path string

	mu      sync.Mutex
	users   map[string]User
	modTime time.Time
	size    int64
	// verified caches successful password checks: bcrypt is deliberately
	// slow (tens of milliseconds) and one image push is dozens of requests.
	verified map[[32]byte]string
	throttle throttle
}

// Open returns the store kept in path. The file need not exist yet.
func Open(path string) *Store {
	return &Store{path: path, verified: map[[32]byte]string{}}
}

// Path is the file the store reads and writes.
func (s *Store) Path() string { return s.path }

// reload reads the file if it changed since the last read. Caller holds mu.
func (s *Store) reload() error {
	st, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		s.users, s.modTime, s.size = map[string]User{}, time.Time{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading users: %w", err)
	}
	if s.users != nil && st.ModTime().Equal(s.modTime) && st.Size() == s.size {
		return nil
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("reading users: %w", err)
	}
	var f file
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return fmt.Errorf("reading users file %s: %w", s.path, err)
	}
	users := make(map[string]User, len(f.Users))
	for _, u := range f.Users {
		users[u.Name] = u
	}
	s.users, s.modTime, s.size = users, st.ModTime(), st.Size()
	s.verified = map[[32]byte]string{}
	return nil
}

// write stores users atomically: a crash mid-write leaves the old file.
// Caller holds mu.
func (s *Store) write(users map[string]User) error {
	f := file{}
	for _, u := range users {
		f.Users = append(f.Users, u)
	}
	sort.Slice(f.Users, func(i, j int) bool { return f.Users[i].Name < f.Users[j].Name })
	data, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("writing users: %w", err)
	}
	if err := fsutil.WriteFileAtomic(s.path, data, 0o600); err != nil {
		return fmt.Errorf("writing users: %w", err)
	}
	s.users = nil // force a re-read, which also refreshes modTime
	return s.reload()
}

// lockFile holds an exclusive lock on the users file's lock file, so that
// two processes (slipway user set beside a running server) never write
// from the same old copy and lose one's change. Caller holds mu.
func (s *Store) lockFile() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return nil, fmt.Errorf("writing users: %w", err)
	}
	f, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking users: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking users: %w", err)
	}
	// What another process wrote before the lock was taken is read anew.
	s.users = nil
	return func() { f.Close() }, nil
}

// Set creates or replaces a user. An empty password keeps the existing
// password of an existing user.
func (s *Store) Set(name, password string, admin bool, push []string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	for _, p := range push {
		if err := ValidatePrefix(p); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lockFile()
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.reload(); err != nil {
		return err
	}
	u, exists := s.users[name]
	if password == "" && !exists {
		return fmt.Errorf("user %q is new: give a password", name)
	}
	if password != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("hashing password: %w", err)
		}
		u.PasswordHash = string(hash)
	}
	u.Name, u.Admin, u.Push = name, admin, slices.Clone(push)
	users := make(map[string]User, len(s.users)+1)
	for k, v := range s.users {
		users[k] = v
	}
	users[name] = u
	return s.write(users)
}

// Delete removes a user.
func (s *Store) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lockFile()
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.reload(); err != nil {
		return err
	}
	if _, ok := s.users[name]; !ok {
		return fmt.Errorf("no user %q", name)
	}
	users := make(map[string]User, len(s.users))
	for k, v := range s.users {
		if k != name {
			users[k] = v
		}
	}
	return s.write(users)
}

// List returns the users sorted by name.
func (s *Store) List() ([]User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(); err != nil {
		return nil, err
	}
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns the user of that name; ok is false when there is none.
func (s *Store) Get(name string) (u User, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(); err != nil {
		return User{}, false, err
	}
	u, ok = s.users[name]
	return u, ok, nil
}

// Authenticate checks a name and password given by the program itself
// (not over the network: nothing is throttled).
func (s *Store) Authenticate(name, password string) (*User, error) {
	return s.check(name, password)
}

// AuthenticateFrom checks a name and password sent from a network
// address (a request's RemoteAddr). Past a number of failures from that
// address in a minute, it refuses at once with ErrThrottled, without the
// password check: bcrypt's cost is the platform's CPU, which requests
// must not be able to burn.
func (s *Store) AuthenticateFrom(addr, name, password string) (*User, error) {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	pair := name + "@" + host
	if !s.throttle.allow(pair, failuresPerUser) || !s.throttle.allow(host, failuresPerAddress) {
		return nil, ErrThrottled
	}
	u, err := s.check(name, password)
	if errors.Is(err, ErrBadCredentials) {
		s.throttle.failed(pair)
		s.throttle.failed(host)
	}
	return u, err
}

// ErrNoCredentials is returned for a request that sends no Basic
// credentials.
var ErrNoCredentials = errors.New("no user name and password")

// RequestUser authenticates a request's Basic credentials as sent from
// its remote address (AuthenticateFrom: throttled like every login). On
// refusal it returns the status to answer with, 429 when throttled and
// else 401, for which it has set the Basic challenge of realm on w; the
// caller writes the body.
func (s *Store) RequestUser(w http.ResponseWriter, r *http.Request, realm string) (*User, int, error) {
	name, password, ok := r.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		return nil, http.StatusUnauthorized, ErrNoCredentials
	}
	user, err := s.AuthenticateFrom(r.RemoteAddr, name, password)
	switch {
	case errors.Is(err, ErrThrottled):
		return nil, http.StatusTooManyRequests, err
	case err != nil:
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		return nil, http.StatusUnauthorized, err
	}
	return user, http.StatusOK, nil
}

// Refusal is the text to answer a RequestUser refusal with: noCredentials
// when none came, the throttle's own words, else a wrong name or password
// (a failure to read the users tells the client no more).
func Refusal(err error, noCredentials string) string {
	switch {
	case errors.Is(err, ErrNoCredentials):
		return noCredentials
	case errors.Is(err, ErrThrottled):
		return err.Error()
	}
	return ErrBadCredentials.Error()
}

func (s *Store) check(name, password string) (*User, error) {
	s.mu.Lock()
	if err := s.reload(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	u, ok := s.users[name]
	key := sha256.Sum256([]byte(name + "\x00" + password))
	cachedHash, cached := s.verified[key]
	s.mu.Unlock()
	if !ok {
		// The same work as for a known user, so that the time taken does
		// not tell which user names exist.
		_ = bcrypt.CompareHashAndPassword(absentUserHash(), []byte(password))
		return nil, ErrBadCredentials
	}
	if cached && cachedHash == u.PasswordHash {
		return &u, nil
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, ErrBadCredentials
	}
	s.mu.Lock()
	s.verified[key] = u.PasswordHash
	s.mu.Unlock()
	return &u, nil
}

// absentUserHash is a hash of the default cost that no password matches
// in practice, compared against for names that have no user.
var absentUserHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte(RandomPassword()), bcrypt.DefaultCost)
	return h
})

// ErrThrottled: too many failed logins from one address.
var ErrThrottled = errors.New("too many failed logins from this address: wait a minute, and check the user name and password")

// Failed logins allowed in a minute: for one user name from one address
// (a client retrying a stale password throttles that user there, not
// everyone behind the address), and from one address in all (a client
// trying many names; bcrypt at the default cost, 200 a minute are a
// fraction of one core).
const (
	failuresPerUser    = 20
	failuresPerAddress = 200
)

// throttle counts failed logins per address over fixed minutes.
type throttle struct {
	mu       sync.Mutex
	window   time.Time
	failures map[string]int
}

func (t *throttle) roll() {
	if now := time.Now(); now.Sub(t.window) >= time.Minute || t.failures == nil {
		t.window, t.failures = now, map[string]int{}
	}
}

func (t *throttle) allow(key string, limit int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll()
	return t.failures[key] < limit
}

func (t *throttle) failed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll()
	t.failures[key]++
}

// RandomPassword returns a new 24-character password.
func RandomPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}
