package pipeline

import (
	"cmp"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/slipway-dev/slipway/internal/ci/expr"
)

// DefaultFile is the pipeline file Azure DevOps looks for.
const DefaultFile = "azure-pipelines.yml"

// Options say what to load.
type Options struct {
	// Root is the repository's root directory; templates must stay in it.
	Root string
	// File is the pipeline file, relative to Root (default
	// azure-pipelines.yml).
	File string
	// Parameters are values for the pipeline's parameters, as typed on a
	// command line.
	Parameters map[string]string
	// Variables are the predefined variables (Build.SourceBranch, ...)
	// that template expressions may read.
	Variables map[string]string
	// Limits bound what loading may read and make; zero values take the
	// defaults.
	Limits Limits
	// Repository checks out a repository resource (resources:
	// repositories:, type: git): a repository of the platform's git
	// server (TEAM/REPO) at ref, read-only, into a directory it returns.
	// Nil refuses repository resources.
	Repository func(name, ref string) (string, error)
	// RequireExtends, when not empty, are templates the pipeline must
	// extend one of: a rule the platform sets for a team's pipelines.
	RequireExtends []Template
}

// Template names a template in a repository of the platform: a path in
// Repo (empty: the pipeline's own repository) at Ref.
type Template struct {
	Repo string `json:"repo"`
	Path string `json:"path"`
	Ref  string `json:"ref,omitempty"`
}

func (t Template) String() string {
	s := t.Path
	if t.Repo != "" {
		s += "@" + t.Repo
	}
	if t.Ref != "" && t.Ref != DefaultRef {
		s += " (" + t.Ref + ")"
	}
	return s
}

// DefaultRef is the ref a repository resource names when it names none.
const DefaultRef = "refs/heads/main"

// Limits bound a pipeline's loading, so that a hostile or broken file
// fails with a message instead of taking the platform's memory. Azure
// Pipelines has bounds of the same kind (files included, nesting, memory
// while parsing).
type Limits struct {
	// FileBytes is the largest pipeline or template file (512 KiB).
	FileBytes int64
	// Files is how many times one pipeline may include a template (100).
	Files int
	// Nodes is how many YAML nodes templates and ${{ each }} may make in
	// all (20000; a pipeline of a few stages makes a few hundred).
	Nodes int
}

func (l Limits) withDefaults() Limits {
	if l.FileBytes <= 0 {
		l.FileBytes = 512 << 10
	}
	if l.Files <= 0 {
		l.Files = 100
	}
	if l.Nodes <= 0 {
		l.Nodes = 20000
	}
	return l
}

// Load reads a pipeline file and its templates. Every error names the
// file and line.
func Load(opts Options) (*Pipeline, error) {
	if opts.File == "" {
		opts.File = DefaultFile
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	e := &expander{root: root, files: map[*yaml.Node]string{}, limits: opts.Limits.withDefaults()}
	doc, err := e.parseFile(filepath.Join(root, filepath.FromSlash(opts.File)))
	if err != nil {
		return nil, err
	}
	p := &Pipeline{File: e.rel(filepath.Join(root, opts.File))}
	if rn := mapGet(doc, "resources"); rn != nil {
		if err := e.declareResources(rn, opts.Repository); err != nil {
			return nil, err
		}
	}

	// Parameters first: everything else may read them.
	given := map[string]any{}
	for k, v := range opts.Parameters {
		given[k] = v
	}
	params, err := e.resolveParameters(mapGet(doc, "parameters"), given, doc, p.File)
	if err != nil {
		return nil, err
	}
	p.Parameters = params
	paramValues := map[string]any{}
	for _, prm := range params {
		paramValues[prm.Name] = prm.Value
	}
	variables := map[string]any{}
	for k, v := range opts.Variables {
		variables[k] = v
	}
	sc := &scope{file: p.File, values: map[string]any{"parameters": paramValues, "variables": variables}}

	// Then the pipeline's own variables, which later expressions may read.
	rest := e.node(doc, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
	var extends *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		switch k.Value {
		case "parameters", "resources":
			continue
		case "extends":
			extends = v
			continue
		case "variables":
			expanded, err := e.value(v, sc, "variables")
			if err != nil {
				return nil, err
			}
			if p.Variables, err = e.decodeVariables(expanded); err != nil {
				return nil, err
			}
			for _, vr := range p.Variables {
				variables[vr.Name] = vr.Value
			}
			continue
		}
		rest.Content = append(rest.Content, k, v)
	}
	expanded, err := e.mapping(rest, sc)
	if err != nil {
		return nil, err
	}
	if extends != nil {
		if err := e.extend(expanded, extends, sc, p); err != nil {
			return nil, err
		}
	}
	if e.overBudget != nil {
		return nil, e.spend(e.overBudget, 0)
	}
	if err := e.decodeRoot(expanded, p); err != nil {
		return nil, err
	}
	if err := e.checkRequired(p, extends, opts.RequireExtends); err != nil {
		return nil, err
	}
	if err := p.check(e); err != nil {
		return nil, err
	}
	return p, nil
}

// --- keyword sets

var refusedRoot = map[string]string{
	"schedules":                    "scheduled triggers are not supported by the local runner; runs start on push or with slipway pipeline run",
	"lockBehavior":                 "lockBehavior: is not supported (there are no environments to lock)",
	"appendCommitMessageToRunName": "appendCommitMessageToRunName: is not supported",
}

var refusedJob = map[string]string{
	"strategy": "strategy: (matrix, parallel) is not supported; write one job per variant",
	"services": "service containers are not supported",
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (e *expander) keys(n *yaml.Node, what string, allowed []string, refused map[string]string) error {
	if n.Kind != yaml.MappingNode {
		return e.errorf(n, "%s must be a mapping", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			return e.errorf(k, "%q is given twice in %s", k.Value, what)
		}
		seen[k.Value] = true
		if msg, ok := refused[k.Value]; ok {
			return e.errorf(k, "%s", msg)
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == k.Value
		}
		if !ok {
			return e.errorf(k, "unknown keyword %q in %s (supported: %s)", k.Value, what, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func (e *expander) str(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", e.errorf(n, "%s must be a single value", what)
	}
	if n.ShortTag() == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func (e *expander) boolean(n *yaml.Node, what string) (bool, error) {
	s, err := e.str(n, what)
	if err != nil {
		return false, err
	}
	b, err := strconv.ParseBool(strings.ToLower(s))
	if err != nil {
		return false, e.errorf(n, "%s must be true or false, not %q", what, s)
	}
	return b, nil
}

func (e *expander) integer(n *yaml.Node, what string) (int, error) {
	s, err := e.str(n, what)
	if err != nil {
		return 0, err
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 {
		return 0, e.errorf(n, "%s must be a whole number of minutes or more, not %q", what, s)
	}
	return i, nil
}

func (e *expander) strings(n *yaml.Node, what string) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return []string{}, nil
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := []string{}
		for _, c := range n.Content {
			s, err := e.str(c, what)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, e.errorf(n, "%s must be a name or a list of names", what)
}

// --- the root

func (e *expander) decodeRoot(n *yaml.Node, p *Pipeline) error {
	if err := e.keys(n, "the pipeline", []string{"name", "trigger", "pr", "pool", "stages", "jobs", "steps"}, refusedRoot); err != nil {
		return err
	}
	var shape *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "name":
			p.Name, err = e.str(v, "name")
		case "trigger":
			p.Trigger, err = e.trigger(v, "trigger", false)
		case "pr":
			p.PR, err = e.trigger(v, "pr", true)
		case "pool":
			// Accepted so the file runs on Azure as written; steps run here.
		case "stages", "jobs", "steps":
			if shape != nil {
				return e.errorf(k, "%s: cannot go with %s: in the same file", k.Value, shape.Value)
			}
			shape = k
			switch k.Value {
			case "stages":
				err = e.stages(v, p)
			case "jobs":
				var jobs []*Job
				if jobs, err = e.jobs(v); err == nil {
					p.Stages = []*Stage{{Name: "__default", Jobs: jobs, Pos: e.pos(k), DependsOn: []string{}}}
				}
			case "steps":
				var steps []*Step
				if steps, err = e.steps(v); err == nil {
					job := &Job{Name: "Job", Steps: steps, Pos: e.pos(k)}
					p.Stages = []*Stage{{Name: "__default", Jobs: []*Job{job}, Pos: e.pos(k), DependsOn: []string{}}}
				}
			}
		}
		if err != nil {
			return err
		}
	}
	if shape == nil {
		return e.errorf(n, "the pipeline has nothing to run: give it stages:, jobs: or steps:")
	}
	return nil
}

func (e *expander) trigger(n *yaml.Node, what string, pr bool) (*Trigger, error) {
	t := &Trigger{}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "none" || n.Value == "false" {
			t.None = true
			return t, nil
		}
		t.Branches.Include = []string{n.Value}
		return t, nil
	case yaml.SequenceNode:
		list, err := e.strings(n, what+" branches")
		t.Branches.Include = list
		return t, err
	}
	allowed := []string{"batch", "branches", "paths", "tags"}
	if pr {
		allowed = []string{"branches", "paths", "autoCancel", "drafts"}
	}
	if err := e.keys(n, what+":", allowed, nil); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "batch":
			t.Batch, err = e.boolean(v, "batch")
		case "autoCancel", "drafts":
			_, err = e.boolean(v, k.Value)
		case "branches":
			t.Branches, err = e.filter(v, what+" branches")
		case "paths":
			t.Paths, err = e.filter(v, what+" paths")
		case "tags":
			t.Tags, err = e.filter(v, what+" tags")
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (e *expander) filter(n *yaml.Node, what string) (Filter, error) {
	var f Filter
	if n.Kind == yaml.SequenceNode {
		list, err := e.strings(n, what)
		f.Include = list
		return f, err
	}
	if err := e.keys(n, what, []string{"include", "exclude"}, nil); err != nil {
		return f, err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		list, err := e.strings(n.Content[i+1], what)
		if err != nil {
			return f, err
		}
		if n.Content[i].Value == "include" {
			f.Include = list
		} else {
			f.Exclude = list
		}
	}
	return f, nil
}

// RuntimeExpr matches a variable whose whole value is a runtime
// expression, $[ ... ], evaluated when its job starts (it may read
// dependencies and stageDependencies outputs).
var RuntimeExpr = regexp.MustCompile(`^\s*\$\[(.*)\]\s*$`)

// checkRuntime parses a variable's runtime expression now, so a mistake
// is reported with its line before anything runs.
func (e *expander) checkRuntime(n *yaml.Node, value string) error {
	if !strings.Contains(value, "$[") {
		return nil
	}
	m := RuntimeExpr.FindStringSubmatch(value)
	if m == nil {
		return e.errorf(n, "a runtime expression $[ ] must be the variable's whole value")
	}
	if _, err := expr.Parse(strings.TrimSpace(m[1])); err != nil {
		return e.errorf(n, "%v", err)
	}
	return nil
}

func (e *expander) decodeVariables(n *yaml.Node) ([]Variable, error) {
	var out []Variable
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := e.str(n.Content[i+1], "variable "+n.Content[i].Value)
			if err == nil {
				err = e.checkRuntime(n.Content[i+1], v)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, Variable{Name: n.Content[i].Value, Value: v})
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if g := mapGet(item, "group"); g != nil {
				return nil, e.errorf(item, "variable group %q lives in Azure DevOps, not in the repository: define the variables in the file (the local runner gives each run its registry and git credentials as secret variables)", g.Value)
			}
			if err := e.keys(item, "a variable", []string{"name", "value", "readonly"}, nil); err != nil {
				return nil, err
			}
			var v Variable
			for i := 0; i+1 < len(item.Content); i += 2 {
				k, val := item.Content[i], item.Content[i+1]
				var err error
				switch k.Value {
				case "name":
					v.Name, err = e.str(val, "name")
				case "value":
					if v.Value, err = e.str(val, "value"); err == nil {
						err = e.checkRuntime(val, v.Value)
					}
				case "readonly":
					v.ReadOnly, err = e.boolean(val, "readonly")
				}
				if err != nil {
					return nil, err
				}
			}
			if v.Name == "" {
				return nil, e.errorf(item, "a variable needs a name:")
			}
			out = append(out, v)
		}
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil, nil
		}
		fallthrough
	default:
		return nil, e.errorf(n, "variables: must be a mapping of names to values, or a list of name/value items")
	}
	return out, nil
}

// --- stages and jobs

func (e *expander) stages(n *yaml.Node, p *Pipeline) error {
	if n.Kind != yaml.SequenceNode {
		return e.errorf(n, "stages: must be a list")
	}
	for _, item := range n.Content {
		if err := e.keys(item, "a stage", []string{"stage", "displayName", "dependsOn", "condition", "variables", "jobs", "pool"},
			map[string]string{"lockBehavior": refusedRoot["lockBehavior"], "templateContext": "templateContext: is not supported"}); err != nil {
			return err
		}
		s := &Stage{Pos: e.pos(item)}
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i], item.Content[i+1]
			var err error
			switch k.Value {
			case "stage":
				s.Name, err = e.str(v, "stage")
			case "displayName":
				s.DisplayName, err = e.str(v, "displayName")
			case "dependsOn":
				s.DependsOn, err = e.strings(v, "dependsOn")
			case "condition":
				s.Condition, err = e.str(v, "condition")
			case "variables":
				s.Variables, err = e.decodeVariables(v)
			case "jobs":
				s.Jobs, err = e.jobs(v)
			}
			if err != nil {
				return err
			}
		}
		if !identRe.MatchString(s.Name) {
			return e.errorf(item, "a stage needs a name (stage: NAME, letters, digits and _), not %q", s.Name)
		}
		if len(s.Jobs) == 0 {
			return e.errorf(item, "stage %s has no jobs", s.Name)
		}
		p.Stages = append(p.Stages, s)
	}
	return nil
}

func (e *expander) jobs(n *yaml.Node) ([]*Job, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, e.errorf(n, "jobs: must be a list")
	}
	var out []*Job
	for _, item := range n.Content {
		if item.Kind == yaml.MappingNode && mapGet(item, "deployment") != nil {
			return nil, e.errorf(item, "deployment jobs are not supported: write a job whose steps call slipway (wait, test, promote)")
		}
		if err := e.keys(item, "a job", []string{"job", "displayName", "dependsOn", "condition", "variables", "steps", "pool",
			"timeoutInMinutes", "cancelTimeoutInMinutes", "continueOnError", "workspace", "container"}, refusedJob); err != nil {
			return nil, err
		}
		j := &Job{Pos: e.pos(item), TimeoutInMinutes: 60}
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i], item.Content[i+1]
			var err error
			switch k.Value {
			case "job":
				j.Name, err = e.str(v, "job")
			case "displayName":
				j.DisplayName, err = e.str(v, "displayName")
			case "dependsOn":
				j.DependsOn, err = e.strings(v, "dependsOn")
			case "condition":
				j.Condition, err = e.str(v, "condition")
			case "variables":
				j.Variables, err = e.decodeVariables(v)
			case "steps":
				j.Steps, err = e.steps(v)
			case "timeoutInMinutes":
				j.TimeoutInMinutes, err = e.integer(v, "timeoutInMinutes")
			case "cancelTimeoutInMinutes":
				j.CancelTimeoutInMinutes, err = e.integer(v, "cancelTimeoutInMinutes")
			case "continueOnError":
				j.ContinueOnError, err = e.boolean(v, "continueOnError")
			case "workspace":
				err = e.keys(v, "workspace:", []string{"clean"}, nil)
			case "container":
				j.Container, err = e.container(v)
			}
			if err != nil {
				return nil, err
			}
		}
		if j.Name == "" {
			j.Name = "Job"
			if len(out) > 0 {
				j.Name = "Job" + strconv.Itoa(len(out)+1)
			}
		}
		if !identRe.MatchString(j.Name) {
			return nil, e.errorf(item, "job name %q: use letters, digits and _", j.Name)
		}
		if len(j.Steps) == 0 {
			return nil, e.errorf(item, "job %s has no steps", j.Name)
		}
		out = append(out, j)
	}
	return out, nil
}

// container is a job's container: an image reference, or a mapping
// whose image: is one. Only the image is used: on the platform it is the
// image of the job's pod.
func (e *expander) container(n *yaml.Node) (string, error) {
	if n.Kind == yaml.ScalarNode {
		return e.str(n, "container")
	}
	if err := e.keys(n, "container:", []string{"image", "options", "env"}, map[string]string{
		"endpoint": "container: endpoint: is not supported; the platform pulls with its own account",
		"ports":    "container: ports: are not supported",
		"volumes":  "container: volumes: are not supported: a job's pod has no host paths",
	}); err != nil {
		return "", err
	}
	img := mapGet(n, "image")
	if img == nil {
		return "", e.errorf(n, "container: needs image:")
	}
	return e.str(img, "container: image")
}

// --- steps

var commonStepKeys = []string{"displayName", "name", "env", "workingDirectory", "failOnStderr", "continueOnError", "timeoutInMinutes", "condition", "enabled"}

var stepKeys = map[string][]string{
	KindScript:   nil,
	KindBash:     nil,
	KindCheckout: {"clean", "fetchDepth", "fetchTags", "lfs", "submodules", "path", "persistCredentials"},
	KindPublish:  {"artifact"},
	"task":       {"inputs"},
}

var refusedSteps = map[string]string{
	"pwsh":          "pwsh steps are not supported: there is no PowerShell here; use script: or bash:",
	"powershell":    "powershell steps are not supported: there is no PowerShell here; use script: or bash:",
	"download":      "download: steps are not supported by the local runner",
	"downloadBuild": "downloadBuild: steps are not supported by the local runner",
	"getPackage":    "getPackage: steps are not supported by the local runner",
	"restoreCache":  "restoreCache: steps are not supported by the local runner",
	"reviewApp":     "reviewApp: steps are not supported by the local runner",
}

func (e *expander) steps(n *yaml.Node) ([]*Step, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, e.errorf(n, "steps: must be a list")
	}
	var out []*Step
	for _, item := range n.Content {
		s, err := e.step(item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (e *expander) step(n *yaml.Node) (*Step, error) {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return nil, e.errorf(n, "a step is a mapping such as script: ..., bash: ..., checkout: self, publish: ... or task: ...")
	}
	kind := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		if msg, ok := refusedSteps[key]; ok {
			return nil, e.errorf(n.Content[i], "%s", msg)
		}
		if _, ok := stepKeys[key]; ok {
			if kind != "" {
				return nil, e.errorf(n.Content[i], "a step is one of script, bash, checkout, publish or task; this one has %s and %s", kind, key)
			}
			kind = key
		}
	}
	if kind == "" {
		return nil, e.errorf(n, "unknown step: a step starts with script:, bash:, checkout:, publish: or task:")
	}
	allowed := append(append([]string{kind}, stepKeys[kind]...), commonStepKeys...)
	if err := e.keys(n, "a "+kind+" step", allowed, nil); err != nil {
		return nil, err
	}
	s := &Step{Kind: kind, Pos: e.pos(n), Enabled: true}
	var inputs map[string]string
	var inputsNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "script", "bash":
			s.Script, err = e.str(v, k.Value)
		case "checkout":
			s.Checkout, err = e.str(v, "checkout")
			if err == nil && s.Checkout != "self" && s.Checkout != "none" {
				err = e.errorf(v, "checkout: %s: only self and none are supported (other repositories are not)", s.Checkout)
			}
		case "clean":
			s.Clean, err = e.boolean(v, "clean")
		case "fetchDepth":
			s.FetchDepth, err = e.integer(v, "fetchDepth")
		case "fetchTags", "lfs", "persistCredentials":
			_, err = e.boolean(v, k.Value)
		case "submodules", "path":
			_, err = e.str(v, k.Value)
		case "publish":
			s.Publish, err = e.str(v, "publish")
		case "artifact":
			s.Artifact, err = e.str(v, "artifact")
		case "task":
			s.Task, err = e.str(v, "task")
		case "inputs":
			inputsNode = v
			if v.Kind != yaml.MappingNode {
				return nil, e.errorf(v, "inputs: must be a mapping")
			}
			inputs = map[string]string{}
			for j := 0; j+1 < len(v.Content); j += 2 {
				val, err := e.str(v.Content[j+1], "input "+v.Content[j].Value)
				if err != nil {
					return nil, err
				}
				inputs[v.Content[j].Value] = val
			}
		case "displayName":
			s.DisplayName, err = e.str(v, "displayName")
		case "name":
			s.Name, err = e.str(v, "name")
			if err == nil && !identRe.MatchString(s.Name) {
				err = e.errorf(v, "step name %q: use letters, digits and _", s.Name)
			}
		case "env":
			s.Env, err = e.decodeVariables(v)
			if err == nil && v.Kind != yaml.MappingNode {
				err = e.errorf(v, "env: must be a mapping of names to values")
			}
		case "workingDirectory":
			s.WorkingDirectory, err = e.str(v, "workingDirectory")
		case "failOnStderr":
			s.FailOnStderr, err = e.boolean(v, "failOnStderr")
		case "continueOnError":
			s.ContinueOnError, err = e.boolean(v, "continueOnError")
		case "timeoutInMinutes":
			s.TimeoutInMinutes, err = e.integer(v, "timeoutInMinutes")
		case "condition":
			s.Condition, err = e.str(v, "condition")
		case "enabled":
			s.Enabled, err = e.boolean(v, "enabled")
		}
		if err != nil {
			return nil, err
		}
	}
	if kind == KindPublish && s.Publish == "" {
		return nil, e.errorf(n, "publish: needs the path to publish")
	}
	if kind == "task" {
		if err := e.mapTask(s, inputs, inputsNode, n); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Tasks lists the Azure DevOps tasks the local runner understands and what
// each becomes here. Any other task is refused before the run starts.
var Tasks = map[string]string{
	"CmdLine@2":                 "runs inputs.script like a script: step",
	"Bash@3":                    "runs inputs.script (targetType inline) or inputs.filePath with inputs.arguments like a bash: step",
	"PublishPipelineArtifact@1": "publishes inputs.targetPath as inputs.artifact like a publish: step",
	"HelmInstaller@1":           "nothing to install: slipway has Helm built in (Helm v4 SDK)",
	"HelmInstaller@0":           "nothing to install: slipway has Helm built in (Helm v4 SDK)",
	"GoTool@0":                  "checks that the machine's Go matches inputs.version (it does not download Go)",
}

func (e *expander) mapTask(s *Step, inputs map[string]string, inputsNode, at *yaml.Node) error {
	if _, ok := Tasks[s.Task]; !ok {
		var names []string
		for name := range Tasks {
			names = append(names, name)
		}
		sort.Strings(names)
		return e.errorf(at, "task %s is not supported by the local runner (supported: %s)", s.Task, strings.Join(names, ", "))
	}
	allowedInputs := map[string][]string{
		"CmdLine@2":                 {"script", "workingDirectory", "failOnStderr"},
		"Bash@3":                    {"targetType", "script", "filePath", "arguments", "workingDirectory", "failOnStderr"},
		"PublishPipelineArtifact@1": {"targetPath", "path", "artifact", "artifactName", "publishLocation"},
		"HelmInstaller@1":           {"helmVersionToInstall"},
		"HelmInstaller@0":           {"helmVersion", "checkLatestHelmVersion", "installKubectl", "kubectlVersion"},
		"GoTool@0":                  {"version", "goPath", "goBin"},
	}[s.Task]
	for name := range inputs {
		ok := false
		for _, a := range allowedInputs {
			ok = ok || a == name
		}
		if !ok {
			n := inputsNode
			for j := 0; n != nil && j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == name {
					n = n.Content[j]
					break
				}
			}
			return e.errorf(n, "input %q of %s is not supported (supported: %s)", name, s.Task, strings.Join(allowedInputs, ", "))
		}
	}
	failOnStderr := func() error {
		if v, ok := inputs["failOnStderr"]; ok {
			b, err := strconv.ParseBool(strings.ToLower(v))
			if err != nil {
				return e.errorf(at, "failOnStderr must be true or false")
			}
			s.FailOnStderr = b
		}
		if wd := inputs["workingDirectory"]; wd != "" {
			s.WorkingDirectory = wd
		}
		return nil
	}
	switch s.Task {
	case "CmdLine@2":
		s.Kind, s.Script = KindScript, inputs["script"]
		return failOnStderr()
	case "Bash@3":
		s.Kind = KindBash
		switch inputs["targetType"] {
		case "", "filePath":
			if inputs["filePath"] == "" && inputs["targetType"] == "filePath" {
				return e.errorf(at, "Bash@3 with targetType filePath needs inputs.filePath")
			}
			if inputs["filePath"] != "" {
				s.File, s.Arguments = inputs["filePath"], inputs["arguments"]
			} else {
				s.Script = inputs["script"]
			}
		case "inline":
			s.Script = inputs["script"]
		default:
			return e.errorf(at, "Bash@3 targetType %q: want inline or filePath", inputs["targetType"])
		}
		return failOnStderr()
	case "PublishPipelineArtifact@1":
		s.Kind = KindPublish
		s.Publish = cmp.Or(inputs["targetPath"], inputs["path"])
		s.Artifact = cmp.Or(inputs["artifact"], inputs["artifactName"])
		if s.Publish == "" {
			return e.errorf(at, "PublishPipelineArtifact@1 needs inputs.targetPath")
		}
	case "HelmInstaller@1", "HelmInstaller@0":
		s.Kind, s.Message = KindNoop, Tasks[s.Task]
	case "GoTool@0":
		s.Kind, s.Version = KindGoTool, inputs["version"]
	}
	return nil
}

// --- whole-pipeline checks

// check makes sure names are unique and every dependsOn names something
// that exists, without cycles.
func (p *Pipeline) check(e *expander) error {
	stages := map[string]*Stage{}
	for _, s := range p.Stages {
		if stages[s.Name] != nil {
			return &Error{Pos: s.Pos, Msg: fmt.Sprintf("stage %s is defined twice", s.Name)}
		}
		stages[s.Name] = s
		jobs := map[string]bool{}
		for _, j := range s.Jobs {
			if jobs[j.Name] {
				return &Error{Pos: j.Pos, Msg: fmt.Sprintf("job %s is defined twice in stage %s", j.Name, s.Name)}
			}
			jobs[j.Name] = true
		}
		for _, j := range s.Jobs {
			for _, d := range j.DependsOn {
				if !jobs[d] {
					return &Error{Pos: j.Pos, Msg: fmt.Sprintf("job %s depends on %s, which is not a job of stage %s", j.Name, d, s.Name)}
				}
			}
		}
		if _, err := OrderJobs(s.Jobs); err != nil {
			return &Error{Pos: s.Pos, Msg: err.Error()}
		}
	}
	for _, s := range p.Stages {
		for _, d := range s.DependsOn {
			if stages[d] == nil {
				return &Error{Pos: s.Pos, Msg: fmt.Sprintf("stage %s depends on %s, which is not a stage", s.Name, d)}
			}
		}
	}
	if _, err := p.OrderStages(); err != nil {
		return &Error{Pos: Pos{File: p.File}, Msg: err.Error()}
	}
	return nil
}

// StageDeps returns the stages s waits for (the previous one by default).
func (p *Pipeline) StageDeps(s *Stage) []string {
	if s.DependsOn != nil {
		return s.DependsOn
	}
	for i, x := range p.Stages {
		if x == s && i > 0 {
			return []string{p.Stages[i-1].Name}
		}
	}
	return nil
}

// OrderStages returns the stages in an order that respects dependsOn,
// keeping file order where there is a choice.
func (p *Pipeline) OrderStages() ([]*Stage, error) {
	return order(p.Stages, "stage", func(s *Stage) string { return s.Name }, p.StageDeps)
}

// OrderJobs returns a stage's jobs in an order that respects dependsOn.
func OrderJobs(jobs []*Job) ([]*Job, error) {
	return order(jobs, "job", func(j *Job) string { return j.Name }, func(j *Job) []string { return j.DependsOn })
}

func order[T any](items []T, what string, name func(T) string, deps func(T) []string) ([]T, error) {
	names := make([]string, len(items))
	depsOf := map[string][]string{}
	byName := map[string]T{}
	for i, it := range items {
		names[i] = name(it)
		depsOf[names[i]] = deps(it)
		byName[names[i]] = it
	}
	sorted, err := topo(names, depsOf, what)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(sorted))
	for i, n := range sorted {
		out[i] = byName[n]
	}
	return out, nil
}

func topo(names []string, deps map[string][]string, what string) ([]string, error) {
	done := map[string]bool{}
	var out []string
	for len(out) < len(names) {
		progress := false
		for _, n := range names {
			if done[n] {
				continue
			}
			ready := true
			for _, d := range deps[n] {
				ready = ready && done[d]
			}
			if ready {
				done[n] = true
				out = append(out, n)
				progress = true
			}
		}
		if !progress {
			var stuck []string
			for _, n := range names {
				if !done[n] {
					stuck = append(stuck, n)
				}
			}
			return nil, fmt.Errorf("the %ss %s depend on each other in a cycle", what, strings.Join(stuck, ", "))
		}
	}
	return out, nil
}
