package chart_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	helmregistry "helm.sh/helm/v4/pkg/registry"

	"github.com/slipway-dev/slipway/internal/chart"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func dev1(reg *registrytest.Registry) chart.RegistryOptions {
	return chart.RegistryOptions{Username: "dev1", Password: registrytest.Dev1Password}
}

// pushAndShow pushes a packaged chart to dev1/charts as dev1 and reads
// its newest version back.
func pushAndShow(t *testing.T, reg *registrytest.Registry, pkg *chart.Packaged) *chart.Shown {
	t.Helper()
	if _, err := chart.Push(pkg, "oci://"+reg.Addr+"/dev1/charts", false, dev1(reg)); err != nil {
		t.Fatal(err)
	}
	shown, err := chart.Show("oci://"+reg.Addr+"/dev1/charts/"+pkg.Name, "", dev1(reg))
	if err != nil {
		t.Fatal(err)
	}
	return shown
}

// render renders a chart the way helm install would, with Helm's engine.
func render(t *testing.T, ch *chartv2.Chart) map[string]string {
	t.Helper()
	values, err := commonutil.ToRenderValues(ch, map[string]any{}, common.ReleaseOptions{Name: "web", Namespace: "dev1-staging", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, values)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestScaffoldPushPullRender(t *testing.T) {
	reg := registrytest.Start(t)
	dir := filepath.Join(t.TempDir(), "hello")
	if _, err := chart.Init(chart.InitOptions{Dir: dir, Image: reg.Addr + "/dev1/hello", CheckImage: reg.Addr + "/slipway/http-check:latest"}); err != nil {
		t.Fatal(err)
	}
	image := reg.Addr + "/dev1/hello@" + testDigest
	pkg, err := chart.Package(context.Background(), chart.PackageOptions{Dir: dir, Version: "0.2.0", AppVersion: "1.4.0", Image: image})
	if err != nil {
		t.Fatal(err)
	}
	res, err := chart.Push(pkg, "oci://"+reg.Addr+"/dev1/charts", false, dev1(reg))
	if err != nil {
		t.Fatal(err)
	}
	if res.Chart != "oci://"+reg.Addr+"/dev1/charts/hello:0.2.0" || !strings.HasPrefix(res.Digest, "sha256:") {
		t.Fatalf("push result %+v", res)
	}

	// The manifest is what Flux's source-controller and ACR expect.
	ref, _ := name.ParseReference(reg.Addr + "/dev1/charts/hello:0.2.0")
	img, err := remote.Image(ref, remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password)))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if string(m.Config.MediaType) != helmregistry.ConfigMediaType {
		t.Fatalf("config media type %s", m.Config.MediaType)
	}
	if len(m.Layers) != 1 || string(m.Layers[0].MediaType) != helmregistry.ChartLayerMediaType {
		t.Fatalf("layers %+v", m.Layers)
	}

	// Pulled and loaded with Helm's registry client and loader, rendered
	// with Helm's engine.
	shown, err := chart.Show("oci://"+reg.Addr+"/dev1/charts/hello", "0.2.0", dev1(reg))
	if err != nil {
		t.Fatal(err)
	}
	if shown.AppVersion != "1.4.0" || shown.Image != image || shown.Digest != res.Digest {
		t.Fatalf("shown %+v", shown)
	}
	out := render(t, shown.Loaded)
	deploy := out["hello/templates/deployment.yaml"]
	for _, want := range []string{
		`image: "` + image + `"`,
		"runAsNonRoot: true",
		"readOnlyRootFilesystem: true",
		"allowPrivilegeEscalation: false",
		`drop: ["ALL"]`,
		"type: RuntimeDefault",
		"readinessProbe:",
		"livenessProbe:",
		"memory: 128Mi",
	} {
		if !strings.Contains(deploy, want) {
			t.Errorf("deployment lacks %q:\n%s", want, deploy)
		}
	}
	if !strings.Contains(out["hello/templates/tests/http-check.yaml"], "helm.sh/hook: test") {
		t.Error("no helm test hook")
	}
	if !strings.Contains(out["hello/templates/serviceaccount.yaml"], "kind: ServiceAccount") || !strings.Contains(out["hello/templates/service.yaml"], "kind: Service") {
		t.Error("ServiceAccount or Service missing")
	}

	// The same version again is refused, and the stored one is untouched.
	again, _ := chart.Package(context.Background(), chart.PackageOptions{Dir: dir, Version: "0.2.0", AppVersion: "9.9.9", Image: image})
	if _, err := chart.Push(again, "oci://"+reg.Addr+"/dev1/charts", false, dev1(reg)); !errors.Is(err, chart.ErrVersionExists) {
		t.Fatalf("pushing an existing version: %v", err)
	}
	if s, _ := chart.Show("oci://"+reg.Addr+"/dev1/charts/hello", "0.2.0", dev1(reg)); s.AppVersion != "1.4.0" {
		t.Fatal("a refused push changed the stored chart")
	}
	if _, err := chart.Push(again, "oci://"+reg.Addr+"/dev1/charts", true, dev1(reg)); err != nil {
		t.Fatalf("forced push: %v", err)
	}
}

// The `helm test` pod pulls Slipway's http-check from the registry the
// app's image is on, whatever registry the chart's values name: the same
// chart then runs where the line pushes to another registry. Another test
// image is left as written.
func TestCheckImageFollowsTheAppsRegistry(t *testing.T) {
	reg := registrytest.Start(t)
	for _, tc := range []struct{ written, want string }{
		{"127.0.0.1:5000/slipway/http-check:latest", reg.Addr + "/slipway/http-check:latest"},
		{"docker.io/library/busybox:1.37", "docker.io/library/busybox:1.37"},
	} {
		dir := filepath.Join(t.TempDir(), "hello")
		if _, err := chart.Init(chart.InitOptions{Dir: dir, Image: "127.0.0.1:5000/dev1/hello", CheckImage: tc.written}); err != nil {
			t.Fatal(err)
		}
		pkg, err := chart.Package(context.Background(), chart.PackageOptions{Dir: dir, Version: "0.2.0", Image: reg.Addr + "/dev1/hello@" + testDigest})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chart.Push(pkg, "oci://"+reg.Addr+"/dev1/charts", true, dev1(reg)); err != nil {
			t.Fatal(err)
		}
		shown, err := chart.Show("oci://"+reg.Addr+"/dev1/charts/hello", "0.2.0", dev1(reg))
		if err != nil {
			t.Fatal(err)
		}
		if hook := render(t, shown.Loaded)["hello/templates/tests/http-check.yaml"]; !strings.Contains(hook, "image: "+tc.want) && !strings.Contains(hook, `image: "`+tc.want+`"`) {
			t.Errorf("test image %s: the hook runs\n%s\nwant %s", tc.written, hook, tc.want)
		}
	}
}

// TestHelmCreateChart packages the chart `helm create` makes, unchanged,
// generated here with the SDK.
func TestHelmCreateChart(t *testing.T) {
	reg := registrytest.Start(t)
	dir, err := chartutil.Create("webapp", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"", reg.Addr + "/dev1/webapp@" + testDigest} {
		version := "0.1.0"
		if image != "" {
			version = "0.1.1"
		}
		pkg, err := chart.Package(context.Background(), chart.PackageOptions{Dir: dir, Version: version, Image: image})
		if err != nil {
			t.Fatal(err)
		}
		// Pinned, the chart renders a tag the pusher is to create, named
		// for the chart version, which is also the app version.
		if wantTag := map[bool]string{true: reg.Addr + "/dev1/webapp:0.1.1"}[image != ""]; pkg.ImageTag != wantTag {
			t.Fatalf("image tag %q, want %q", pkg.ImageTag, wantTag)
		}
		if image != "" && pkg.AppVersion != version {
			t.Fatalf("app version %q, want the chart's %s", pkg.AppVersion, version)
		}
		if _, err := chart.Push(pkg, "oci://"+reg.Addr+"/dev1/charts", false, dev1(reg)); err != nil {
			t.Fatal(err)
		}
	}
	shown, err := chart.Show("oci://"+reg.Addr+"/dev1/charts/webapp", "0.1.1", dev1(reg))
	if err != nil {
		t.Fatal(err)
	}
	deploy := render(t, shown.Loaded)["webapp/templates/deployment.yaml"]
	if !strings.Contains(deploy, `image: "`+reg.Addr+"/dev1/webapp:0.1.1@"+testDigest+`"`) {
		t.Fatalf("helm create chart not pinned by digest:\n%s", deploy)
	}
	// Comments in values.yaml survive the pin.
	if !strings.Contains(string(rawValues(shown.Loaded)), "# This sets the container image") {
		t.Error("values.yaml lost its comments")
	}
}

func rawValues(ch *chartv2.Chart) []byte {
	for _, f := range ch.Raw {
		if f.Name == "values.yaml" {
			return f.Data
		}
	}
	return nil
}

func TestChartWithDependency(t *testing.T) {
	reg := registrytest.Start(t)
	root := t.TempDir()
	lib := filepath.Join(root, "common")
	write(t, lib, "Chart.yaml", "apiVersion: v2\nname: common\nversion: 0.3.0\ntype: application\n")
	write(t, lib, "templates/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-common\ndata:\n  from: dependency\n")
	app := filepath.Join(root, "shop")
	write(t, app, "Chart.yaml", "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.3.0\n    repository: file://../common\n")
	write(t, app, "values.yaml", "image:\n  repository: example/shop\n  digest: \"\"\n")
	write(t, app, "templates/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-shop\ndata:\n  image: {{ .Values.image.repository }}@{{ .Values.image.digest }}\n")

	pkg, err := chart.Package(context.Background(), chart.PackageOptions{Dir: app, Version: "0.1.0", Image: reg.Addr + "/dev1/shop@" + testDigest})
	if err != nil {
		t.Fatal(err)
	}
	shown := pushAndShow(t, reg, pkg)
	out := render(t, shown.Loaded)
	if !strings.Contains(out["shop/charts/common/templates/configmap.yaml"], "from: dependency") {
		t.Fatalf("dependency not packaged: %v", keys(out))
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSuccessiveBuildsSortInOrder(t *testing.T) {
	reg := registrytest.Start(t)
	repo := t.TempDir()
	gitRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitRun("init", "-q", "-b", "main")
	if _, err := chart.Init(chart.InitOptions{Dir: filepath.Join(repo, "chart"), Name: "hello", Image: reg.Addr + "/dev1/hello", CheckImage: "check"}); err != nil {
		t.Fatal(err)
	}
	gitRun("add", ".")
	gitRun("commit", "-qm", "first")
	gitRun("tag", "v0.3.0")

	t.Setenv("BUILD_BUILDID", "")
	if v, _ := chart.DeriveVersion(chart.VersionOptions{Dir: repo}); v != "0.3.0" {
		t.Fatalf("at tag v0.3.0 the version is %q", v)
	}

	var pushed []string
	for _, build := range []string{"9", "10", "11"} {
		gitRun("commit", "-q", "--allow-empty", "-m", "build "+build)
		v, err := chart.DeriveVersion(chart.VersionOptions{Dir: repo, Build: build})
		if err != nil {
			t.Fatal(err)
		}
		pkg, err := chart.Package(context.Background(), chart.PackageOptions{Dir: filepath.Join(repo, "chart"), Version: v, Image: reg.Addr + "/dev1/hello@" + testDigest})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chart.Push(pkg, reg.Addr+"/dev1/charts", false, dev1(reg)); err != nil {
			t.Fatal(err)
		}
		pushed = append(pushed, v)
	}
	if strings.Join(pushed, " ") != "0.3.1-build.9 0.3.1-build.10 0.3.1-build.11" {
		t.Fatalf("versions %v", pushed)
	}
	for i := 1; i < len(pushed); i++ {
		if !semver.MustParse(pushed[i]).GreaterThan(semver.MustParse(pushed[i-1])) {
			t.Fatalf("%s does not sort after %s", pushed[i], pushed[i-1])
		}
	}
	// A Flux-style range that admits pre-releases picks the newest build,
	// and every build sorts after the release it starts from.
	c, _ := semver.NewConstraint(">=0.3.0-0")
	for _, v := range pushed {
		if !c.Check(semver.MustParse(v)) {
			t.Fatalf("%s outside >=0.3.0-0", v)
		}
	}
	listed, err := chart.Versions(reg.Addr+"/dev1/charts/hello", dev1(reg))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(listed, " ") != "0.3.1-build.11 0.3.1-build.10 0.3.1-build.9" {
		t.Fatalf("list %v", listed)
	}

	// Without a build number, the commit count keeps the order.
	v, err := chart.DeriveVersion(chart.VersionOptions{Dir: repo})
	if err != nil || v != "0.3.1-build.4" {
		t.Fatalf("commit-count version %q %v", v, err)
	}
}

func TestBadChartsAreNotPushed(t *testing.T) {
	reg := registrytest.Start(t)
	newChart := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "hello")
		if _, err := chart.Init(chart.InitOptions{Dir: dir, Image: reg.Addr + "/dev1/hello", CheckImage: "check"}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	cases := []struct {
		name   string
		break_ func(dir string)
		opts   chart.PackageOptions
		want   []string
	}{
		{"template syntax", func(dir string) {
			write(t, dir, "templates/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {{ .Values.nothing | nosuchfunction }}\n")
		}, chart.PackageOptions{}, []string{"templates/broken.yaml:6", "nosuchfunction"}},
		{"missing required value", func(dir string) {
			values, _ := os.ReadFile(filepath.Join(dir, "values.yaml"))
			write(t, dir, "values.yaml", strings.Replace(string(values), "  repository: "+reg.Addr+"/dev1/hello", "  repository: \"\"", 1))
		}, chart.PackageOptions{}, []string{"image.repository is required", "templates/deployment.yaml"}},
		{"invalid Chart.yaml", func(dir string) {
			write(t, dir, "Chart.yaml", "apiVersion: v2\nname: hello\nversion: [not, a, string\n")
		}, chart.PackageOptions{}, []string{"Chart.yaml", "line"}},
		{"version not semver", func(string) {}, chart.PackageOptions{Version: "1.2"}, []string{"not semver"}},
		{"image without digest", func(string) {}, chart.PackageOptions{Image: reg.Addr + "/dev1/hello:latest"}, []string{"digest-pinned"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := newChart(t)
			tc.break_(dir)
			tc.opts.Dir = dir
			if tc.opts.Version == "" {
				tc.opts.Version = "0.1.0"
			}
			_, err := chart.Package(context.Background(), tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}

	// Credentials the registry refuses: a clear error and nothing stored.
	pkg, err := chart.Package(context.Background(), chart.PackageOptions{Dir: newChart(t), Version: "0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = chart.Push(pkg, reg.Addr+"/dev1/charts", false, chart.RegistryOptions{Username: "dev1", Password: "wrong"})
	if err == nil || !strings.Contains(err.Error(), "slipway login") {
		t.Fatalf("wrong password: %v", err)
	}
	_, err = chart.Push(pkg, reg.Addr+"/dev2/charts", false, dev1(reg))
	if err == nil || !strings.Contains(err.Error(), "team's prefix") {
		t.Fatalf("other team's prefix: %v", err)
	}
	if _, err := chart.Versions(reg.Addr+"/dev1/charts/hello", dev1(reg)); err == nil {
		t.Fatal("a refused push stored a chart")
	}
}

// A dependency from an OCI registry is fetched the way `helm dependency
// update` does, with the pushing team's credentials for the registry the
// chart goes to.
func TestChartWithOCIDependency(t *testing.T) {
	reg := registrytest.Start(t)
	root := t.TempDir()
	pushCommonChart(t, reg, filepath.Join(root, "common"))
	app := filepath.Join(root, "shop")
	write(t, app, "Chart.yaml", "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.3.0\n    repository: oci://"+reg.Addr+"/dev1/charts\n")
	write(t, app, "values.yaml", "image:\n  repository: example/shop\n  digest: \"\"\n")
	write(t, app, "templates/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-shop\ndata:\n  image: {{ .Values.image.repository }}@{{ .Values.image.digest }}\n")
	// Helm's caches and repository files go to a home of the test's own.
	t.Setenv("HELM_CACHE_HOME", filepath.Join(root, "helm-cache"))
	t.Setenv("HELM_CONFIG_HOME", filepath.Join(root, "helm-config"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(root, "docker")) // no credentials but the push's

	pkg, err := chart.Package(context.Background(), chart.PackageOptions{Dir: app, Version: "0.1.0", Image: reg.Addr + "/dev1/shop@" + testDigest,
		Registry: dev1(reg), RegistryHost: reg.Addr})
	if err != nil {
		t.Fatal(err)
	}
	shown := pushAndShow(t, reg, pkg)
	if out := render(t, shown.Loaded); !strings.Contains(out["shop/charts/common/templates/configmap.yaml"], "from: oci-dependency") {
		t.Fatalf("the OCI dependency is not in the pushed chart: %v", keys(out))
	}
}

// A dependency from another registry is fetched without the push's user
// name and password, which are for the registry the chart goes to: the
// other registry (the same user and password would work there) gets the
// Docker config's credentials, here none, so the fetch is refused.
func TestDependencyFromAnotherRegistryGetsNoPushCredentials(t *testing.T) {
	reg := registrytest.Start(t)
	other := registrytest.Start(t)
	root := t.TempDir()
	pushCommonChart(t, other, filepath.Join(root, "common"))
	// The other registry, seen through a proxy that notes every
	// Authorization header it is sent.
	var mu sync.Mutex
	var sent []string
	target, _ := url.Parse("http://" + other.Addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Authorization"))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	frontAddr := strings.TrimPrefix(front.URL, "http://")

	app := filepath.Join(root, "shop")
	write(t, app, "Chart.yaml", "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.3.0\n    repository: oci://"+frontAddr+"/dev1/charts\n")
	write(t, app, "values.yaml", "image:\n  repository: example/shop\n  digest: \"\"\n")
	write(t, app, "templates/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-shop\n")
	t.Setenv("HELM_CACHE_HOME", filepath.Join(root, "helm-cache"))
	t.Setenv("HELM_CONFIG_HOME", filepath.Join(root, "helm-config"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(root, "docker"))
	push := dev1(reg)
	if _, err := chart.Package(context.Background(), chart.PackageOptions{Dir: app, Version: "0.1.0", Registry: push, RegistryHost: reg.Addr}); err == nil {
		t.Fatal("the dependency was fetched from a registry that wants credentials the Docker config does not have")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) == 0 {
		t.Fatal("the other registry was not asked")
	}
	for _, h := range sent {
		if h != "" && strings.Contains(decodeBasic(h), push.Password) {
			t.Fatalf("the push's password went to another registry: %q", h)
		}
	}
}

func decodeBasic(h string) string {
	b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
	return string(b)
}

// pushCommonChart writes a library-like chart, common 0.3.0, into dir and
// pushes it to reg's dev1/charts, for charts that depend on it.
func pushCommonChart(t *testing.T, reg *registrytest.Registry, dir string) {
	t.Helper()
	write(t, dir, "Chart.yaml", "apiVersion: v2\nname: common\nversion: 0.3.0\ntype: application\n")
	write(t, dir, "templates/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-common\ndata:\n  from: oci-dependency\n")
	pkg, err := chart.Package(context.Background(), chart.PackageOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chart.Push(pkg, "oci://"+reg.Addr+"/dev1/charts", false, dev1(reg)); err != nil {
		t.Fatal(err)
	}
}
