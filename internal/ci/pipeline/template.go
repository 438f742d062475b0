package pipeline

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/slipway-dev/slipway/internal/ci/expr"
)

// maxTemplateDepth stops a template that includes itself.
const maxTemplateDepth = 50

// expander runs the template phase.
type expander struct {
	// root is the repository's root: templates must stay inside it.
	root string
	// resources are the roots of the repositories the pipeline declares
	// (resources: repositories:), by alias; a template of one is named
	// path@alias, and stays inside its repository.
	resources map[string]string
	declared  map[string]resource
	// files records which file each node came from.
	files map[*yaml.Node]string
	depth int

	limits Limits
	// read counts the files read; made the nodes made (see Limits).
	read, made int
	// overBudget is set once made passes the limit; expansion stops at
	// the next check with it.
	overBudget *yaml.Node
}

// spend counts n nodes made at a place, and fails once the pipeline has
// made more than its budget.
func (e *expander) spend(at *yaml.Node, n int) error {
	e.made += n
	if e.made > e.limits.Nodes {
		return e.errorf(at, "the pipeline expands to more than %d YAML nodes (through templates and ${{ each }}): expand less, or split it into several pipelines", e.limits.Nodes)
	}
	return nil
}

// scope is what `${{ }}` expressions see.
type scope struct {
	file   string
	values map[string]any
}

func (s *scope) with(name string, v any) *scope {
	values := make(map[string]any, len(s.values)+1)
	for k, x := range s.values {
		values[k] = x
	}
	values[name] = v
	return &scope{file: s.file, values: values}
}

func (e *expander) errorf(n *yaml.Node, format string, args ...any) error {
	return &Error{Pos: e.pos(n), Msg: fmt.Sprintf(format, args...)}
}

func (e *expander) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{}
	}
	return Pos{File: e.files[n], Line: n.Line}
}

// parseFile reads a YAML file into a node tree and records its nodes.
func (e *expander) parseFile(path string) (*yaml.Node, error) {
	e.read++
	if e.read > e.limits.Files+1 {
		return nil, &Error{Pos: Pos{File: e.rel(path)}, Msg: fmt.Sprintf("the pipeline includes templates more than %d times", e.limits.Files)}
	}
	data, err := e.readFile(path)
	if err != nil {
		return nil, &Error{Pos: Pos{File: e.rel(path)}, Msg: err.Error()}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(e.rel(path), err)
	}
	if len(doc.Content) == 0 {
		return nil, &Error{Pos: Pos{File: e.rel(path)}, Msg: "the file is empty"}
	}
	root := doc.Content[0]
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		e.files[n] = e.rel(path)
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			return e.errorf(n, "YAML anchors and aliases are not part of Azure Pipelines YAML")
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, e.errorf(root, "a pipeline file must be a mapping of keywords (trigger:, steps:, ...)")
	}
	return root, nil
}

// readFile reads a file of the repository: a regular file inside the
// root (a symbolic link is followed only while it stays inside), at most
// FileBytes long.
func (e *expander) readFile(path string) ([]byte, error) {
	base, _, ok := e.rootOf(path)
	if !ok {
		return nil, errors.New("the file is outside the repository")
	}
	rel, _ := filepath.Rel(base, path)
	root, err := os.OpenRoot(base)
	if err != nil {
		return nil, fmt.Errorf("cannot read the repository: %w", err)
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes") {
			return nil, errors.New("the file is a symbolic link to outside the repository")
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("cannot read the file: no such file in the repository")
		}
		return nil, fmt.Errorf("cannot read the file: %v", errors.Unwrap(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if info.Size() > e.limits.FileBytes {
		return nil, fmt.Errorf("the file is %d bytes; a pipeline file or template may be at most %d", info.Size(), e.limits.FileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, e.limits.FileBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > e.limits.FileBytes {
		return nil, fmt.Errorf("the file is longer than %d bytes, the most a pipeline file or template may be", e.limits.FileBytes)
	}
	return data, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns the YAML parser's message into file:line: message.
func yamlError(file string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Pos: Pos{File: file, Line: line}, Msg: "not valid YAML: " + m[2]}
	}
	return &Error{Pos: Pos{File: file}, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// rel names a file as messages show it: its path in its repository,
// with @alias for a repository resource's.
func (e *expander) rel(path string) string {
	base, alias, ok := e.rootOf(path)
	if !ok {
		return path
	}
	r, _ := filepath.Rel(base, path)
	if alias != "" {
		return filepath.ToSlash(r) + "@" + alias
	}
	return filepath.ToSlash(r)
}

// rootOf finds the repository a path is in: the pipeline's own (alias "")
// or a resource's.
func (e *expander) rootOf(path string) (root, alias string, ok bool) {
	inside := func(base string) bool {
		r, err := filepath.Rel(base, path)
		return err == nil && r != ".." && !strings.HasPrefix(r, "../")
	}
	for a, base := range e.resources {
		if inside(base) {
			return base, a, true
		}
	}
	if inside(e.root) {
		return e.root, "", true
	}
	return "", "", false
}

// templatePath resolves a template reference made in file (as rel names
// it): path@alias is relative to that repository's root; a plain path is
// relative to the including file, in the including file's repository.
func (e *expander) templatePath(ref, file string) (path, base string, err error) {
	ref, alias, _ := strings.Cut(ref, "@")
	if alias == "self" {
		alias = ""
	}
	incFile, incAlias, _ := strings.Cut(file, "@")
	base = e.root
	if alias != "" {
		r, ok := e.resources[alias]
		if !ok {
			return "", "", fmt.Errorf("no repository resource %q: declare it under resources: repositories: (repository: %s, type: git, name: TEAM/REPO)", alias, alias)
		}
		base = r
	} else if incAlias != "" {
		base = e.resources[incAlias]
	}
	switch {
	case alias != "" || strings.HasPrefix(ref, "/"):
		path = filepath.Join(base, filepath.FromSlash(strings.TrimPrefix(ref, "/")))
	default:
		path = filepath.Join(filepath.Dir(filepath.Join(base, filepath.FromSlash(incFile))), filepath.FromSlash(ref))
	}
	if r, rerr := filepath.Rel(base, path); rerr != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", "", fmt.Errorf("template %s is outside the repository", ref)
	}
	return path, base, nil
}

// node makes a new node placed where at is.
func (e *expander) node(at *yaml.Node, n *yaml.Node) *yaml.Node {
	n.Line, n.Column = at.Line, at.Column
	e.files[n] = e.files[at]
	e.made++
	if e.made > e.limits.Nodes && e.overBudget == nil {
		e.overBudget = at
	}
	return n
}

// --- directives and expressions in text

var (
	fullExpr = regexp.MustCompile(`^\s*\$\{\{(.*)\}\}\s*$`)
	anyExpr  = regexp.MustCompile(`\$\{\{(.*?)\}\}`)
)

type directive struct {
	kind string // if, elseif, else, each, insert
	expr string
	each string // the loop variable
}

var eachRe = regexp.MustCompile(`^each\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.+)$`)

// parseDirective recognises `${{ if x }}`, `${{ elseif x }}`,
// `${{ else }}`, `${{ each v in x }}` and `${{ insert }}` keys.
func parseDirective(key string) (directive, bool) {
	m := fullExpr.FindStringSubmatch(key)
	if m == nil {
		return directive{}, false
	}
	body := strings.TrimSpace(m[1])
	word, rest, _ := strings.Cut(body, " ")
	switch word {
	case "if", "elseif":
		return directive{kind: word, expr: strings.TrimSpace(rest)}, true
	case "else", "insert":
		if strings.TrimSpace(rest) == "" {
			return directive{kind: word}, true
		}
	case "each":
		if mm := eachRe.FindStringSubmatch(body); mm != nil {
			return directive{kind: "each", each: mm[1], expr: mm[2]}, true
		}
	}
	return directive{}, false
}

func (e *expander) eval(n *yaml.Node, src string, sc *scope) (any, error) {
	v, err := expr.Eval(strings.TrimSpace(src), &expr.Context{Values: sc.values})
	if err != nil {
		return nil, e.errorf(n, "%v", err)
	}
	return v, nil
}

// interpolate replaces each `${{ x }}` inside a longer text.
func (e *expander) interpolate(n *yaml.Node, sc *scope) (string, error) {
	var firstErr error
	out := anyExpr.ReplaceAllStringFunc(n.Value, func(m string) string {
		v, err := e.eval(n, anyExpr.FindStringSubmatch(m)[1], sc)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return expr.String(v)
	})
	return out, firstErr
}

// --- the tree walk

// templateLists are the keys whose items may be `- template: file`.
var templateLists = map[string]bool{"steps": true, "jobs": true, "stages": true, "variables": true}

func (e *expander) value(n *yaml.Node, sc *scope, listKind string) (*yaml.Node, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!str" || n.Style != 0 || n.Tag == "" {
			if m := fullExpr.FindStringSubmatch(n.Value); m != nil {
				v, err := e.eval(n, m[1], sc)
				if err != nil {
					return nil, err
				}
				return e.toNode(n, v), nil
			}
			if strings.Contains(n.Value, "${{") {
				s, err := e.interpolate(n, sc)
				if err != nil {
					return nil, err
				}
				return e.node(n, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}), nil
			}
		}
		return n, nil
	case yaml.MappingNode:
		return e.mapping(n, sc)
	case yaml.SequenceNode:
		return e.sequence(n, sc, listKind)
	}
	return n, nil
}

func (e *expander) mapping(n *yaml.Node, sc *scope) (*yaml.Node, error) {
	out := e.node(n, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
	var chain *bool // whether a branch of the current if-chain was taken
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if d, ok := parseDirective(k.Value); ok && k.Kind == yaml.ScalarNode {
			pairs, next, err := e.directive(k, v, d, sc, chain, func(body *yaml.Node, sc *scope) ([]*yaml.Node, error) {
				if body.Kind != yaml.MappingNode {
					return nil, e.errorf(body, "inside a mapping, the body of %s must be a mapping", strings.TrimSpace(k.Value))
				}
				m, err := e.mapping(body, sc)
				if err != nil {
					return nil, err
				}
				return m.Content, nil
			})
			if err != nil {
				return nil, err
			}
			chain = next
			out.Content = append(out.Content, pairs...)
			continue
		}
		chain = nil
		key := k
		if k.Kind == yaml.ScalarNode && strings.Contains(k.Value, "${{") {
			s, err := e.interpolate(k, sc)
			if err != nil {
				return nil, err
			}
			key = e.node(k, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
		}
		listKind := ""
		if templateLists[key.Value] {
			listKind = key.Value
		}
		val, err := e.value(v, sc, listKind)
		if err != nil {
			return nil, err
		}
		out.Content = append(out.Content, key, val)
	}
	return out, nil
}

// directive applies one if/elseif/else/each/insert; body expands its value.
// chain carries whether an earlier branch of the same if-chain was taken.
func (e *expander) directive(k, v *yaml.Node, d directive, sc *scope, chain *bool,
	body func(*yaml.Node, *scope) ([]*yaml.Node, error)) ([]*yaml.Node, *bool, error) {
	taken := func(b bool) *bool { return &b }
	switch d.kind {
	case "if":
		ok, err := e.cond(k, d.expr, sc)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, taken(false), nil
		}
		out, err := body(v, sc)
		return out, taken(true), err
	case "elseif", "else":
		if chain == nil {
			return nil, nil, e.errorf(k, "${{ %s }} without an ${{ if }} before it", d.kind)
		}
		if *chain {
			return nil, chain, nil
		}
		if d.kind == "elseif" {
			ok, err := e.cond(k, d.expr, sc)
			if err != nil || !ok {
				return nil, taken(false), err
			}
		}
		out, err := body(v, sc)
		return out, taken(true), err
	case "insert":
		out, err := body(v, sc)
		return out, nil, err
	case "each":
		coll, err := e.eval(k, d.expr, sc)
		if err != nil {
			return nil, nil, err
		}
		var items []any
		switch c := coll.(type) {
		case []any:
			items = c
		case map[string]any:
			for _, key := range sortedKeys(c) {
				items = append(items, map[string]any{"key": key, "value": c[key]})
			}
		case nil:
		default:
			return nil, nil, e.errorf(k, "${{ each }} needs a list or an object, not %q", expr.String(coll))
		}
		var out []*yaml.Node
		for _, it := range items {
			part, err := body(v, sc.with(d.each, it))
			if err != nil {
				return nil, nil, err
			}
			// Each item's entries count, made or reused.
			if err := e.spend(k, len(part)); err != nil {
				return nil, nil, err
			}
			if e.overBudget != nil {
				return nil, nil, e.spend(e.overBudget, 0)
			}
			out = append(out, part...)
		}
		return out, nil, nil
	}
	return nil, nil, e.errorf(k, "unknown directive")
}

func (e *expander) cond(n *yaml.Node, src string, sc *scope) (bool, error) {
	v, err := e.eval(n, src, sc)
	return expr.Truthy(v), err
}

func (e *expander) sequence(n *yaml.Node, sc *scope, listKind string) (*yaml.Node, error) {
	out := e.node(n, &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"})
	var chain *bool
	for _, item := range n.Content {
		// - ${{ if x }}: [items] (or a single item as a mapping)
		if item.Kind == yaml.MappingNode && len(item.Content) == 2 && item.Content[0].Kind == yaml.ScalarNode {
			if d, ok := parseDirective(item.Content[0].Value); ok {
				items, next, err := e.directive(item.Content[0], item.Content[1], d, sc, chain, func(body *yaml.Node, sc *scope) ([]*yaml.Node, error) {
					if body.Kind == yaml.SequenceNode {
						s, err := e.sequence(body, sc, listKind)
						if err != nil {
							return nil, err
						}
						return s.Content, nil
					}
					wrapped := e.node(body, &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{body}})
					s, err := e.sequence(wrapped, sc, listKind)
					if err != nil {
						return nil, err
					}
					return s.Content, nil
				})
				if err != nil {
					return nil, err
				}
				chain = next
				out.Content = append(out.Content, items...)
				continue
			}
		}
		chain = nil
		// - ${{ parameters.steps }}: a list is spliced in.
		if item.Kind == yaml.ScalarNode && fullExpr.MatchString(item.Value) {
			v, err := e.value(item, sc, listKind)
			if err != nil {
				return nil, err
			}
			if v.Kind == yaml.SequenceNode {
				out.Content = append(out.Content, v.Content...)
			} else if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
				out.Content = append(out.Content, v)
			}
			continue
		}
		// - template: file.yml
		if listKind != "" && item.Kind == yaml.MappingNode && mapGet(item, "template") != nil {
			items, _, err := e.include(item, sc, listKind)
			if err != nil {
				return nil, err
			}
			out.Content = append(out.Content, items...)
			continue
		}
		v, err := e.value(item, sc, "")
		if err != nil {
			return nil, err
		}
		out.Content = append(out.Content, v)
	}
	return out, nil
}

// include expands a `- template: path` item of a steps, jobs, stages or
// variables list into the items the template holds. With listKind "" (a
// template the pipeline extends) the template's own list, of stages, jobs
// or steps, is taken; the kind taken is returned.
func (e *expander) include(item *yaml.Node, sc *scope, listKind string) ([]*yaml.Node, string, error) {
	var pathNode, paramsNode *yaml.Node
	for i := 0; i+1 < len(item.Content); i += 2 {
		switch k := item.Content[i]; k.Value {
		case "template":
			pathNode = item.Content[i+1]
		case "parameters":
			paramsNode = item.Content[i+1]
		default:
			return nil, "", e.errorf(k, "unknown keyword %q beside template: (only parameters: may go with it)", k.Value)
		}
	}
	pathValue, err := e.value(pathNode, sc, "")
	if err != nil {
		return nil, "", err
	}
	ref := pathValue.Value
	path, _, err := e.templatePath(ref, sc.file)
	if err != nil {
		return nil, "", e.errorf(pathNode, "%v", err)
	}
	if e.depth >= maxTemplateDepth {
		return nil, "", e.errorf(pathNode, "templates nest more than %d deep: does %s include itself?", maxTemplateDepth, ref)
	}
	given := map[string]any{}
	if paramsNode != nil {
		p, err := e.value(paramsNode, sc, "")
		if err != nil {
			return nil, "", err
		}
		if p.Kind != yaml.MappingNode {
			return nil, "", e.errorf(paramsNode, "parameters: must be a mapping of names to values")
		}
		m, _ := toAny(p).(map[string]any)
		given = m
	}
	if e.overBudget != nil {
		return nil, "", e.spend(e.overBudget, 0)
	}
	root, err := e.parseFile(path)
	if err != nil {
		if pe, ok := err.(*Error); ok && pe.Pos.Line == 0 {
			return nil, "", e.errorf(pathNode, "template %s: %s", ref, pe.Msg)
		}
		return nil, "", err
	}
	var body, decl *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch k := root.Content[i]; k.Value {
		case "parameters":
			decl = root.Content[i+1]
		case "steps", "jobs", "stages", "variables":
			if listKind == "" && k.Value != "variables" {
				listKind = k.Value // extends: the list the template holds
			}
			if k.Value != listKind {
				return nil, "", e.errorf(pathNode, "%s is a %s template, used here as a %s template", ref, k.Value, cmp.Or(listKind, "stages, jobs or steps"))
			}
			body = root.Content[i+1]
		default:
			what := cmp.Or(listKind, "stages, jobs or steps")
			return nil, "", e.errorf(k, "unknown keyword %q in a %s template (a template holds parameters: and %s:)", k.Value, what, what)
		}
	}
	if body == nil && listKind == "" {
		return nil, "", e.errorf(pathNode, "template %s has no stages:, jobs: or steps: to extend", ref)
	}
	if body == nil {
		return nil, "", e.errorf(pathNode, "template %s has no %s:", ref, listKind)
	}
	params, err := e.resolveParameters(decl, given, pathNode, ref)
	if err != nil {
		return nil, "", err
	}
	values := map[string]any{}
	for _, p := range params {
		values[p.Name] = p.Value
	}
	inner := &scope{file: e.rel(path), values: map[string]any{"parameters": values, "variables": sc.values["variables"]}}
	e.depth++
	defer func() { e.depth-- }()
	if listKind == "variables" && body.Kind == yaml.MappingNode {
		m, err := e.mapping(body, inner)
		if err != nil {
			return nil, "", err
		}
		// A map of variables becomes name/value items of the list.
		var items []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			items = append(items, e.node(m.Content[i], &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
				e.node(m.Content[i], &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name"}), m.Content[i],
				e.node(m.Content[i], &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "value"}), m.Content[i+1],
			}}))
		}
		return items, listKind, nil
	}
	if body.Kind != yaml.SequenceNode {
		return nil, "", e.errorf(body, "%s: must be a list", listKind)
	}
	s, err := e.sequence(body, inner, listKind)
	if err != nil {
		return nil, "", err
	}
	return s.Content, listKind, nil
}

// resolveParameters checks given values against a parameters: declaration
// (the list form, or the older name: default map form).
func (e *expander) resolveParameters(decl *yaml.Node, given map[string]any, at *yaml.Node, what string) ([]Parameter, error) {
	var params []Parameter
	if decl != nil {
		switch decl.Kind {
		case yaml.SequenceNode:
			for _, item := range decl.Content {
				p, err := e.parameter(item)
				if err != nil {
					return nil, err
				}
				params = append(params, p)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(decl.Content); i += 2 {
				params = append(params, Parameter{Name: decl.Content[i].Value, Type: "object", Default: toAny(decl.Content[i+1])})
			}
		default:
			return nil, e.errorf(decl, "parameters: must be a list of parameters")
		}
	}
	known := map[string]bool{}
	for i := range params {
		p := &params[i]
		known[strings.ToLower(p.Name)] = true
		v, ok := lookupFold(given, p.Name)
		if !ok {
			if p.Default == nil && p.Type != "object" {
				return nil, e.errorf(at, "%s: parameter %s has no default and no value was given", what, p.Name)
			}
			v = p.Default
		}
		cv, err := convertParameter(p, v)
		if err != nil {
			return nil, e.errorf(at, "%s: parameter %s: %v", what, p.Name, err)
		}
		p.Value = cv
	}
	for _, name := range sortedKeys(given) {
		if !known[strings.ToLower(name)] {
			return nil, e.errorf(at, "%s has no parameter %q", what, name)
		}
	}
	return params, nil
}

var parameterTypes = map[string]bool{"string": true, "number": true, "boolean": true, "object": true,
	"step": true, "stepList": true, "job": true, "jobList": true, "stage": true, "stageList": true}

func (e *expander) parameter(n *yaml.Node) (Parameter, error) {
	if n.Kind != yaml.MappingNode {
		return Parameter{}, e.errorf(n, "a parameter is a mapping with name:, type: and default:")
	}
	p := Parameter{Type: "string"}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			p.Name = v.Value
		case "displayName":
			p.DisplayName = v.Value
		case "type":
			if !parameterTypes[v.Value] {
				return p, e.errorf(v, "parameter type %q is not supported (string, number, boolean, object, step, stepList, job, jobList, stage, stageList)", v.Value)
			}
			p.Type = v.Value
		case "default":
			p.Default = toAny(v)
		case "values":
			list, ok := toAny(v).([]any)
			if !ok {
				return p, e.errorf(v, "values: must be a list")
			}
			p.Values = list
		default:
			return p, e.errorf(k, "unknown keyword %q in a parameter (name, displayName, type, default, values)", k.Value)
		}
	}
	if p.Name == "" {
		return p, e.errorf(n, "a parameter needs a name:")
	}
	return p, nil
}

// convertParameter checks and converts a value to the parameter's type.
func convertParameter(p *Parameter, v any) (any, error) {
	switch p.Type {
	case "boolean":
		switch x := v.(type) {
		case bool:
			v = x
		case string:
			b, err := strconv.ParseBool(strings.ToLower(x))
			if err != nil {
				return nil, fmt.Errorf("%q is not a boolean", x)
			}
			v = b
		default:
			return nil, fmt.Errorf("%v is not a boolean", v)
		}
	case "number":
		switch x := v.(type) {
		case float64:
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", x)
			}
			v = f
		default:
			return nil, fmt.Errorf("%v is not a number", v)
		}
	case "string":
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("want a string, got a %s", kindOf(v))
		}
		v = expr.String(v)
	case "stepList", "jobList", "stageList":
		if _, ok := v.([]any); !ok && v != nil {
			return nil, fmt.Errorf("want a list of %ss", strings.TrimSuffix(p.Type, "List"))
		}
	case "step", "job", "stage":
		if _, ok := v.(map[string]any); !ok {
			return nil, fmt.Errorf("want a %s (a mapping)", p.Type)
		}
	}
	if len(p.Values) > 0 {
		ok := false
		for _, allowed := range p.Values {
			ok = ok || expr.String(allowed) == expr.String(v)
		}
		if !ok {
			var list []string
			for _, a := range p.Values {
				list = append(list, expr.String(a))
			}
			return nil, fmt.Errorf("%q is not one of %s", expr.String(v), strings.Join(list, ", "))
		}
	}
	return v, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	}
	return "value"
}

func lookupFold(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
