package components

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/slipway-dev/slipway/internal/syncio"
	"github.com/slipway-dev/slipway/internal/testutil"
)

// TestEnsureBuildsOnceAndAgainWhenThePinChanges uses a tiny family with a
// real module and the real Go toolchain.
func TestEnsureBuildsOnceAndAgainWhenThePinChanges(t *testing.T) {
	testutil.Slow(t)
	src := t.TempDir()
	famDir := filepath.Join(src, "hello")
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(famDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/hello\n\ngo 1.22\n")
	write("cmd/hello/main.go", "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"path/filepath\"\n)\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(filepath.Base(os.Args[0]), version) }\n")
	// "hi" is a second name of hello, which answers as what it is called.
	fam := Family{Dir: "hello", Programs: map[string]string{"hello": "./cmd/hello"}, Links: map[string]string{"hi": "hello"}, LDFlags: "-X main.version=v1", Why: "test"}
	var progress strings.Builder
	opts := Options{Source: os.DirFS(src), CacheDir: t.TempDir(), Progress: &progress}

	first, err := Ensure(context.Background(), fam, opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(first["hello"])
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"hello": "hello v1\n", "hi": "hi v1\n"} {
		out, err := exec.Command(first[name]).Output()
		if err != nil || string(out) != want {
			t.Errorf("%s says %q, %v; want %q", name, out, err, want)
		}
	}
	if !strings.Contains(progress.String(), "building hello") || !strings.Contains(progress.String(), "minutes the first time") {
		t.Fatalf("no progress shown: %q", progress.String())
	}

	progress.Reset()
	again, err := Ensure(context.Background(), fam, opts)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(again["hello"])
	if again["hello"] != first["hello"] || !st2.ModTime().Equal(st.ModTime()) || progress.Len() != 0 {
		t.Fatal("an unchanged pin was built again")
	}

	// A new pin of the family is built again, and says how long the
	// family's last build took on this machine.
	write("go.mod", "module example.com/hello\n\ngo 1.23\n")
	changed, err := Ensure(context.Background(), fam, opts)
	if err != nil {
		t.Fatal(err)
	}
	if changed["hello"] == first["hello"] {
		t.Fatal("a changed pin did not get its own build")
	}
	if !strings.Contains(progress.String(), "the last time here") {
		t.Errorf("the second build gave no estimate from the first: %q", progress.String())
	}

	// A damaged record costs the estimate, not the build.
	if err := os.WriteFile(buildTimesPath(opts.CacheDir), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	progress.Reset()
	write("go.mod", "module example.com/hello\n\ngo 1.24\n")
	if _, err := Ensure(context.Background(), fam, opts); err != nil {
		t.Fatalf("a damaged build-time record stopped the build: %v", err)
	}
	if !strings.Contains(progress.String(), "minutes the first time") {
		t.Errorf("a damaged record should give no estimate: %q", progress.String())
	}

	fam.Programs["broken"] = "./cmd/broken"
	write("cmd/broken/main.go", "package main\n\nfunc main() { undefined() }\n")
	if _, err := Ensure(context.Background(), fam, opts); err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Fatalf("a failing build should say why: %v", err)
	}
}

// A module of a group takes the group's shared files, and its own
// files win over them.
func TestPinFilesLayTheModuleOverItsGroupsSharedFiles(t *testing.T) {
	source := fstest.MapFS{
		"kube/shared/cmd/node/main.go.pin":  {Data: []byte("shared main")},
		"kube/shared/cmd/node/extra.go.pin": {Data: []byte("shared extra")},
		"kube/v1/go.mod.pin":                {Data: []byte("module v1")},
		"kube/v1/cmd/node/extra.go.pin":     {Data: []byte("v1 extra")},
		"solo/go.mod.pin":                   {Data: []byte("module solo")},
		"shared/cmd/x/main.go.pin":          {Data: []byte("not a group's")},
	}
	files, err := pinFiles(source, "kube/v1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"go.mod": "module v1", "cmd/node/main.go": "shared main", "cmd/node/extra.go": "v1 extra"}
	if len(files) != len(want) {
		t.Errorf("files %v, want %v", files, want)
	}
	for name, content := range want {
		if string(files[name]) != content {
			t.Errorf("%s = %q, want %q", name, files[name], content)
		}
	}
	// A module outside any group takes nothing else.
	if files, err := pinFiles(source, "solo"); err != nil || len(files) != 1 {
		t.Errorf("solo: %v, %v", files, err)
	}
	// The shared files are no module of their own.
	if _, err := pinFiles(source, "kube/shared"); err == nil {
		t.Error("the shared directory read as a module")
	}
}

// Every family's pins are in the binary, readable without the source
// checkout.
func TestEmbeddedPins(t *testing.T) {
	for _, fam := range []Family{Kubernetes, CoreDNS, FluxControllers, FluxCLI, Prometheus, Alertmanager, CNPG} {
		files, err := pinFiles(Pins(), fam.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(files["go.sum"]) == 0 {
			t.Errorf("%s: no go.sum", fam.Dir)
		}
	}
	if files, _ := pinFiles(Pins(), FluxControllers.Dir); len(files["cmd/flux-controllers/main.go"]) == 0 {
		t.Error("flux/controllers: no cmd/flux-controllers/main.go")
	}
	// One pinning module per Kubernetes release, each pinning that
	// release and the etcd it goes with, with the programs' sources.
	for _, v := range KubernetesVersions {
		fam, err := KubernetesFamily(v)
		if err != nil {
			t.Fatal(err)
		}
		files, err := pinFiles(Pins(), fam.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range []string{"cmd/etcd/main.go", "cmd/api-lifecycle/main.go", "cmd/kube-node/main.go", "cmd/kube-node/controlplane.go", "cmd/kube-node/scheduler.go", "cmd/kube-node/informers.go"} {
			if len(files[src]) == 0 {
				t.Errorf("%s: no %s", fam.Dir, src)
			}
		}
		mod := string(files["go.mod"])
		for _, want := range []string{"k8s.io/kubernetes " + v, "go.etcd.io/etcd/server/v3 " + EtcdVersion(v), "k8s.io/api => k8s.io/api v0." + strings.TrimPrefix(MinorOf(v), "v1.") + "." + v[strings.LastIndex(v, ".")+1:]} {
			if !strings.Contains(mod, want) {
				t.Errorf("%s/go.mod does not pin %s", fam.Dir, want)
			}
		}
	}
	if _, err := KubernetesFamily("v1.99.0"); err == nil {
		t.Error("a release without pins was accepted")
	}
}

func TestKubeVersionFlags(t *testing.T) {
	f := kubeVersionFlags("v1.36.3")
	for _, want := range []string{"k8s.io/component-base/version.gitVersion=v1.36.3", "gitMajor=1", "gitMinor=36"} {
		if !strings.Contains(f, want) {
			t.Errorf("flags lack %s: %s", want, f)
		}
	}
}

// Two preparations that need the same family at the same moment get one
// build between them.
func TestEnsureBuildsAFamilyOnceForCallersAtOnce(t *testing.T) {
	testutil.Slow(t)
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "once", "cmd", "once"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"go.mod":           "module example.com/once\n\ngo 1.22\n",
		"cmd/once/main.go": "package main\n\nfunc main() {}\n",
	} {
		if err := os.WriteFile(filepath.Join(src, "once", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fam := Family{Dir: "once", Programs: map[string]string{"once": "./cmd/once"}, Why: "test"}
	var progress strings.Builder
	opts := Options{Source: os.DirFS(src), CacheDir: t.TempDir(), Progress: &syncio.Writer{W: &progress}}
	var wg sync.WaitGroup
	paths := make([]map[string]string, 3)
	errs := make([]error, 3)
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = Ensure(context.Background(), fam, opts) })
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if paths[i]["once"] != paths[0]["once"] {
			t.Errorf("callers got different programs: %v", paths)
		}
	}
	if n := strings.Count(progress.String(), "building once"); n != 1 {
		t.Errorf("built %d times for three callers at once:\n%s", n, progress.String())
	}
}

// A family's program can run another module's program, internal packages
// and all, once that module is Importable; the module's own files are not
// touched. The module comes from a module proxy into an empty module
// cache, as on a new machine, where nothing has fetched it before the
// family's build needs its files.
func TestEnsureBuildsAnotherModulesProgramIntoOne(t *testing.T) {
	testutil.Slow(t)
	greeter := t.TempDir()
	writeAll(t, greeter, map[string]string{
		"go.mod":                  "module example.com/greeter\n\ngo 1.22\n",
		"main.go":                 "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/greeter/internal/words\"\n)\n\nfunc main() {\n\tfmt.Println(words.Hello)\n}\n",
		"internal/words/words.go": "package words\n\nconst Hello = \"hello from greeter\"\n",
		"main_test.go":            "package main\n",
		"config/greeter.yaml":     "greeting: hello\n",
	})
	proxy := t.TempDir()
	publishModule(t, proxy, "example.com/greeter", "v1.0.0", greeter)
	t.Setenv("GOPROXY", "file://"+proxy)
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Cleanup(func() { _ = exec.Command("go", "clean", "-modcache").Run() }) // its files are read-only

	src := t.TempDir()
	writeAll(t, filepath.Join(src, "multi"), map[string]string{
		"go.mod":            "module example.com/multi\n\ngo 1.22\n\nrequire example.com/greeter v1.0.0\n",
		"cmd/multi/main.go": "package main\n\nimport greeter \"example.com/greeter\"\n\nfunc main() { greeter.Main() }\n",
	})
	// Files are read from the module the build used, which is then the
	// copy.
	fam := Family{Dir: "multi", Programs: map[string]string{"multi": "./cmd/multi"}, Importable: map[string]string{"example.com/greeter": "greeter"}, Why: "test",
		Files: []ModuleFiles{{Module: "example.com/greeter", Glob: "config/*.yaml", Into: "config"}}}
	opts := Options{Source: os.DirFS(src), CacheDir: t.TempDir()}
	paths, err := Ensure(context.Background(), fam, opts)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(paths["multi"]).Output(); err != nil || string(out) != "hello from greeter\n" {
		t.Fatalf("multi says %q, %v", out, err)
	}
	if data, err := os.ReadFile(filepath.Join(paths["config"], "greeter.yaml")); err != nil || string(data) != "greeting: hello\n" {
		t.Errorf("the module's files: %q, %v", data, err)
	}
	dir, err := moduleDir(context.Background(), filepath.Join(src, "multi"), "example.com/greeter")
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "main.go")); !strings.HasPrefix(string(data), "package main\n") {
		t.Errorf("the module's own file was changed:\n%s", data)
	}

	// The files alone, as for Flux's CRDs beside its upstream images:
	// nothing is compiled (the pin's program does not even build now).
	writeAll(t, filepath.Join(src, "multi"), map[string]string{"cmd/multi/main.go": "package main\n\nfunc main() { notDefined() }\n"})
	filesOnly, err := Ensure(context.Background(), Family{Dir: "multi", Why: "test", Files: fam.Files}, opts)
	if err != nil {
		t.Fatalf("the files alone: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(filesOnly["config"], "greeter.yaml")); err != nil || string(data) != "greeting: hello\n" || len(filesOnly) != 1 {
		t.Errorf("the files alone: %v %q, %v", filesOnly, data, err)
	}
	writeAll(t, filepath.Join(src, "multi"), map[string]string{"cmd/multi/main.go": "package main\n\nimport greeter \"example.com/greeter\"\n\nfunc main() { greeter.Main() }\n"})

	// A module whose root is not one main program fails the build with
	// the reason, rather than building something else.
	writeAll(t, greeter, map[string]string{"main.go": "package main\n\nfunc Main() {}\n"})
	publishModule(t, proxy, "example.com/greeter", "v1.0.1", greeter)
	writeAll(t, filepath.Join(src, "multi"), map[string]string{"go.mod": "module example.com/multi\n\ngo 1.22\n\nrequire example.com/greeter v1.0.1\n"})
	if _, err := Ensure(context.Background(), fam, opts); err == nil || !strings.Contains(err.Error(), "found 0") {
		t.Fatalf("a module without a main function: %v", err)
	}
}

// publishModule lays a module out in dir the way a module proxy serves it
// (GOPROXY=file://dir).
func publishModule(t *testing.T, proxy, path, version, dir string) {
	t.Helper()
	at := filepath.Join(proxy, filepath.FromSlash(path), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	if err := modzip.CreateFromDir(&zipped, module.Version{Path: path, Version: version}, dir); err != nil {
		t.Fatal(err)
	}
	list, _ := os.ReadFile(filepath.Join(at, "list"))
	writeAll(t, at, map[string]string{
		version + ".info": `{"Version":"` + version + `","Time":"2026-12-01T00:00:00Z"}`,
		version + ".mod":  string(mod),
		version + ".zip":  zipped.String(),
		"list":            string(list) + version + "\n",
	})
}

func writeAll(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
