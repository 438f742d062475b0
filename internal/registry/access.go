package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"

	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/gorilla/mux"

	"github.com/slipway-dev/slipway/internal/auth"
)

// Realm is sent in Basic authentication challenges.
const Realm = "slipway"

// routes puts Slipway's own endpoints and access control in front of
// distribution's handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("POST /slipway/v1/gc", s.serveGC)
	mux.Handle("/v2/", http.HandlerFunc(s.serveRegistry))
	mux.HandleFunc(TokenPath, s.serveToken)
	return mux
}

// serveHealth answers 200 when the storage directory can be read.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if _, err := statfs(s.opts.StorageDir); err != nil {
		http.Error(w, "storage unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintln(w, "ok")
}

// access is what a request needs.
type access int

const (
	accessRead access = iota
	accessWrite
)

// apiRouter names the route of a /v2/ request; it is distribution's own
// router, so repository names with slashes are split exactly as the
// registry splits them.
var apiRouter = v2.Router()

func (s *Server) serveRegistry(w http.ResponseWriter, r *http.Request) {
	var match mux.RouteMatch
	repo, need, route := "", accessRead, ""
	referrersOf := ""
	if m := referrersPath.FindStringSubmatch(r.URL.Path); m != nil {
		repo, referrersOf, route = m[1], m[2], "referrers"
	} else if apiRouter.Match(r, &match) && match.Route != nil {
		repo, route = match.Vars["name"], match.Route.GetName()
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		if route != "" {
			need = accessWrite
		}
	}

	action := actionFor(r.Method)
	unauthorized := func(msg string) {
		if s.opts.TokenAuth {
			s.bearerChallenge(w, r, repo, action, "", msg)
		} else {
			challenge(w, msg)
		}
	}
	user, token, ok := s.authenticate(w, r, repo, action)
	if !ok {
		return
	}
	if user == nil && (need == accessWrite || !s.opts.AnonymousPull) {
		unauthorized("authentication required: log in with `slipway login` or `docker login`")
		return
	}
	if strings.HasPrefix(repo, auth.PrivatePrefix) && !user.CanPull(repo) {
		if user == nil {
			unauthorized("authentication required: this repository is ops's")
			return
		}
		writeError(w, http.StatusForbidden, "DENIED", deniedMessage(user, repo))
		return
	}
	if need == accessWrite {
		if repo == "" || !user.CanPush(repo) {
			writeError(w, http.StatusForbidden, "DENIED", deniedMessage(user, repo))
			return
		}
	}
	// The user may do it; a token must also grant it, or the client asks
	// for one that does.
	if token != nil && route != "" && route != v2.RouteNameBase && !token.grants(repo, action) {
		s.bearerChallenge(w, r, repo, action, "insufficient_scope", "the token does not grant "+action+" on "+repo)
		return
	}
	if need == accessWrite {
		if msg := s.checkFreeSpace(r.ContentLength); msg != "" {
			writeError(w, http.StatusInsufficientStorage, "DENIED", msg)
			return
		}
		if r.ContentLength < 0 && s.opts.MinFreeBytes > 0 {
			// A chunked upload's size is known only as it arrives: the
			// free space is checked as it does.
			g := &spaceGuard{s: s, body: r.Body}
			r.Body = g
			w = &guardedWriter{ResponseWriter: w, guard: g}
		}
		// Writes wait while garbage collection runs.
		s.gcLock.RLock()
		defer s.gcLock.RUnlock()
	}
	switch {
	case route == "referrers":
		s.serveReferrers(w, r, repo, referrersOf)
	case route == v2.RouteNameManifest && r.Method == http.MethodPut:
		s.putManifest(w, r, repo, match.Vars["reference"], user.Name)
	default:
		s.app.ServeHTTP(w, r)
	}
}

// authenticate returns the user for the request's credentials, nil for a
// request without credentials, and false after answering a request whose
// credentials are wrong. With token authentication, a request that sends
// a token also gets the token back, checked, to hold its grants against.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, repo, action string) (*auth.User, *bearer, bool) {
	if raw, isBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); isBearer && s.opts.TokenAuth {
		token, err := s.checkToken(strings.TrimSpace(raw))
		if errors.Is(err, errTokenInvalid) {
			s.bearerChallenge(w, r, repo, action, "invalid_token", err.Error())
			return nil, nil, false
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return nil, nil, false
		}
		return token.user, token, true
	}
	name, password, hasAuth := r.BasicAuth()
	if !hasAuth {
		if r.Header.Get("Authorization") != "" {
			if s.opts.TokenAuth {
				s.bearerChallenge(w, r, repo, action, "invalid_request", "send a Bearer token from the token endpoint, or Basic credentials")
			} else {
				challenge(w, "only Basic authentication is supported")
			}
			return nil, nil, false
		}
		return nil, nil, true
	}
	user, err := s.opts.Users.AuthenticateFrom(r.RemoteAddr, name, password)
	if errors.Is(err, auth.ErrThrottled) {
		writeError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", err.Error())
		return nil, nil, false
	}
	if errors.Is(err, auth.ErrBadCredentials) {
		challenge(w, "wrong user name or password")
		return nil, nil, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return nil, nil, false
	}
	return user, nil, true
}

func deniedMessage(u *auth.User, repo string) string {
	if repo == "" {
		return "this operation needs an admin user"
	}
	if !u.CanPull(repo) {
		return fmt.Sprintf("user %q may not read or write %q: repositories under %s are ops's (they hold the databases' backups)", u.Name, repo, auth.PrivatePrefix)
	}
	if len(u.Push) == 0 {
		return fmt.Sprintf("user %q may not push to %q: the user has no push rights (an admin grants them with `slipway user set %s --push <prefix>/`)", u.Name, repo, u.Name)
	}
	return fmt.Sprintf("user %q may not push to %q: it may push only under %s", u.Name, repo, strings.Join(u.Push, ", "))
}

// checkFreeSpace returns a message when a write of size bytes (or of unknown
// size, when negative) would leave less than the configured free space.
func (s *Server) checkFreeSpace(size int64) string {
	if s.opts.MinFreeBytes <= 0 {
		return ""
	}
	free, err := statfs(s.opts.StorageDir)
	if err != nil {
		return ""
	}
	if size < 0 {
		size = 0
	}
	if free-size < s.opts.MinFreeBytes {
		return fmt.Sprintf("registry storage is full: %d MiB free in %s, %d MiB must stay free; delete images and run `slipway registry gc`, or free disk space", free>>20, s.opts.StorageDir, s.opts.MinFreeBytes>>20)
	}
	return ""
}

// spaceGuard reads a request body of unknown length and fails the read
// once the storage's free space falls under the reserve, checking every
// guardEvery bytes.
type spaceGuard struct {
	s     *Server
	body  io.ReadCloser
	since int64
	// full is the refusal, once the reserve is reached.
	full string
}

const guardEvery = 1 << 20

func (g *spaceGuard) Read(p []byte) (int, error) {
	if g.full != "" {
		return 0, errors.New(g.full)
	}
	if g.since >= guardEvery {
		g.since = 0
		if msg := g.s.checkFreeSpace(guardEvery); msg != "" {
			g.full = msg
			return 0, errors.New(msg)
		}
	}
	n, err := g.body.Read(p)
	g.since += int64(n)
	return n, err
}

func (g *spaceGuard) Close() error { return g.body.Close() }

// guardedWriter answers 507 with the guard's message in place of the
// registry's own error when the guard stopped the upload.
type guardedWriter struct {
	http.ResponseWriter
	guard    *spaceGuard
	replaced bool
}

func (w *guardedWriter) WriteHeader(code int) {
	if w.guard.full != "" && code >= 400 {
		w.replaced = true
		writeError(w.ResponseWriter, http.StatusInsufficientStorage, "DENIED", w.guard.full)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *guardedWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil // the registry's own error body is dropped
	}
	return w.ResponseWriter.Write(b)
}

// statfs returns the bytes available to unprivileged writers under dir.
func statfs(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func challenge(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", Realm))
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

// writeError answers in the registry API's error format, which clients such
// as docker, skopeo and go-containerregistry print to their users.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	type apiError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{{Code: code, Message: msg}}})
}
