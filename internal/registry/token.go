package registry

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/slipway-dev/slipway/internal/auth"
)

// Token authentication is the Docker registry token flow, the one ACR and
// most hosted registries speak: a client without a token is answered 401
// with a Bearer challenge naming the token endpoint (the realm), the
// service and the scope it needs; it asks the endpoint with its user name
// and password and gets a short-lived token granting, of the actions it
// asked for, those its user may do; then it sends the token.
//
// The registry issues and checks its own tokens, signed with a key it
// makes at start and keeps in memory: a restart makes every token invalid
// and clients simply ask again. A token names its user, and each request
// is checked against that user's rights as they are now as well as
// against the token's grants, so a right taken away is gone at once.
// Basic credentials sent unasked are still accepted, as on ACR.

// TokenPath is the token endpoint, at ACR's path.
const TokenPath = "/oauth2/token"

// TokenService is the service tokens are issued for (their audience).
const TokenService = "slipway-registry"

// tokenIssuer signs every token.
const tokenIssuer = "slipway-registry-token-issuer"

// TokenLifetime is how long a token is valid.
const TokenLifetime = 5 * time.Minute

// maxScopes bounds the scopes one token request may ask for.
const maxScopes = 16

// Actions a token grants on a repository, as the token flow names them.
const (
	actionPull   = "pull"
	actionPush   = "push"
	actionDelete = "delete"
)

// resourceAccess is one grant: actions on a resource.
type resourceAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Access []resourceAccess `json:"access"`
}

// newTokenKey is the key tokens are signed with.
func newTokenKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// serveToken answers a token request: GET with Basic credentials (or none,
// for anonymous pulls), or the OAuth2 password grant by POST.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if !s.opts.TokenAuth {
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "this registry does not issue tokens: it takes Basic credentials")
		return
	}
	var name, password string
	var hasAuth bool
	var scopes []string
	service := r.URL.Query().Get("service")
	switch r.Method {
	case http.MethodGet:
		name, password, hasAuth = r.BasicAuth()
		scopes = r.URL.Query()["scope"]
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", "reading the form: "+err.Error())
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			tokenError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q: this registry takes the password grant only", gt))
			return
		}
		name, password, hasAuth = r.PostForm.Get("username"), r.PostForm.Get("password"), true
		scopes = strings.Fields(r.PostForm.Get("scope"))
		if v := r.PostForm.Get("service"); v != "" {
			service = v
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "use GET or POST")
		return
	}
	if service != "" && service != TokenService {
		tokenError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("service %q: this registry is %q", service, TokenService))
		return
	}
	if len(scopes) > maxScopes {
		tokenError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("%d scopes asked for; at most %d", len(scopes), maxScopes))
		return
	}
	var user *auth.User
	if hasAuth {
		u, err := s.opts.Users.AuthenticateFrom(r.RemoteAddr, name, password)
		switch {
		case errors.Is(err, auth.ErrThrottled):
			tokenError(w, http.StatusTooManyRequests, "invalid_grant", err.Error())
			return
		case errors.Is(err, auth.ErrBadCredentials):
			w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", Realm))
			tokenError(w, http.StatusUnauthorized, "invalid_grant", "wrong user name or password")
			return
		case err != nil:
			tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
		user = u
	} else if !s.opts.AnonymousPull {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", Realm))
		tokenError(w, http.StatusUnauthorized, "invalid_client", "authentication required: log in with `slipway login` or `docker login`")
		return
	}
	var grants []resourceAccess
	for _, sc := range scopes {
		want, err := parseScope(sc)
		if err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_scope", err.Error())
			return
		}
		// Of what was asked, only what the user may do is granted: the
		// token flow answers a partial grant with a token, and the
		// registry then refuses the rest with its reason.
		if got := s.grantable(user, want); len(got.Actions) > 0 {
			grants = append(grants, got)
		}
	}
	now := s.now()
	subject := ""
	if user != nil {
		subject = user.Name
	}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{TokenService},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(TokenLifetime)),
		},
		Access: grants,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.tokenKey)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":        signed,
		"access_token": signed,
		"expires_in":   int(TokenLifetime / time.Second),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// parseScope reads "repository:NAME:ACTION,ACTION" (NAME may hold a
// colon, as in a host:port prefix) or "registry:catalog:*".
func parseScope(scope string) (resourceAccess, error) {
	typ, rest, ok := strings.Cut(scope, ":")
	i := strings.LastIndex(rest, ":")
	if !ok || i <= 0 || i == len(rest)-1 {
		return resourceAccess{}, fmt.Errorf("scope %q: want repository:NAME:ACTIONS", scope)
	}
	name, actions := rest[:i], strings.Split(rest[i+1:], ",")
	switch typ {
	case "repository", "registry":
	default:
		return resourceAccess{}, fmt.Errorf("scope %q: unknown resource type %q", scope, typ)
	}
	return resourceAccess{Type: typ, Name: name, Actions: actions}, nil
}

// grantable is the part of want that user (nil: anonymous) may do now.
func (s *Server) grantable(user *auth.User, want resourceAccess) resourceAccess {
	got := resourceAccess{Type: want.Type, Name: want.Name}
	may := func(action string) bool {
		switch {
		case want.Type == "registry":
			// The catalog: whoever may pull may list.
			return want.Name == "catalog" && action == "*" && (user != nil || s.opts.AnonymousPull)
		case action == actionPull:
			if user == nil {
				return s.opts.AnonymousPull && !strings.HasPrefix(want.Name, auth.PrivatePrefix)
			}
			return user.CanPull(want.Name)
		case action == actionPush, action == actionDelete:
			return user != nil && user.CanPull(want.Name) && user.CanPush(want.Name)
		}
		return false
	}
	for _, a := range want.Actions {
		if a == "*" && want.Type == "repository" {
			for _, each := range []string{actionPull, actionPush, actionDelete} {
				if may(each) && !slices.Contains(got.Actions, each) {
					got.Actions = append(got.Actions, each)
				}
			}
			continue
		}
		if may(a) && !slices.Contains(got.Actions, a) {
			got.Actions = append(got.Actions, a)
		}
	}
	return got
}

// bearer is a checked token: whom it names and what it grants.
type bearer struct {
	user   *auth.User
	access []resourceAccess
}

// errTokenInvalid is any token the registry did not issue, or no longer
// accepts; the client asks for a new one.
var errTokenInvalid = errors.New("the token is invalid or has expired: ask the token endpoint for a new one")

// checkToken verifies a Bearer token's signature, issuer, audience and
// times, and finds its user as the user is now.
func (s *Server) checkToken(raw string) (*bearer, error) {
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return s.tokenKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer), jwt.WithAudience(TokenService),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(s.now))
	if err != nil {
		return nil, errTokenInvalid
	}
	b := &bearer{access: claims.Access}
	if claims.Subject != "" {
		u, ok, err := s.opts.Users.Get(claims.Subject)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errTokenInvalid // the user was deleted
		}
		b.user = &u
	}
	return b, nil
}

// grants reports whether the token allows action on the repository repo
// ("" for the catalog).
func (b *bearer) grants(repo, action string) bool {
	for _, a := range b.access {
		switch {
		case repo == "" && a.Type == "registry" && a.Name == "catalog":
			return true
		case repo != "" && a.Type == "repository" && a.Name == repo:
			if slices.Contains(a.Actions, action) {
				return true
			}
		}
	}
	return false
}

// actionFor is the token action an HTTP method needs.
func actionFor(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return actionPull
	case http.MethodDelete:
		return actionDelete
	}
	return actionPush
}

// bearerChallenge answers 401 with the challenge that sends the client to
// the token endpoint for the scope the request needs.
func (s *Server) bearerChallenge(w http.ResponseWriter, r *http.Request, repo, action, errCode, msg string) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c := fmt.Sprintf("Bearer realm=%q,service=%q", scheme+"://"+r.Host+TokenPath, TokenService)
	switch {
	case repo != "":
		actions := actionPull
		if action != actionPull {
			actions = actionPull + "," + action
		}
		c += fmt.Sprintf(",scope=%q", "repository:"+repo+":"+actions)
	case r.URL.Path == "/v2/_catalog":
		c += fmt.Sprintf(",scope=%q", "registry:catalog:*")
	}
	if errCode != "" {
		c += fmt.Sprintf(",error=%q", errCode)
	}
	w.Header().Set("WWW-Authenticate", c)
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
}
