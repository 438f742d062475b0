package platform

import (
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The jobs' Go cache seed helps only while it compiles what the example
// apps compile: the same modules at the same versions. It holds what
// both need (their go.mod requirements together, their go.sum lines),
// nothing more.
func TestGoSeedMatchesTheExamples(t *testing.T) {
	requires := func(goMod []byte) map[string]bool {
		_, after, _ := strings.Cut(string(goMod), "\nrequire")
		out := map[string]bool{}
		for _, line := range strings.Split(after, "\n") {
			line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "// indirect"))
			line = strings.TrimPrefix(line, "require ")
			if line != "" && line != "(" && line != ")" {
				out[line] = true
			}
		}
		return out
	}
	lines := func(data []byte) map[string]bool {
		out := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			out[l] = true
		}
		return out
	}
	seedRequires, seedSum := requires(goSeedMod), lines(goSeedSum)
	union, sums := map[string]bool{}, map[string]bool{}
	for _, app := range []string{"hello", "quotes"} {
		dir := filepath.Join("..", "..", "examples", app)
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		for r := range requires(mod) {
			union[r] = true
			if !seedRequires[r] {
				t.Errorf("examples/%s/go.mod requires %s, which goseed/go.mod.txt does not: copy it there", app, r)
			}
		}
		sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
		if err != nil {
			t.Fatal(err)
		}
		for l := range lines(sum) {
			sums[l] = true
			if !seedSum[l] {
				t.Errorf("examples/%s/go.sum has %q, which goseed/go.sum.txt does not: copy it there", app, l)
			}
		}
	}
	if !maps.Equal(union, seedRequires) {
		t.Errorf("goseed/go.mod.txt requires more than the examples do: %v", slices.Sorted(maps.Keys(seedRequires)))
	}
	if !maps.Equal(sums, seedSum) {
		t.Errorf("goseed/go.sum.txt holds more than the examples' go.sum")
	}
}

// A job pod on an existing cluster unpacks the seed's archive with tar
// into its team's new cache: it must give back the seed as it is, and be
// made once.
func TestGoSeedArchiveUnpacksToTheSeed(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "go-build-seed")
	want := map[string]string{"README": "cache", "0a/0a1b-d": "object", "ff/ff00-a": "action"}
	for name, data := range want {
		if err := os.MkdirAll(filepath.Join(seed, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(seed, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	archive, err := goSeedArchive(seed)
	if err != nil {
		t.Fatal(err)
	}
	made, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if b, err := exec.Command("tar", "-xz", "--no-same-owner", "-f", archive, "-C", out).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, b)
	}
	got := map[string]string{}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(out, p)
		got[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("unpacked %v, want %v", got, want)
	}
	if again, err := goSeedArchive(seed); err != nil || again != archive {
		t.Fatalf("second call: %q, %v", again, err)
	}
	if st, _ := os.Stat(archive); !st.ModTime().Equal(made.ModTime()) {
		t.Error("the archive was made again")
	}
	if entries, _ := os.ReadDir(filepath.Dir(seed)); len(entries) != 2 {
		t.Errorf("left beside the seed: %d entries, want the seed and its archive", len(entries))
	}
}

// A team's Go cache claim is kept while it is of the kind the settings
// ask for, and reported otherwise: its class and access modes cannot
// change once made.
func TestCacheClaimKinds(t *testing.T) {
	claim := func(class string, modes ...corev1.PersistentVolumeAccessMode) corev1.PersistentVolumeClaim {
		c := corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{AccessModes: modes}}
		if class != "" {
			c.Spec.StorageClassName = &class
		}
		return c
	}
	byDefault, named := cacheClaimOf(""), cacheClaimOf("azurefile-csi")
	if byDefault.mode != corev1.ReadWriteOnce || named.mode != corev1.ReadWriteMany || named.class != "azurefile-csi" {
		t.Fatalf("kinds: %+v %+v", byDefault, named)
	}
	for _, c := range []struct {
		kind  cacheClaim
		claim corev1.PersistentVolumeClaim
		want  bool
	}{
		{byDefault, claim("managed-csi", corev1.ReadWriteOnce), true},
		{byDefault, claim("", corev1.ReadWriteOnce), true},
		{byDefault, claim("azurefile-csi", corev1.ReadWriteMany), false},
		{named, claim("azurefile-csi", corev1.ReadWriteMany), true},
		{named, claim("managed-csi", corev1.ReadWriteOnce), false},
		{named, claim("azurefile-csi", corev1.ReadWriteOnce), false},
		{named, claim("", corev1.ReadWriteMany), false},
	} {
		if got := c.kind.matches(c.claim); got != c.want {
			t.Errorf("%+v matches %v %v: %v, want %v", c.kind, c.claim.Spec.StorageClassName, c.claim.Spec.AccessModes, got, c.want)
		}
	}
}
