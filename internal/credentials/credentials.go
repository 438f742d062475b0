// Package credentials logs in to registries the Docker way: a successful
// login is stored in the Docker config file (~/.docker/config.json, or
// $DOCKER_CONFIG/config.json), which docker, skopeo, helm, crane, ko and
// Slipway itself all read.
package credentials

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/trust"
)

// ConfigPath is the Docker config file in use.
func ConfigPath() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the Docker config: %w", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// ErrUnauthorized means the registry refused the user name or password.
var ErrUnauthorized = errors.New("the registry refused the user name or password")

// Check asks the registry's /v2/ endpoint whether the credentials are good,
// answering its challenge as docker login does: Basic, or the token flow
// (ACR's), in which the token endpoint judges the credentials. insecure
// chooses plain HTTP (see Scheme).
func Check(ctx context.Context, registry, user, password string, insecure bool) error {
	scheme := Scheme(ctx, registry, insecure)
	var opts []name.Option
	if scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(registry, opts...)
	if err != nil {
		return fmt.Errorf("registry %q: %w", registry, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	creds := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	tr, err := transport.NewWithContext(ctx, reg, creds, remote.DefaultTransport, []string{reg.Scope(transport.PullScope)})
	if err == nil {
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+registry+"/v2/", nil)
		if err != nil {
			return err
		}
		var resp *http.Response
		if resp, err = (&http.Client{Transport: tr}).Do(req); err == nil {
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				return nil
			case http.StatusUnauthorized, http.StatusForbidden:
				return fmt.Errorf("logging in to %s as %s: %w", registry, user, ErrUnauthorized)
			default:
				return fmt.Errorf("logging in to %s: the registry answered %s", registry, resp.Status)
			}
		}
	}
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		return fmt.Errorf("logging in to %s as %s: %w", registry, user, ErrUnauthorized)
	case TLSRefused(err):
		return trust.Explain(err, "the registry "+registry)
	}
	return fmt.Errorf("cannot reach registry %s: %w (is it running? start the embedded one with `slipway up`)", registry, err)
}

// Scheme is how to talk to a registry: plain HTTP when insecure says so;
// HTTPS elsewhere, except on this machine's loopback, where a registry may
// serve either (the platform's serves plain HTTP there only when asked,
// as a registry started for a test may): there the server's first answer
// decides, as docker and crane do for loopback registries.
func Scheme(ctx context.Context, registry string, insecure bool) string {
	if insecure {
		return "http"
	}
	if !IsLoopback(registry) {
		return "https"
	}
	addr := registry
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "443")
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{InsecureSkipVerify: true}} // only asks whether TLS is spoken; the real request verifies
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
		return "https"
	}
	var plain tls.RecordHeaderError
	if errors.As(err, &plain) {
		return "http"
	}
	return "https"
}

// TLSRefused reports whether err is a certificate the client did not
// accept.
func TLSRefused(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// IsLoopback reports whether a registry host[:port] is on this machine's
// loopback.
func IsLoopback(registry string) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = registry
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Save stores the credentials for registry in the Docker config, keeping
// everything else in the file as it was.
func Save(registry, user, password string) (string, error) {
	path, err := ConfigPath()
	if err != nil {
		return "", err
	}
	doc := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &doc); err != nil {
			return "", fmt.Errorf("reading %s: %w (fix or remove the file)", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := doc["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return "", fmt.Errorf("reading the auths in %s: %w", path, err)
		}
	}
	entry, _ := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))})
	auths[registry] = entry
	doc["auths"], _ = json.Marshal(auths)
	out, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := fsutil.WriteFileAtomic(path, append(out, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// Keychain finds credentials for pushes and pulls: first the
// SLIPWAY_REGISTRY_USERNAME and SLIPWAY_REGISTRY_PASSWORD variables (how a
// pipeline passes its secret), then the Docker config.
func Keychain() authn.Keychain {
	return authn.NewMultiKeychain(envKeychain{}, authn.DefaultKeychain)
}

type envKeychain struct{}

// EnvCredentials returns SLIPWAY_REGISTRY_USERNAME and
// SLIPWAY_REGISTRY_PASSWORD when both are set.
func EnvCredentials() (user, password string) {
	user, password = os.Getenv("SLIPWAY_REGISTRY_USERNAME"), os.Getenv("SLIPWAY_REGISTRY_PASSWORD")
	if user == "" || password == "" {
		return "", ""
	}
	return user, password
}

func (envKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	user, pass := EnvCredentials()
	if user == "" {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: user, Password: pass}, nil
}

// Static returns a keychain that answers every registry with one user's
// credentials.
func Static(user, password string) authn.Keychain {
	return staticKeychain{&authn.Basic{Username: user, Password: password}}
}

type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }
