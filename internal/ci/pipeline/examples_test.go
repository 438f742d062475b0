package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example apps' pipelines load with ops's templates as shipped: the
// line's three stages, and the bake in staging only once ops sets it.
func TestTheExamplesLoadWithTheLine(t *testing.T) {
	examples := filepath.Join("..", "..", "..", "examples")
	templates := func(t *testing.T, bake string) string {
		dir := t.TempDir()
		for _, f := range []string{"line.yml", "build-publish.yml", "release.yml"} {
			data, err := os.ReadFile(filepath.Join(examples, "pipeline-templates", f))
			if err != nil {
				t.Fatal(err)
			}
			if f == "line.yml" {
				if !strings.Contains(string(data), "bake: 0s") {
					t.Fatal("line.yml no longer sets bake: 0s")
				}
				data = []byte(strings.Replace(string(data), "bake: 0s", "bake: "+bake, 1))
			}
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	staging := func(t *testing.T, app, bake string) []string {
		ops := templates(t, bake)
		p, err := Load(Options{Root: filepath.Join(examples, app), Variables: map[string]string{"Build.SourceBranch": "refs/heads/main"},
			RequireExtends: []Template{{Repo: "ops/pipeline-templates", Path: "line.yml"}},
			Repository:     func(name, ref string) (string, error) { return ops, nil }})
		if err != nil {
			t.Fatalf("%s with bake %s: %v", app, bake, err)
		}
		var stages, steps []string
		for _, s := range p.Stages {
			stages = append(stages, s.Name)
		}
		if strings.Join(stages, ",") != "Build,Staging,Prod" {
			t.Fatalf("%s: stages %v", app, stages)
		}
		for _, st := range p.Stages[1].Jobs[0].Steps {
			steps = append(steps, st.DisplayName)
		}
		return steps
	}
	for _, app := range []string{"hello", "quotes"} {
		if got := staging(t, app, "0s"); len(got) != 2 {
			t.Errorf("%s without a bake: staging steps %q", app, got)
		}
		got := staging(t, app, "60s")
		if len(got) != 3 || got[2] != "Bake in staging for 60s" {
			t.Errorf("%s with a 60s bake: staging steps %q", app, got)
		}
	}
}
