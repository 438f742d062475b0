package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
)

// cookieName holds a signed-in browser's session.
const cookieName = "slipway_session"

// sessionLength is how long a sign-in lasts.
const sessionLength = 12 * time.Hour

// A session is the cookie NAME|EXPIRY|MAC: the MAC, keyed by the
// dashboard's secret, covers the name, the expiry and the user's
// password hash, so a changed password or a deleted user ends every
// session of that user, and a restart with a new secret ends them all.
func (s *Server) sign(name string, expiry time.Time, passwordHash string) string {
	m := hmac.New(sha256.New, s.Secret)
	fmt.Fprintf(m, "%s|%d|%s", name, expiry.Unix(), passwordHash)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) newSession(w http.ResponseWriter, r *http.Request, u *auth.User) {
	expiry := time.Now().Add(sessionLength)
	value := u.Name + "|" + strconv.FormatInt(expiry.Unix(), 10) + "|" + s.sign(u.Name, expiry, u.PasswordHash)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: Path, Expires: expiry,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Path, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

var errNoSession = errors.New("not signed in")

// sessionUser is the signed-in user of a request.
func (s *Server) sessionUser(r *http.Request) (*auth.User, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil, errNoSession
	}
	parts := strings.Split(c.Value, "|")
	if len(parts) != 3 {
		return nil, errNoSession
	}
	unix, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil, errNoSession
	}
	expiry := time.Unix(unix, 0)
	if time.Now().After(expiry) {
		return nil, errNoSession
	}
	u, ok, err := s.Users.Get(parts[0])
	if err != nil {
		return nil, err
	}
	if !ok || !hmac.Equal([]byte(parts[2]), []byte(s.sign(u.Name, expiry, u.PasswordHash))) {
		return nil, errNoSession
	}
	return &u, nil
}
