package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slipway-dev/slipway/internal/testutil"
)

// TestRegistryAndGitSpeakTLS: the registry and the git server serve HTTPS
// with the platform's CA; standard clients given the CA (skopeo, git)
// work with verification on; a client without it, and plain HTTP, get
// nothing; the CA outlives a restart; plain HTTP on loopback only when
// asked for.
func TestRegistryAndGitSpeakTLS(t *testing.T) {
	skopeo := testutil.NeedCommand(t, "skopeo", "skopeo")
	e := newEnv(t)
	regAddr, gitAddr := freeAddr(t), freeAddr(t)
	e.vars = append(e.vars, "SLIPWAY_GIT_ADDR="+gitAddr, "SLIPWAY_REGISTRY_ADDR="+regAddr)
	up := e.startUp()

	caPEM := e.mustRun("", "ca").stdout
	if path := strings.TrimSpace(e.mustRun("", "ca", "--path").stdout); readFile(t, path) != caPEM {
		t.Fatalf("slipway ca and the file of slipway ca --path differ")
	}
	block, _ := pem.Decode([]byte(caPEM))
	if block == nil {
		t.Fatalf("slipway ca printed no PEM certificate:\n%s", caPEM)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("slipway ca: not a CA certificate (%v)", err)
	}

	// With the CA: both servers answer, under every loopback name.
	trusted := e.client()
	for _, u := range []string{"https://" + regAddr + "/v2/", "https://" + gitAddr + "/healthz",
		"https://localhost:" + strings.Split(regAddr, ":")[1] + "/v2/"} {
		resp, err := trusted.Get(u)
		if err != nil {
			t.Fatalf("GET %s with the CA: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET %s: %s", u, resp.Status)
		}
	}

	// Without it: the handshake fails before a password could be sent.
	untrusted := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	_, err = untrusted.Get("https://" + regAddr + "/v2/")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("a client without the CA: %v, want an unknown authority", err)
	}
	// Plain HTTP, credentials and all, is answered with a 400 and nothing
	// of the registry's (no challenge, no data).
	for _, addr := range []string{regAddr, gitAddr} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
		req.SetBasicAuth("admin", "whatever")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("plain HTTP to %s: %v", addr, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Www-Authenticate") != "" || !strings.Contains(string(body), "HTTPS") {
			t.Fatalf("plain HTTP to %s: %s %v %q", addr, resp.Status, resp.Header, body)
		}
	}

	// slipway's own commands trust it without being told.
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	dev1 := strings.TrimSpace(e.mustRun("", "user", "set", "dev1", "--push", "dev1/").stdout)
	e.mustRun(dev1, "login", regAddr, "-u", "dev1", "--password-stdin")

	// skopeo, with verification on, given the CA in a directory of its own.
	certs := t.TempDir()
	writeFile(t, filepath.Join(certs, "ca.crt"), caPEM)
	img, _ := random.Image(2048, 2)
	src := filepath.Join(t.TempDir(), "src")
	lp, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	authFile := filepath.Join(e.home, "docker", "config.json")
	copyTo := func(certDir string) ([]byte, error) {
		args := []string{"--insecure-policy", "copy", "--authfile", authFile}
		if certDir != "" {
			args = append(args, "--dest-cert-dir", certDir)
		}
		return exec.Command(skopeo, append(args, "oci:"+src, "docker://"+regAddr+"/dev1/tls:v1")...).CombinedOutput()
	}
	if out, err := copyTo(""); err == nil || !strings.Contains(string(out), "certificate") {
		t.Fatalf("skopeo without the CA: %v\n%s", err, out)
	}
	if out, err := copyTo(certs); err != nil {
		t.Fatalf("skopeo with the CA: %v\n%s", err, out)
	}

	// git: refused without the CA, clones and pushes with it.
	e.mustRun("", "repo", "create", "dev1/tls")
	url := fmt.Sprintf("https://admin:%s@%s/dev1/tls.git", admin, gitAddr)
	if out, err := gitCommand("clone", "--quiet", url, filepath.Join(t.TempDir(), "x")).CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate") {
		t.Fatalf("git without the CA: %v\n%s", err, out)
	}
	clone := filepath.Join(t.TempDir(), "tls")
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), url, clone)
	writeFile(t, filepath.Join(clone, "README"), "over TLS\n")
	gitPush(t, clone, "over TLS")

	// A restart keeps the CA, so every client's trust stays valid.
	e.mustRun("", "down")
	up.wait(t)
	up = e.startUp()
	if again := e.mustRun("", "ca").stdout; again != caPEM {
		t.Fatalf("the CA changed across a restart")
	}
	if out, err := copyTo(certs); err != nil {
		t.Fatalf("skopeo with the CA after a restart: %v\n%s", err, out)
	}
	e.mustRun("", "down")
	up.wait(t)

	// Plain HTTP on loopback only when asked for.
	e.vars = append(e.vars, "SLIPWAY_PLAIN_HTTP_ON_LOOPBACK=true")
	e.startUp()
	resp, err := http.Get("http://" + regAddr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("plain HTTP when asked for: %s", resp.Status)
	}
	if status := e.mustRun("", "status").stdout; !strings.Contains(status, "http://"+regAddr) || !strings.Contains(status, "http://"+gitAddr) {
		t.Fatalf("status does not show the plain addresses:\n%s", status)
	}
	e.mustRun(dev1, "login", regAddr, "-u", "dev1", "--password-stdin")
	e.mustRun("", "build", "../../internal/build/testdata/hello", "--image", "dev1/hello", "--tag", "plain", "--platform", "linux/amd64")
}
