package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/testutil"
)

func TestDebianUpstreamVersion(t *testing.T) {
	for in, want := range map[string]string{"15.18-0+deb12u1": "15.18", "17.12-1": "17.12", "1:2.3-4": "2.3", "17.0\n": "17.0"} {
		if got := debianUpstreamVersion(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// The PostgreSQL image holds what CloudNativePG runs in it: the server's
// programs where PATH finds them, the postgres user as UID 26, and no JIT
// compiler (left out for size). It is made with mmdebstrap from Debian's
// packages, so this test needs root and the Debian mirror; the root
// filesystem is kept in the user's cache, as `up` keeps it.
func TestPostgresImageHoldsWhatTheOperatorRuns(t *testing.T) {
	testutil.Slow(t)
	testutil.NeedRoot(t, "mmdebstrap")
	testutil.NeedCommand(t, "mmdebstrap", "mmdebstrap")
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	img, err := BuildPostgresImage(context.Background(), PostgresImageOptions{CacheDir: filepath.Join(cache, "slipway"), Major: 15})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.Version, "15.") {
		t.Errorf("version %q", img.Version)
	}
	im, err := img.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	one, err := img.Index.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := one.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "26" || !strings.Contains(strings.Join(cf.Config.Env, " "), "PATH=/usr/lib/postgresql/15/bin:") {
		t.Errorf("user %q, env %v", cf.Config.User, cf.Config.Env)
	}
	layers, err := one.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]bool{}
	var passwd string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		files[name] = true
		if name == "etc/passwd" {
			data, _ := io.ReadAll(tr)
			passwd = string(data)
		}
	}
	for _, p := range []string{"initdb", "postgres", "pg_ctl", "pg_controldata", "pg_basebackup", "pg_config", "pg_upgrade"} {
		if !files["usr/lib/postgresql/15/bin/"+p] {
			t.Errorf("no %s in /usr/lib/postgresql/15/bin", p)
		}
	}
	if !strings.Contains(passwd, fmt.Sprintf("\npostgres:x:%d:%d:", PostgresUID, PostgresUID)) && !strings.HasPrefix(passwd, "postgres:x:26:26:") {
		t.Errorf("/etc/passwd has no postgres user with UID 26:\n%s", passwd)
	}
	for name := range files {
		if strings.Contains(name, "libLLVM") || strings.Contains(name, "llvmjit") || strings.HasPrefix(name, "var/lib/apt/lists/") && !strings.HasSuffix(name, "/") && name != "var/lib/apt/lists/lock" {
			t.Errorf("the image holds %s", name)
		}
	}
}
