package registry_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"

	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
	"github.com/slipway-dev/slipway/internal/testutil"
)

// TestSkopeoCopiesInAndOut uses Debian's skopeo, a client that shares no
// code with Slipway, logged in the Docker way.
func TestSkopeoCopiesInAndOut(t *testing.T) {
	skopeo := testutil.NeedCommand(t, "skopeo", "skopeo")
	reg := registrytest.Start(t)
	dockerConfig := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dockerConfig)
	if err := credentials.Check(context.Background(), reg.Addr, "dev1", registrytest.Dev1Password, false); err != nil {
		t.Fatal(err)
	}
	authFile, err := credentials.Save(reg.Addr, "dev1", registrytest.Dev1Password)
	if err != nil {
		t.Fatal(err)
	}

	img, _ := random.Image(4096, 3)
	src := filepath.Join(t.TempDir(), "src")
	lp, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(skopeo, append([]string{"--insecure-policy"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	dest := "docker://" + reg.Addr + "/dev1/skopeo:v1"
	run("copy", "--authfile", authFile, "--dest-tls-verify=false", "--preserve-digests", "oci:"+src, dest)

	// The "dir:" format keeps the manifest byte for byte.
	out := filepath.Join(t.TempDir(), "out")
	run("copy", "--authfile", authFile, "--src-tls-verify=false", dest, "dir:"+out)
	manifest, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(manifest).String(); got != want.String() {
		t.Fatalf("round trip changed the image: pushed %s, pulled %s", want, got)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		if _, err := os.Stat(filepath.Join(out, d.Hex)); err != nil {
			t.Fatalf("layer %s not copied out: %v", d, err)
		}
	}

	// skopeo, too, is refused outside the user's prefix.
	cmd := exec.Command(skopeo, "--insecure-policy", "copy", "--authfile", authFile, "--dest-tls-verify=false", "oci:"+src, "docker://"+reg.Addr+"/dev2/skopeo:v1")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("skopeo pushed under dev2/ as dev1:\n%s", out)
	}
}
