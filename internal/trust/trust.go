// Package trust is the platform's TLS: its own CA (not the cluster's: the
// cluster's CA stays with the cluster and is reset with it), the serving
// certificate of the registry and the git server, and the bundle every
// client of the platform is given to trust them. The files live in one
// directory of the state directory:
//
//	ca.crt, ca.key         the platform CA
//	serving.crt/.key       the registry's and git server's certificate
//	bundle.pem             the system's CAs followed by ca.crt
//
// A client learns to trust the platform from the bundle: programs that
// read SSL_CERT_FILE (Go's) or GIT_SSL_CAINFO (git) get it through the
// environment (Environ, Adopt); Go code in the platform uses Pool.
package trust

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/pki"
)

// Files are the TLS files in one directory.
type Files struct{ Dir string }

func (f Files) CA() string     { return filepath.Join(f.Dir, "ca.crt") }
func (f Files) Bundle() string { return filepath.Join(f.Dir, "bundle.pem") }
func (f Files) Cert() string   { return filepath.Join(f.Dir, "serving.crt") }
func (f Files) Key() string    { return filepath.Join(f.Dir, "serving.key") }

// Exists reports whether the platform has made its CA.
func (f Files) Exists() bool {
	_, err := os.Stat(f.CA())
	return err == nil
}

// Ensure makes the CA once, a serving certificate that names every host
// (made again when one is missing, so a new node address is covered), and
// the bundle (written at every start: the system's CAs may have changed).
func Ensure(dir string, hosts []string) (Files, error) {
	f := Files{Dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, err
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"), "slipway-platform-ca")
	if err != nil {
		return f, fmt.Errorf("the platform CA: %w (delete %s to make a new one; every client must then trust it again)", err, dir)
	}
	spec := pki.Spec{Name: "serving", CN: "slipway", Server: true}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(spec.IPs, ip.Equal) {
				spec.IPs = append(spec.IPs, ip)
			}
		} else if h != "" && !slices.Contains(spec.DNS, h) {
			spec.DNS = append(spec.DNS, h)
		}
	}
	if !ca.Covers(dir, spec) {
		if err := ca.Issue(dir, spec); err != nil {
			return f, fmt.Errorf("issuing the platform's serving certificate: %w", err)
		}
	}
	if err := fsutil.WriteFileAtomic(f.Bundle(), bundle(ca.PEM), 0o644); err != nil {
		return f, err
	}
	return f, nil
}

// ServerConfig serves the serving certificate, TLS 1.2 at least.
func (f Files) ServerConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert(), f.Key())
	if err != nil {
		return nil, fmt.Errorf("loading the platform's serving certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Pool is the system's CAs and the platform's.
func (f Files) Pool() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	data, err := os.ReadFile(f.CA())
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no certificate", f.CA())
	}
	return pool, nil
}

// Client is an HTTP client that trusts the platform.
func (f Files) Client(timeout time.Duration) (*http.Client, error) {
	pool, err := f.Pool()
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: timeout, Transport: t}, nil
}

// Environ is what a child process needs to trust the platform: Go
// programs read SSL_CERT_FILE, git GIT_SSL_CAINFO (curl does not read
// SSL_CERT_FILE).
func (f Files) Environ() []string {
	return []string{"SSL_CERT_FILE=" + f.Bundle(), "GIT_SSL_CAINFO=" + f.Bundle()}
}

// Adopt makes this process and its children trust the platform: it
// points SSL_CERT_FILE and GIT_SSL_CAINFO at the bundle, unless the person
// chose a bundle of their own there (anything but the system's, which
// the platform's bundle holds anyway): then that choice stands, and
// `slipway ca` tells what to add to it. Go reads SSL_CERT_FILE once, at
// the first TLS connection, so Adopt must come before any.
func Adopt(f Files) error {
	if _, err := os.Stat(f.Bundle()); err != nil || !f.Exists() {
		return nil
	}
	for _, env := range []string{"SSL_CERT_FILE", "GIT_SSL_CAINFO"} {
		if v := os.Getenv(env); v == "" || slices.Contains(systemBundles, v) {
			if err := os.Setenv(env, f.Bundle()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Explain turns a failed TLS handshake with the platform into what to do.
func Explain(err error, server string) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w\n%s's certificate is signed by the platform's CA, which this client does not trust: point it at the CA (`slipway ca` prints it; `slipway ca --bundle` prints the file to give SSL_CERT_FILE, GIT_SSL_CAINFO, helm --ca-file or skopeo)", err, server)
	case errors.As(err, &hostname):
		return fmt.Errorf("%w\n%s's certificate does not name this address: use the address `slipway status` shows (or restart `slipway up`, which covers new addresses)", err, server)
	}
	return err
}

// Serve wraps a listener in TLS, unless plainOnLoopback asks for plain
// HTTP and the listener is on a loopback address. It returns the scheme
// clients must use.
func Serve(ln net.Listener, cfg *tls.Config, plainOnLoopback bool) (net.Listener, string) {
	if cfg == nil {
		return ln, "http"
	}
	if plainOnLoopback {
		if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			return ln, "http"
		}
	}
	return tls.NewListener(ln, cfg), "https"
}

// bundle is the system's trusted certificates followed by extra ones: the
// file to hand a program (SSL_CERT_FILE, GIT_SSL_CAINFO) that must trust
// both the world and this machine's CA.
func bundle(extra ...[]byte) []byte {
	var b bytes.Buffer
	for _, f := range systemBundles {
		if data, err := os.ReadFile(f); err == nil {
			b.Write(data)
			if !bytes.HasSuffix(data, []byte("\n")) {
				b.WriteByte('\n')
			}
			break
		}
	}
	for _, e := range extra {
		b.Write(e)
	}
	return b.Bytes()
}

// systemBundles are where Linux distributions keep their CA bundle, in
// the order Go's crypto/x509 looks for them.
var systemBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}
