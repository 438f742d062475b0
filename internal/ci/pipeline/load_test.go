package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repo writes files into a temporary repository root.
func repo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, files map[string]string, params map[string]string) *Pipeline {
	t.Helper()
	p, err := Load(Options{Root: repo(t, files), Parameters: params, Variables: map[string]string{"Build.SourceBranch": "refs/heads/main"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadErr(t *testing.T, files map[string]string) error {
	t.Helper()
	_, err := Load(Options{Root: repo(t, files)})
	if err == nil {
		t.Fatal("expected an error")
	}
	return err
}

// A realistic file: triggers, pool, both variable forms, parameters,
// stages, dependsOn, conditions, every step kind and step option, and
// nested templates with parameters and conditions.
const fullPipeline = `
name: $(Build.BuildId)
trigger:
  batch: true
  branches:
    include: [main, releases/*]
    exclude: [releases/old*]
  paths:
    include: [src/*, chart/*]
    exclude: [docs/*]
  tags:
    include: [v*]
pr:
  branches:
    include: [main]
  autoCancel: true
pool:
  vmImage: ubuntu-latest
parameters:
- name: env
  displayName: Environment
  type: string
  default: staging
  values: [staging, prod]
- name: runTests
  type: boolean
  default: true
- name: replicas
  type: number
  default: 2
variables:
- name: app
  value: hello
- name: registry
  value: 127.0.0.1:5000
  readonly: true
- template: templates/vars.yml
  parameters:
    team: dev1
stages:
- stage: Build
  displayName: Build and publish
  variables:
    chartDir: chart
  jobs:
  - job: image
    displayName: Image
    timeoutInMinutes: 15
    steps:
    - checkout: self
      clean: true
      fetchDepth: 1
    - template: templates/build.yml
      parameters:
        name: ${{ variables.app }}
        extraSteps:
        - script: echo extra
    - script: echo "##vso[task.setvariable variable=tag;isOutput=true]1.0"
      name: setTag
      displayName: Set tag
      env:
        TOKEN: $(registryPassword)
      workingDirectory: $(System.DefaultWorkingDirectory)
      failOnStderr: true
      continueOnError: true
      timeoutInMinutes: 2
      condition: and(succeeded(), eq(variables['Build.SourceBranch'], 'refs/heads/main'))
    - bash: ./ci.sh
      enabled: false
    - publish: $(Build.ArtifactStagingDirectory)
      artifact: drop
    - task: HelmInstaller@1
    - task: Bash@3
      inputs:
        targetType: inline
        script: echo from a task
    - task: CmdLine@2
      inputs:
        script: echo cmd
    - task: PublishPipelineArtifact@1
      inputs:
        targetPath: out
        artifact: out
    - task: GoTool@0
      inputs:
        version: '1.26'
  - job: tests
    dependsOn: image
    condition: succeeded()
    continueOnError: true
    steps:
    - ${{ if eq(parameters.runTests, true) }}:
      - script: go test ./...
    - ${{ else }}:
      - script: echo skipped
    - ${{ each r in split('a,b', ',') }}:
      - script: echo region ${{ r }}
- stage: Deploy
  dependsOn: [Build]
  condition: and(succeeded(), ne(variables['Build.Reason'], 'PullRequest'))
  jobs:
  - template: templates/deploy-job.yml
    parameters:
      env: ${{ parameters.env }}
`

const buildTemplate = `
parameters:
- name: name
  type: string
- name: extraSteps
  type: stepList
  default: []
steps:
- script: slipway build . --image ${{ parameters.name }}
  displayName: Build ${{ parameters.name }}
- ${{ parameters.extraSteps }}
- template: nested/push.yml
  parameters:
    chart: ${{ parameters.name }}
`

const pushTemplate = `
parameters:
  chart: ''
steps:
- ${{ if ne(parameters.chart, '') }}:
  - script: slipway chart push --repository dev1/charts ${{ parameters.chart }}
`

const deployJob = `
parameters:
- name: env
  type: string
  values: [staging, prod]
jobs:
- job: deploy_${{ parameters.env }}
  variables:
  - name: target
    value: ${{ parameters.env }}
  steps:
  - checkout: none
  - script: slipway wait hello --env ${{ parameters.env }}
`

const varsTemplate = `
parameters:
- name: team
  type: string
variables:
  team: ${{ parameters.team }}
  charts: ${{ parameters.team }}/charts
`

func fullRepo() map[string]string {
	return map[string]string{
		"azure-pipelines.yml":       fullPipeline,
		"templates/build.yml":       buildTemplate,
		"templates/nested/push.yml": pushTemplate,
		"templates/deploy-job.yml":  deployJob,
		"templates/vars.yml":        varsTemplate,
	}
}

func TestFullPipeline(t *testing.T) {
	p := load(t, fullRepo(), nil)
	if p.Name != "$(Build.BuildId)" || p.Trigger == nil || !p.Trigger.Batch {
		t.Fatalf("name %q trigger %+v", p.Name, p.Trigger)
	}
	if got := strings.Join(p.Trigger.Branches.Include, ","); got != "main,releases/*" {
		t.Errorf("branches include %s", got)
	}
	if got := strings.Join(p.Trigger.Paths.Exclude, ","); got != "docs/*" {
		t.Errorf("paths exclude %s", got)
	}
	if p.PR == nil || p.PR.Branches.Include[0] != "main" {
		t.Errorf("pr %+v", p.PR)
	}
	vars := map[string]string{}
	for _, v := range p.Variables {
		vars[v.Name] = v.Value
	}
	if vars["app"] != "hello" || vars["team"] != "dev1" || vars["charts"] != "dev1/charts" {
		t.Errorf("variables %v", vars)
	}
	if len(p.Stages) != 2 {
		t.Fatalf("%d stages", len(p.Stages))
	}
	build := p.Stages[0]
	if build.DisplayName != "Build and publish" || build.Variables[0].Name != "chartDir" {
		t.Errorf("stage %+v", build)
	}
	image := build.Jobs[0]
	if image.TimeoutInMinutes != 15 || image.DisplayName != "Image" {
		t.Errorf("job %+v", image)
	}
	var kinds, scripts []string
	for _, s := range image.Steps {
		kinds = append(kinds, s.Kind)
		if s.Script != "" {
			scripts = append(scripts, s.Script)
		}
	}
	wantKinds := "checkout script script script script bash publish noop bash script publish gotool"
	if got := strings.Join(kinds, " "); got != wantKinds {
		t.Errorf("step kinds:\n got %s\nwant %s", got, wantKinds)
	}
	for _, want := range []string{"slipway build . --image hello", "echo extra", "slipway chart push --repository dev1/charts hello", "echo from a task", "echo cmd"} {
		if !strings.Contains(strings.Join(scripts, "\n"), want) {
			t.Errorf("no step runs %q; scripts: %q", want, scripts)
		}
	}
	set := image.Steps[4]
	if set.Name != "setTag" || set.DisplayName != "Set tag" || !set.FailOnStderr || !set.ContinueOnError || set.TimeoutInMinutes != 2 ||
		!strings.HasPrefix(set.Condition, "and(succeeded()") || set.Env[0].Name != "TOKEN" || set.WorkingDirectory == "" {
		t.Errorf("step options %+v", set)
	}
	if image.Steps[5].Enabled {
		t.Error("enabled: false was lost")
	}
	if image.Steps[0].Checkout != "self" || !image.Steps[0].Clean || image.Steps[0].FetchDepth != 1 {
		t.Errorf("checkout %+v", image.Steps[0])
	}
	if pub := image.Steps[6]; pub.Publish != "$(Build.ArtifactStagingDirectory)" || pub.Artifact != "drop" {
		t.Errorf("publish %+v", pub)
	}
	if gt := image.Steps[11]; gt.Version != "1.26" {
		t.Errorf("GoTool %+v", gt)
	}
	// The template step came from templates/build.yml, with its line.
	if pos := image.Steps[1].Pos; pos.File != "templates/build.yml" || pos.Line != 9 {
		t.Errorf("template step at %s", pos)
	}
	tests := build.Jobs[1]
	if strings.Join(tests.DependsOn, ",") != "image" || !tests.ContinueOnError || tests.Condition != "succeeded()" {
		t.Errorf("tests job %+v", tests)
	}
	var testScripts []string
	for _, s := range tests.Steps {
		testScripts = append(testScripts, s.Script)
	}
	if got := strings.Join(testScripts, "|"); got != "go test ./...|echo region a|echo region b" {
		t.Errorf("if/else/each steps: %s", got)
	}
	deploy := p.Stages[1]
	if deploy.Jobs[0].Name != "deploy_staging" || deploy.Jobs[0].Variables[0].Value != "staging" || !strings.Contains(deploy.Condition, "PullRequest") {
		t.Errorf("deploy stage %+v %+v", deploy, deploy.Jobs[0])
	}
	if p.StageDeps(deploy)[0] != "Build" {
		t.Error("dependsOn lost")
	}
}

func TestParametersFromTheCommandLine(t *testing.T) {
	p := load(t, fullRepo(), map[string]string{"env": "prod", "runTests": "false"})
	if p.Stages[1].Jobs[0].Name != "deploy_prod" {
		t.Errorf("env=prod gave job %s", p.Stages[1].Jobs[0].Name)
	}
	if s := p.Stages[0].Jobs[1].Steps[0].Script; s != "echo skipped" {
		t.Errorf("runTests=false ran %q", s)
	}
	_, err := Load(Options{Root: repo(t, fullRepo()), Parameters: map[string]string{"env": "qa"}})
	if err == nil || !strings.Contains(err.Error(), `"qa" is not one of staging, prod`) {
		t.Errorf("a value outside values: %v", err)
	}
	_, err = Load(Options{Root: repo(t, fullRepo()), Parameters: map[string]string{"nope": "1"}})
	if err == nil || !strings.Contains(err.Error(), `no parameter "nope"`) {
		t.Errorf("an unknown parameter: %v", err)
	}
}

func TestShorthands(t *testing.T) {
	p := load(t, map[string]string{"azure-pipelines.yml": "steps:\n- script: echo hi\n"}, nil)
	if len(p.Stages) != 1 || len(p.Stages[0].Jobs) != 1 || p.Stages[0].Jobs[0].Steps[0].Script != "echo hi" || p.Trigger != nil {
		t.Fatalf("steps-only file: %+v", p.Stages)
	}
	p = load(t, map[string]string{"azure-pipelines.yml": "trigger: none\nvariables:\n  a: b\njobs:\n- job: one\n  steps:\n  - bash: echo $(a)\n- job: two\n  dependsOn: one\n  steps:\n  - script: echo two\n"}, nil)
	if !p.Trigger.None || len(p.Stages[0].Jobs) != 2 || p.Variables[0].Value != "b" {
		t.Fatalf("jobs-only file: %+v", p)
	}
	p = load(t, map[string]string{"azure-pipelines.yml": "trigger:\n- main\n- dev\nsteps:\n- script: x\n"}, nil)
	if strings.Join(p.Trigger.Branches.Include, ",") != "main,dev" {
		t.Fatalf("trigger list: %+v", p.Trigger)
	}
}

// Every error names the file and the line of the offending text.
func TestErrorsNameFileAndLine(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"malformed YAML":                  {map[string]string{"azure-pipelines.yml": "steps:\n- script: echo\n  bad: [\n"}, "azure-pipelines.yml:3: not valid YAML"},
		"unknown root keyword":            {map[string]string{"azure-pipelines.yml": "steps:\n- script: x\nfoo: bar\n"}, `azure-pipelines.yml:3: unknown keyword "foo" in the pipeline`},
		"unknown step keyword":            {map[string]string{"azure-pipelines.yml": "steps:\n- script: x\n  retries: 3\n"}, `azure-pipelines.yml:3: unknown keyword "retries" in a script step`},
		"unsupported task":                {map[string]string{"azure-pipelines.yml": "steps:\n- script: x\n- task: Docker@2\n  inputs:\n    command: build\n"}, "azure-pipelines.yml:3: task Docker@2 is not supported"},
		"unknown task input":              {map[string]string{"azure-pipelines.yml": "steps:\n- task: Bash@3\n  inputs:\n    targetType: inline\n    noProfile: false\n"}, `azure-pipelines.yml:5: input "noProfile" of Bash@3`},
		"variable group":                  {map[string]string{"azure-pipelines.yml": "variables:\n- group: secrets\nsteps:\n- script: x\n"}, `azure-pipelines.yml:2: variable group "secrets"`},
		"pwsh":                            {map[string]string{"azure-pipelines.yml": "steps:\n- pwsh: Write-Host hi\n"}, "azure-pipelines.yml:2: pwsh steps are not supported"},
		"deployment job":                  {map[string]string{"azure-pipelines.yml": "jobs:\n- deployment: web\n  environment: prod\n"}, "azure-pipelines.yml:2: deployment jobs are not supported"},
		"bad expression":                  {map[string]string{"azure-pipelines.yml": "steps:\n- script: echo ${{ eq(1) }}\n"}, "azure-pipelines.yml:2: expression"},
		"missing template":                {map[string]string{"azure-pipelines.yml": "steps:\n- template: nope.yml\n"}, "azure-pipelines.yml:2: template nope.yml"},
		"error inside a template":         {map[string]string{"azure-pipelines.yml": "steps:\n- template: t.yml\n", "t.yml": "steps:\n- script: a\n- frobnicate: b\n"}, "t.yml:3: unknown step"},
		"template outside the repository": {map[string]string{"azure-pipelines.yml": "steps:\n- template: ../../etc/x.yml\n"}, "azure-pipelines.yml:2: template ../../etc/x.yml is outside the repository"},
		"template includes itself":        {map[string]string{"azure-pipelines.yml": "steps:\n- template: t.yml\n", "t.yml": "steps:\n- template: t.yml\n"}, "nest more than 50"},
		"missing template parameter":      {map[string]string{"azure-pipelines.yml": "steps:\n- template: t.yml\n", "t.yml": "parameters:\n- name: x\n  type: string\nsteps:\n- script: ${{ parameters.x }}\n"}, "parameter x has no default"},
		"wrong template kind":             {map[string]string{"azure-pipelines.yml": "steps:\n- template: t.yml\n", "t.yml": "jobs:\n- job: a\n  steps:\n  - script: a\n"}, "t.yml is a jobs template, used here as a steps template"},
		"else without if":                 {map[string]string{"azure-pipelines.yml": "steps:\n- ${{ else }}:\n  - script: a\n"}, "azure-pipelines.yml:2: ${{ else }} without an ${{ if }}"},
		"unknown dependsOn":               {map[string]string{"azure-pipelines.yml": "stages:\n- stage: A\n  dependsOn: Z\n  jobs:\n  - job: a\n    steps:\n    - script: a\n"}, "stage A depends on Z"},
		"cycle":                           {map[string]string{"azure-pipelines.yml": "jobs:\n- job: a\n  dependsOn: b\n  steps: [{script: a}]\n- job: b\n  dependsOn: a\n  steps: [{script: b}]\n"}, "cycle"},
		"runtime expression":              {map[string]string{"azure-pipelines.yml": "variables:\n  a: $[ nosuch('x', 1) ]\nsteps:\n- script: a\n"}, "azure-pipelines.yml:2: expression \"nosuch('x', 1)\": unknown function nosuch()"},
		"runtime expression inside text":  {map[string]string{"azure-pipelines.yml": "variables:\n  a: x-$[ variables.b ]\nsteps:\n- script: a\n"}, "azure-pipelines.yml:2: a runtime expression $[ ] must be the variable's whole value"},
		"nothing to run":                  {map[string]string{"azure-pipelines.yml": "trigger: none\n"}, "nothing to run"},
		"strategy":                        {map[string]string{"azure-pipelines.yml": "jobs:\n- job: a\n  strategy:\n    matrix: {}\n  steps: [{script: a}]\n"}, "azure-pipelines.yml:3: strategy"},
		"extends":                         {map[string]string{"azure-pipelines.yml": "extends:\n  template: x.yml\n"}, "azure-pipelines.yml:2: template x.yml: cannot read the file: no such file in the repository"},
		"anchors":                         {map[string]string{"azure-pipelines.yml": "steps:\n- &s {script: a}\n- *s\n"}, "anchors"},
	} {
		t.Run(name, func(t *testing.T) {
			err := loadErr(t, tc.files)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// FuzzLoad: any file loads or fails with an error; it never panics or hangs.
func FuzzLoad(f *testing.F) {
	f.Add(fullPipeline)
	f.Add("steps:\n- script: echo ${{ parameters.x }}\n")
	f.Add("jobs:\n- job: a\n  steps:\n  - ${{ if true }}:\n    - script: a\n")
	f.Add("variables:\n  a: ${{ each x in y }}\n")
	f.Fuzz(func(t *testing.T, content string) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "azure-pipelines.yml"), []byte(content), 0o644)
		os.MkdirAll(filepath.Join(dir, "templates/nested"), 0o755)
		os.WriteFile(filepath.Join(dir, "templates/build.yml"), []byte(buildTemplate), 0o644)
		os.WriteFile(filepath.Join(dir, "templates/nested/push.yml"), []byte(pushTemplate), 0o644)
		_, _ = Load(Options{Root: dir})
	})
}

// container: names the image of the job's pod, as a reference or as a
// mapping with image:; what would reach the host is refused.
func TestJobContainer(t *testing.T) {
	p := load(t, map[string]string{DefaultFile: `jobs:
- job: a
  container: 127.0.0.1:5000/dev1/tools:1
  steps: [{script: make}]
- job: b
  container:
    image: 127.0.0.1:5000/dev1/tools:2
    env: {A: b}
  steps: [{script: make}]
- job: c
  steps: [{script: make}]
`}, nil)
	jobs := p.Stages[0].Jobs
	if jobs[0].Container != "127.0.0.1:5000/dev1/tools:1" || jobs[1].Container != "127.0.0.1:5000/dev1/tools:2" || jobs[2].Container != "" {
		t.Errorf("containers: %q %q %q", jobs[0].Container, jobs[1].Container, jobs[2].Container)
	}
	err := loadErr(t, map[string]string{DefaultFile: "jobs:\n- job: a\n  container:\n    image: x\n    volumes: ['/:/host']\n  steps: [{script: make}]\n"})
	if !strings.Contains(err.Error(), "no host paths") {
		t.Errorf("volumes: %v", err)
	}
	if err := loadErr(t, map[string]string{DefaultFile: "jobs:\n- job: a\n  container: {options: --privileged}\n  steps: [{script: make}]\n"}); !strings.Contains(err.Error(), "needs image") {
		t.Errorf("no image: %v", err)
	}
}

// A template that is a symbolic link out of the repository, or to a
// device, is refused with the including file and line; nothing is read.
func TestTemplatesStayInTheRepository(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.yml")
	os.WriteFile(outside, []byte("steps:\n- script: cat /etc/shadow\n"), 0o644)
	for _, c := range []struct{ target, want string }{
		{outside, "azure-pipelines.yml:2: template t.yml: the file is a symbolic link to outside the repository"},
		{"/dev/zero", "azure-pipelines.yml:2: template t.yml: the file is a symbolic link to outside the repository"},
		{"../../../../../../../../dev/zero", "azure-pipelines.yml:2: template t.yml: the file is a symbolic link to outside the repository"},
	} {
		dir := repo(t, map[string]string{DefaultFile: "steps:\n- template: t.yml\n"})
		if err := os.Symlink(c.target, filepath.Join(dir, "t.yml")); err != nil {
			t.Fatal(err)
		}
		_, err := Load(Options{Root: dir})
		if err == nil || err.Error() != c.want {
			t.Errorf("template linked to %s: %v, want %q", c.target, err, c.want)
		}
	}
	// The pipeline file itself, too.
	dir := t.TempDir()
	os.Symlink("/dev/zero", filepath.Join(dir, DefaultFile))
	if _, err := Load(Options{Root: dir}); err == nil || !strings.Contains(err.Error(), "outside the repository") {
		t.Errorf("pipeline file linked to /dev/zero: %v", err)
	}
	// A link that stays inside is followed.
	dir = repo(t, map[string]string{DefaultFile: "steps:\n- template: t.yml\n", "real.yml": "steps:\n- script: make\n"})
	os.Symlink("real.yml", filepath.Join(dir, "t.yml"))
	if _, err := Load(Options{Root: dir}); err != nil {
		t.Errorf("a link inside the repository: %v", err)
	}
}

// Files past the size limit, and expansions past the node budget, fail
// with a message; the 226-byte file that made 8000 steps is one of them.
func TestLoadingIsBounded(t *testing.T) {
	big := "steps:\n" + strings.Repeat("- script: echo this line is padding for a large pipeline file\n", 20000)
	err := loadErr(t, map[string]string{DefaultFile: big})
	if !strings.Contains(err.Error(), "azure-pipelines.yml: the file is") || !strings.Contains(err.Error(), "at most 524288") {
		t.Errorf("a 1.2 MB pipeline file: %v", err)
	}
	cubic := `parameters:
- name: n
  type: object
  default: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]
steps:
- ${{ each a in parameters.n }}:
  - ${{ each b in parameters.n }}:
    - ${{ each c in parameters.n }}:
      - script: echo ${{ a }} ${{ b }} ${{ c }}
`
	err = loadErr(t, map[string]string{DefaultFile: cubic})
	if !strings.Contains(err.Error(), "expands to more than 20000 YAML nodes") {
		t.Errorf("8000 steps by ${{ each }}: %v", err)
	}
	// Templates that include each other twice: 2^n without a loop.
	files := map[string]string{DefaultFile: "steps:\n- template: t0.yml\n"}
	for i := range 30 {
		files[fmt.Sprintf("t%d.yml", i)] = fmt.Sprintf("steps:\n- template: t%d.yml\n- template: t%d.yml\n", i+1, i+1)
	}
	files["t30.yml"] = "steps:\n- script: make\n"
	err = loadErr(t, files)
	if !strings.Contains(err.Error(), "includes templates more than 100 times") {
		t.Errorf("templates doubling 30 times: %v", err)
	}
	// Within the budget, the same constructs load.
	p := load(t, map[string]string{DefaultFile: strings.Replace(cubic, "default: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]", "default: [1,2,3]", 1)}, nil)
	if n := len(p.Stages[0].Jobs[0].Steps); n != 27 {
		t.Errorf("3x3x3 steps: got %d", n)
	}
}
