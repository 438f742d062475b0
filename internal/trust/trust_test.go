package trust

import (
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/pki"
)

func TestEnsureKeepsTheCAAndCoversNewNames(t *testing.T) {
	dir := t.TempDir()
	f, err := Ensure(dir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	ca := readFile(t, f.CA())
	serving := readFile(t, f.Cert())

	// Again with the same names: nothing new.
	if _, err := Ensure(dir, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if readFile(t, f.Cert()) != serving || readFile(t, f.CA()) != ca {
		t.Fatal("a second Ensure with the same names changed the certificates")
	}

	// A new node address: a new serving certificate, the same CA.
	if _, err := Ensure(dir, []string{"127.0.0.1", "localhost", "10.244.0.1"}); err != nil {
		t.Fatal(err)
	}
	if readFile(t, f.CA()) != ca {
		t.Fatal("the CA changed")
	}
	cert, err := pki.ParseCert([]byte(readFile(t, f.Cert())))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := f.Pool()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost", "10.244.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("the serving certificate for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "10.244.0.2", Roots: pool}); err == nil {
		t.Error("the serving certificate is valid for an address it was not made for")
	}

	// The bundle holds the CA after the system's.
	if !strings.HasSuffix(readFile(t, f.Bundle()), ca) {
		t.Error("the bundle does not end with the platform's CA")
	}
	if info, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v %v", info.Mode(), err)
	}
}

func TestAdoptLeavesABundleOfThePersonsOwn(t *testing.T) {
	f, err := Ensure(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", "")
	t.Setenv("GIT_SSL_CAINFO", systemBundles[0])
	if err := Adopt(f); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SSL_CERT_FILE") != f.Bundle() || os.Getenv("GIT_SSL_CAINFO") != f.Bundle() {
		t.Fatalf("unset or the system's: SSL_CERT_FILE=%s GIT_SSL_CAINFO=%s", os.Getenv("SSL_CERT_FILE"), os.Getenv("GIT_SSL_CAINFO"))
	}
	t.Setenv("SSL_CERT_FILE", "/etc/corp/roots.pem")
	if err := Adopt(f); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SSL_CERT_FILE") != "/etc/corp/roots.pem" {
		t.Fatal("Adopt replaced a bundle the person chose")
	}
	// Nothing to adopt before the platform made its CA.
	t.Setenv("SSL_CERT_FILE", "")
	if err := Adopt(Files{Dir: t.TempDir()}); err != nil || os.Getenv("SSL_CERT_FILE") != "" {
		t.Fatalf("Adopt without a CA: %v %q", err, os.Getenv("SSL_CERT_FILE"))
	}
}

func TestServeIsPlainOnLoopbackOnlyWhenAsked(t *testing.T) {
	f, err := Ensure(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		plain bool
		want  string
	}{{false, "https"}, {true, "http"}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, scheme := Serve(ln, cfg, c.plain)
		if scheme != c.want {
			t.Errorf("plainOnLoopback=%v: %s, want %s", c.plain, scheme, c.want)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
		go srv.Serve(ln)
		client, err := f.Client(0)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Get(scheme + "://" + ln.Addr().String() + "/")
		if err != nil {
			t.Errorf("%s: %v", scheme, err)
		} else {
			resp.Body.Close()
		}
		srv.Close()
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
