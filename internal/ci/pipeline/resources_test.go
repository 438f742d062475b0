package pipeline

import (
	"errors"
	"strings"
	"testing"
)

// opsTemplates is ops's template repository: a pipeline template that
// builds and releases, with a step template of its own.
var opsTemplates = map[string]string{
	"build.yml": `parameters:
- name: app
  type: string
- name: extraSteps
  type: stepList
  default: []
stages:
- stage: Build
  jobs:
  - job: Build
    steps:
    - template: steps/go.yml
    - script: echo building ${{ parameters.app }}
      displayName: Build ${{ parameters.app }}
    - ${{ parameters.extraSteps }}
- stage: Release
  jobs:
  - job: Release
    steps:
    - script: echo releasing ${{ parameters.app }}
`,
	"steps/go.yml":      "steps:\n- script: go version\n  displayName: Go\n",
	"steps/outside.yml": "steps:\n- template: ../../../etc/passwd\n",
	"jobs.yml":          "jobs:\n- job: Only\n  steps:\n  - script: echo only\n",
}

// withOps loads files as a repository whose pipeline may declare ops's
// templates (ops/pipeline-templates) as a resource.
func withOps(t *testing.T, files map[string]string, required []Template) (*Pipeline, error) {
	t.Helper()
	ops := repo(t, opsTemplates)
	return Load(Options{Root: repo(t, files), RequireExtends: required, Repository: func(name, ref string) (string, error) {
		if name != "ops/pipeline-templates" {
			return "", errors.New("no such repository")
		}
		if ref != DefaultRef {
			return "", errors.New("no such ref")
		}
		return ops, nil
	}})
}

const resourceHeader = `resources:
  repositories:
  - repository: templates
    type: git
    name: ops/pipeline-templates
`

func TestExtendsATemplateOfAnotherRepository(t *testing.T) {
	p, err := withOps(t, map[string]string{"azure-pipelines.yml": resourceHeader + `trigger: [main]
extends:
  template: build.yml@templates
  parameters:
    app: shop
    extraSteps:
    - script: echo extra
      displayName: Extra
`}, []Template{{Repo: "ops/pipeline-templates", Path: "build.yml"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Extends == nil || *p.Extends != (Template{Repo: "ops/pipeline-templates", Path: "build.yml", Ref: DefaultRef}) {
		t.Fatalf("extends: %+v", p.Extends)
	}
	if len(p.Stages) != 2 || p.Stages[0].Name != "Build" {
		t.Fatalf("stages: %+v", p.Stages)
	}
	var names []string
	for _, st := range p.Stages[0].Jobs[0].Steps {
		names = append(names, st.DisplayName)
	}
	if got := strings.Join(names, ","); got != "Go,Build shop,Extra" {
		t.Fatalf("steps: %s", got)
	}
	if pos := p.Stages[0].Jobs[0].Steps[0].Pos.String(); !strings.HasPrefix(pos, "steps/go.yml@templates:") {
		t.Fatalf("a step from the template repository is placed at %s", pos)
	}
	// A step template of the resource, from the pipeline's own steps.
	p, err = withOps(t, map[string]string{"azure-pipelines.yml": resourceHeader + "steps:\n- template: steps/go.yml@templates\n- script: echo mine\n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Stages[0].Jobs[0].Steps); n != 2 {
		t.Fatalf("%d steps", n)
	}
}

func TestRepositoryResourcesAreRefusedClearly(t *testing.T) {
	for name, c := range map[string]struct{ file, want string }{
		"github":            {"resources:\n  repositories:\n  - repository: t\n    type: github\n    name: ops/x\nsteps:\n- script: a\n", "azure-pipelines.yml:3: repository t: type \"github\" is not supported"},
		"name escapes":      {"resources:\n  repositories:\n  - repository: t\n    type: git\n    name: ../../etc\nsteps:\n- script: a\n", "name: must be TEAM/REPO"},
		"unknown repo":      {"resources:\n  repositories:\n  - repository: t\n    type: git\n    name: ops/nope\nsteps:\n- script: a\n", "repository t (ops/nope at refs/heads/main): no such repository"},
		"unknown alias":     {resourceHeader + "steps:\n- template: steps/go.yml@other\n", `no repository resource "other"`},
		"outside":           {resourceHeader + "steps:\n- template: steps/outside.yml@templates\n", "steps/outside.yml@templates:2: template ../../../etc/passwd is outside the repository"},
		"extends and steps": {resourceHeader + "extends:\n  template: jobs.yml@templates\nsteps:\n- script: a\n", "has no steps: of its own"},
		"pipelines":         {"resources:\n  pipelines:\n  - pipeline: up\n    source: x\nsteps:\n- script: a\n", "pipeline resources are not supported"},
	} {
		_, err := withOps(t, map[string]string{"azure-pipelines.yml": c.file}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

// A team whose pipelines must extend ops's template: one that does not
// is refused with file and line, and says what it must do.
func TestRequiredTemplate(t *testing.T) {
	required := []Template{{Repo: "ops/pipeline-templates", Path: "build.yml"}}
	_, err := withOps(t, map[string]string{"azure-pipelines.yml": "steps:\n- script: make\n"}, required)
	if err == nil || !strings.Contains(err.Error(), "azure-pipelines.yml:1: the platform requires this team's pipelines to extend build.yml@ops/pipeline-templates; this one extends nothing") {
		t.Fatalf("a pipeline of its own: %v", err)
	}
	_, err = withOps(t, map[string]string{"azure-pipelines.yml": resourceHeader + "extends:\n  template: jobs.yml@templates\n"}, required)
	if err == nil || !strings.Contains(err.Error(), "azure-pipelines.yml:7: the platform requires") || !strings.Contains(err.Error(), "this one extends jobs.yml@ops/pipeline-templates") {
		t.Fatalf("another template: %v", err)
	}
	// A copy of the template in the team's own repository is not it.
	_, err = withOps(t, map[string]string{"azure-pipelines.yml": "extends:\n  template: build.yml\n  parameters: {app: x}\n", "build.yml": opsTemplates["build.yml"], "steps/go.yml": "steps:\n- script: rm -rf /\n"}, required)
	if err == nil || !strings.Contains(err.Error(), "this one extends build.yml") {
		t.Fatalf("a look-alike template of the team's own: %v", err)
	}
}
