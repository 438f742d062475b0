package build_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
	"github.com/slipway-dev/slipway/internal/testutil"
)

var bothPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

func buildHello(t *testing.T, modify ...func(*build.Options)) *build.Image {
	t.Helper()
	opts := build.Options{Dir: "testdata/hello", Platforms: bothPlatforms, CacheDir: t.TempDir()}
	for _, m := range modify {
		m(&opts)
	}
	img, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestReproducibleDigest(t *testing.T) {
	testutil.Slow(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	first := buildHello(t)
	second := buildHello(t)
	if first.Digest != second.Digest {
		t.Fatalf("same source, two digests: %s and %s", first.Digest, second.Digest)
	}

	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dated := buildHello(t)
	if dated.Digest == first.Digest {
		t.Fatal("SOURCE_DATE_EPOCH did not change the image")
	}
	again := buildHello(t)
	if again.Digest != dated.Digest {
		t.Fatal("same SOURCE_DATE_EPOCH, two digests")
	}
	img, err := dated.Index.Image(mustManifests(t, dated.Index)[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if got := cf.Created.Unix(); got != 1700000000 {
		t.Fatalf("created = %d, want SOURCE_DATE_EPOCH", got)
	}
}

func mustManifests(t *testing.T, idx v1.ImageIndex) []v1.Descriptor {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}

func TestImageShape(t *testing.T) {
	testutil.Slow(t)
	img := buildHello(t, func(o *build.Options) {
		o.Revision, o.Source = "abc123", "https://git.example/dev1/hello"
		o.Env = []string{"GREETING=hi"}
		o.Ports = []int{8080}
	})
	idxManifest, _ := img.Index.IndexManifest()
	if idxManifest.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("index media type %s", idxManifest.MediaType)
	}
	if idxManifest.Annotations["org.opencontainers.image.revision"] != "abc123" ||
		idxManifest.Annotations["org.opencontainers.image.source"] != "https://git.example/dev1/hello" {
		t.Fatalf("index annotations: %v", idxManifest.Annotations)
	}
	var archs []string
	for _, d := range idxManifest.Manifests {
		archs = append(archs, d.Platform.OS+"/"+d.Platform.Architecture)
		pimg, err := img.Index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := pimg.ConfigFile()
		if cf.Architecture != d.Platform.Architecture {
			t.Fatalf("config says %s in the %s slot", cf.Architecture, d.Platform.Architecture)
		}
		if got := strings.Join(cf.Config.Entrypoint, " "); got != "/app/hello" {
			t.Fatalf("entrypoint %q", got)
		}
		if cf.Config.User != "65532:65532" {
			t.Fatalf("user %q, want the non-root user", cf.Config.User)
		}
		if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok {
			t.Fatalf("exposed ports %v", cf.Config.ExposedPorts)
		}
		if !contains(cf.Config.Env, "GREETING=hi") || !contains(cf.Config.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") {
			t.Fatalf("env %v", cf.Config.Env)
		}
		m, _ := pimg.Manifest()
		if m.Annotations["org.opencontainers.image.revision"] != "abc123" {
			t.Fatalf("manifest annotations %v", m.Annotations)
		}
	}
	if strings.Join(archs, ",") != "linux/amd64,linux/arm64" {
		t.Fatalf("platforms %v", archs)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	noModule := t.TempDir()
	if err := os.WriteFile(filepath.Join(noModule, "main.go"), []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opts build.Options
		want []string
	}{
		{"not a module", build.Options{Dir: noModule}, []string{"not in a Go module", "go mod init"}},
		{"compile error", build.Options{Dir: "testdata/broken"}, []string{"main.go:4", "undefined: undefinedFunction"}},
		{"not a main package", build.Options{Dir: "testdata/notmain"}, []string{"not a main package"}},
		{"missing directory", build.Options{Dir: "testdata/nothing-here"}, []string{"is not a directory"}},
		{"bad env", build.Options{Dir: "testdata/hello", Env: []string{"NOEQUALS"}}, []string{"KEY=VALUE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.CacheDir = t.TempDir()
			_, err := build.Build(ctx, tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	var be *build.BuildError
	_, err := build.Build(ctx, build.Options{Dir: "testdata/broken", CacheDir: t.TempDir()})
	if !errors.As(err, &be) {
		t.Fatalf("a compile failure should be a *BuildError, got %T", err)
	}
}

// countingTransport counts blob upload sessions, to see which layers a
// push really sent.
type countingTransport struct {
	uploads atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
		c.uploads.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestPublishByDigestSkipsExistingLayers(t *testing.T) {
	testutil.Slow(t)
	reg := registrytest.Start(t)
	kc := registrytest.Keychain("dev1", registrytest.Dev1Password)
	img := buildHello(t)
	res, err := build.Publish(context.Background(), img, build.PublishOptions{
		Repository: reg.Addr + "/dev1/hello",
		Tags:       []string{"v1"},
		Keychain:   kc,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image != reg.Addr+"/dev1/hello@"+img.Digest.String() {
		t.Fatalf("printed reference %q is not pinned by digest", res.Image)
	}
	tag, _ := name.NewTag(reg.Addr + "/dev1/hello:v1")
	desc, err := remote.Head(tag, remote.WithAuthFromKeychain(kc))
	if err != nil || desc.Digest != img.Digest {
		t.Fatalf("tag v1: %v %v", desc, err)
	}

	// A new version shares the base layer, which must not be sent again.
	counter := &countingTransport{}
	next := buildHello(t, func(o *build.Options) { o.Env = []string{"VERSION=2"}; o.Revision = "def" })
	withCounter := authn.NewMultiKeychain(kc)
	_, err = build.Publish(context.Background(), next, build.PublishOptions{
		Repository: reg.Addr + "/dev1/hello",
		Keychain:   withCounter,
		Transport:  counter,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two platforms, each with a new config blob and an unchanged base and
	// app layer: only the configs are uploaded.
	if got := counter.uploads.Load(); got != 2 {
		t.Fatalf("uploaded %d blobs, want 2 (the new configs only)", got)
	}
}

func TestPublishErrorsSayWhatToDo(t *testing.T) {
	testutil.Slow(t)
	reg := registrytest.Start(t)
	img := buildHello(t)
	publish := func(repo string, kc authn.Keychain) error {
		_, err := build.Publish(context.Background(), img, build.PublishOptions{Repository: repo, Keychain: kc, Tags: []string{"v1"}})
		return err
	}
	err := publish(fmt.Sprintf("127.0.0.1:%d/dev1/hello", testutil.FreePort(t)), registrytest.Keychain("dev1", "x"))
	if err == nil || !strings.Contains(err.Error(), "cannot reach registry") {
		t.Errorf("unreachable registry: %v", err)
	}
	err = publish(reg.Addr+"/dev1/hello", registrytest.Keychain("dev1", "wrong"))
	if err == nil || !strings.Contains(err.Error(), "slipway login") {
		t.Errorf("wrong password: %v", err)
	}
	err = publish(reg.Addr+"/dev2/hello", registrytest.Keychain("dev1", registrytest.Dev1Password))
	if err == nil || !strings.Contains(err.Error(), "may push only under dev1/") {
		t.Errorf("other team's prefix: %v", err)
	}
	tag, _ := name.NewTag(reg.Addr + "/dev2/hello:v1")
	if _, err := remote.Head(tag, remote.WithAuthFromKeychain(registrytest.Keychain("admin", registrytest.AdminPassword))); err == nil {
		t.Error("a refused push left a tag")
	}
	if _, err := build.ParseRepository(reg.Addr+"/dev1/hello:v1", false); err == nil {
		t.Error("a tag in the repository should be refused")
	}
}

func TestStaticSite(t *testing.T) {
	testutil.Slow(t)
	img, err := build.Build(context.Background(), build.Options{Dir: "testdata/site", Platforms: bothPlatforms[:1], CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pimg, err := img.Index.Image(mustManifests(t, img.Index)[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := pimg.ConfigFile()
	if cf.Config.Entrypoint[0] != "/app/static-server" {
		t.Fatalf("entrypoint %v", cf.Config.Entrypoint)
	}
	if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Fatal("a static site listens on 8080 by default")
	}
	files := testutil.ImageFiles(t, pimg)
	for _, f := range []string{"srv/www/index.html", "srv/www/css/site.css", "app/static-server", "etc/ssl/certs/ca-certificates.crt", "usr/share/zoneinfo/Europe/Amsterdam"} {
		if _, ok := files[f]; !ok {
			t.Errorf("image lacks %s", f)
		}
	}
}

// TestImageRunsUnderContainerd pulls a built image into Debian's
// containerd, runs it with runc, and talks to its HTTP server.
func TestImageRunsUnderContainerd(t *testing.T) {
	testutil.Slow(t)
	ctd := testutil.StartContainerd(t)
	reg := registrytest.Start(t)
	kc := registrytest.Keychain("dev1", registrytest.Dev1Password)
	for _, tc := range []struct{ name, dir, want string }{
		{"go", "testdata/hello", "hello from slipway uid=65532 tz=true certs="},
		{"static", "testdata/site", "served by slipway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := build.Build(context.Background(), build.Options{Dir: tc.dir, Platforms: []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			res, err := build.Publish(context.Background(), img, build.PublishOptions{Repository: reg.Addr + "/dev1/" + tc.name, Keychain: kc})
			if err != nil {
				t.Fatal(err)
			}
			ctd.Ctr("images", "pull", "--plain-http", "--user", "dev1:"+registrytest.Dev1Password, res.Image)
			port := testutil.FreePort(t)
			ctd.RunDetached(res.Image, "run-"+tc.name, fmt.Sprintf("PORT=%d", port))
			body := testutil.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60e9)
			if !strings.Contains(body, tc.want) {
				t.Fatalf("container answered %q, want %q", body, tc.want)
			}
			t.Logf("container answered: %s", strings.TrimSpace(body))

			// The http-check image, which charts' test pods run, passes
			// against the running app and fails against a closed port.
			check, err := build.HTTPCheckImage(context.Background(), t.TempDir(), []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}})
			if err != nil {
				t.Fatal(err)
			}
			checkRes, err := build.Publish(context.Background(), check, build.PublishOptions{Repository: reg.Addr + "/dev1/http-check", Keychain: kc})
			if err != nil {
				t.Fatal(err)
			}
			ctd.Ctr("images", "pull", "--plain-http", "--user", "dev1:"+registrytest.Dev1Password, checkRes.Image)
			// ctr replaces the whole command line, entrypoint included,
			// and exits with the container's status, so Ctr fails the
			// test when the check does. What the check printed is read
			// when there is any: ctr run --rm may lose the output of a
			// container that ends at once (it once came back empty).
			out := ctd.Ctr("run", "--rm", "--net-host", checkRes.Image, "check-"+tc.name, "/app/http-check", fmt.Sprintf("http://127.0.0.1:%d/", port))
			if out != "" && !strings.Contains(out, "ok   http://127.0.0.1") {
				t.Fatalf("http-check against the app: %s", out)
			}
			closed := testutil.FreePort(t)
			if out, err := ctd.CtrMayFail("run", "--rm", "--net-host", checkRes.Image, "check-closed-"+tc.name, "/app/http-check", fmt.Sprintf("http://127.0.0.1:%d/", closed)); err == nil {
				t.Fatalf("http-check against a closed port passed: %s", out)
			}
		})
	}
}

// TestBinaryImageRemembersItsLayer: the second image of the same program
// file comes from the layer cache by the file's identity and is the same
// image; a program rebuilt into the same path makes a new one.
func TestBinaryImageRemembersItsLayer(t *testing.T) {
	cache := t.TempDir()
	bin := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho one\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	first, err := build.BinaryImage(context.Background(), cache, bin, "prog", p)
	if err != nil {
		t.Fatal(err)
	}
	memos, _ := filepath.Glob(filepath.Join(cache, "layers", "programs", "*"))
	if len(memos) != 1 {
		t.Fatalf("remembered layers: %v, want one", memos)
	}
	again, err := build.BinaryImage(context.Background(), cache, bin, "prog", p)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != first.Digest {
		t.Fatalf("same program, two digests: %s and %s", first.Digest, again.Digest)
	}
	// The memo holds the layer's DiffID and digest. One from an older
	// slipway, with the DiffID alone, still serves, and gains the digest.
	memo, _ := os.ReadFile(memos[0])
	diffID, digest, ok := strings.Cut(string(memo), " ")
	if !ok || len(diffID) != 64 || len(digest) != 64 {
		t.Fatalf("memo %q, want a DiffID and a digest", memo)
	}
	if err := os.WriteFile(memos[0], []byte(diffID), 0o644); err != nil {
		t.Fatal(err)
	}
	if older, err := build.BinaryImage(context.Background(), cache, bin, "prog", p); err != nil || older.Digest != first.Digest {
		t.Fatalf("from an older memo: %v, %v; want %s", older.Digest, err, first.Digest)
	}
	if upgraded, _ := os.ReadFile(memos[0]); string(upgraded) != string(memo) {
		t.Fatalf("older memo became %q, want %q", upgraded, memo)
	}
	// A new build is written to a temporary file and renamed into place,
	// as the component cache does: a new file with other content.
	tmp := bin + ".new"
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\necho two\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	changed, err := build.BinaryImage(context.Background(), cache, bin, "prog", p)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Digest == first.Digest {
		t.Fatal("the rebuilt program got the old image")
	}
	// The remembered layer is only a shortcut: without the compressed
	// layer it points at, the image is built again, and is the same.
	gz, _ := filepath.Glob(filepath.Join(cache, "layers", "*.tar.gz"))
	for _, f := range gz {
		os.Remove(f)
	}
	rebuilt, err := build.BinaryImage(context.Background(), cache, bin, "prog", p)
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt.Digest != changed.Digest {
		t.Fatalf("rebuilt without the layer cache: %s, want %s", rebuilt.Digest, changed.Digest)
	}
}
