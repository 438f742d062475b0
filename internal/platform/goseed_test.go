package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The jobs' Go cache seed helps only while it compiles what the example
// apps compile: the same modules at the same versions.
func TestGoSeedMatchesTheExamples(t *testing.T) {
	requires := func(goMod []byte) string {
		_, after, _ := strings.Cut(string(goMod), "\nrequire")
		return after
	}
	for _, app := range []string{"hello", "quotes"} {
		dir := filepath.Join("..", "..", "examples", app)
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		if requires(mod) != requires(goSeedMod) {
			t.Errorf("examples/%s/go.mod requires other modules than goseed/go.mod.txt; copy them there:\n%s", app, requires(mod))
		}
		sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
		if err != nil {
			t.Fatal(err)
		}
		if string(sum) != string(goSeedSum) {
			t.Errorf("examples/%s/go.sum differs from goseed/go.sum.txt; copy it there", app)
		}
	}
}
