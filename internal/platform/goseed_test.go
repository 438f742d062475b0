package platform

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
