package pipeline

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Repository resources, extends: and required templates: how a platform
// team gives every team one vetted pipeline, as Azure organisations do
// (templates in a repository of their own, pipelines that extend them,
// and a check that they do).

// resource is a repository a pipeline declares.
type resource struct {
	name, ref string
}

var platformRepo = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)+$`)

// declareResources checks resources: and checks out each repository it
// declares, so that templates may be read from it by alias.
func (e *expander) declareResources(n *yaml.Node, checkout func(name, ref string) (string, error)) error {
	refused := map[string]string{
		"pipelines":  "pipeline resources are not supported (runs start on push or with slipway pipeline run)",
		"containers": "container resources are not supported; give a job's image with container: IMAGE",
		"builds":     "build resources are not supported",
		"packages":   "package resources are not supported",
		"webhooks":   "webhook resources are not supported",
	}
	if err := e.keys(n, "resources:", []string{"repositories"}, refused); err != nil {
		return err
	}
	repos := mapGet(n, "repositories")
	if repos == nil || repos.Kind != yaml.SequenceNode {
		return e.errorf(n, "resources: repositories: must be a list")
	}
	for _, r := range repos.Content {
		if err := e.keys(r, "a repository resource", []string{"repository", "type", "name", "ref", "endpoint"}, map[string]string{
			"trigger": "triggers on a repository resource are not supported; a push to it does not start this pipeline",
		}); err != nil {
			return err
		}
		var alias, typ, name, ref string
		for i := 0; i+1 < len(r.Content); i += 2 {
			k, v := r.Content[i], r.Content[i+1]
			s, err := e.str(v, k.Value)
			if err != nil {
				return err
			}
			switch k.Value {
			case "repository":
				alias = s
			case "type":
				typ = s
			case "name":
				name = s
			case "ref":
				ref = s
			case "endpoint":
				return e.errorf(k, "service connections (endpoint:) are not supported: repositories come from the platform's git server")
			}
		}
		switch {
		case !identRe.MatchString(alias) || alias == "self":
			return e.errorf(r, "a repository resource needs repository: ALIAS (letters, digits, _), not %q", alias)
		case typ != "git":
			return e.errorf(r, "repository %s: type %q is not supported; use type: git, a repository of the platform's git server", alias, typ)
		case !platformRepo.MatchString(name) || strings.Contains(name, ".."):
			return e.errorf(r, "repository %s: name: must be TEAM/REPO of the platform's git server, not %q", alias, name)
		case e.resources[alias] != "":
			return e.errorf(r, "repository %s is declared twice", alias)
		case checkout == nil:
			return e.errorf(r, "repository resources are not available here")
		}
		if ref == "" {
			ref = DefaultRef
		} else if !strings.HasPrefix(ref, "refs/") {
			ref = "refs/heads/" + ref
		}
		dir, err := checkout(name, ref)
		if err != nil {
			return e.errorf(r, "repository %s (%s at %s): %v", alias, name, ref, err)
		}
		if dir, err = filepath.Abs(dir); err != nil {
			return err
		}
		if e.resources == nil {
			e.resources, e.declared = map[string]string{}, map[string]resource{}
		}
		e.resources[alias], e.declared[alias] = dir, resource{name, ref}
	}
	return nil
}

// extend makes the pipeline's stages, jobs or steps from the template it
// extends (extends: template:, parameters:), into root.
func (e *expander) extend(root, ext *yaml.Node, sc *scope, p *Pipeline) error {
	for _, k := range []string{"stages", "jobs", "steps"} {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == k {
				return e.errorf(root.Content[i], "a pipeline that extends a template has no %s: of its own: the template gives them", k)
			}
		}
	}
	if err := e.keys(ext, "extends:", []string{"template", "parameters"}, nil); err != nil {
		return err
	}
	tn := mapGet(ext, "template")
	if tn == nil {
		return e.errorf(ext, "extends: needs template: PATH[@REPOSITORY]")
	}
	tv, err := e.value(tn, sc, "")
	if err != nil {
		return err
	}
	// The template holds the stages, jobs or steps the pipeline has.
	nodes, kind, err := e.include(ext, sc, "")
	if err != nil {
		return err
	}
	root.Content = append(root.Content,
		e.node(ext, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kind}),
		e.node(ext, &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: nodes}))
	ref, alias, _ := strings.Cut(tv.Value, "@")
	t := &Template{Path: strings.TrimPrefix(filepath.ToSlash(filepath.Clean("/"+ref)), "/")}
	if alias != "" && alias != "self" {
		t.Repo, t.Ref = e.declared[alias].name, e.declared[alias].ref
	} else if _, incAlias, _ := strings.Cut(sc.file, "@"); incAlias != "" {
		t.Repo, t.Ref = e.declared[incAlias].name, e.declared[incAlias].ref
	}
	p.Extends = t
	return nil
}

// checkRequired refuses a pipeline that does not extend one of the
// templates the platform requires of it.
func (e *expander) checkRequired(p *Pipeline, extends *yaml.Node, required []Template) error {
	if len(required) == 0 {
		return nil
	}
	var names []string
	for _, r := range required {
		want := r
		if want.Ref == "" {
			want.Ref = DefaultRef
		}
		if p.Extends != nil && *p.Extends == want {
			return nil
		}
		names = append(names, want.String())
	}
	at := Pos{File: p.File, Line: 1}
	got := "extends nothing"
	if extends != nil {
		at = e.pos(extends)
		got = "extends " + p.Extends.String()
	}
	return &Error{Pos: at, Msg: fmt.Sprintf("the platform requires this team's pipelines to extend %s; this one %s (declare the repository under resources: repositories: and write extends: template: PATH@ALIAS)",
		strings.Join(names, " or "), got)}
}
