package pipeline

import (
	"path"
	"strings"
)

// Triggers says whether a push of ref that changed the given paths starts
// a run, as Azure DevOps decides for a CI trigger. Without a trigger:
// every branch, no tags. Excludes win over includes; a path filter needs
// one changed file included and not excluded (tags ignore path filters).
// A nil changed list (unknown, as for a new branch) passes path filters.
func (p *Pipeline) Triggers(ref string, changed []string) bool {
	t := p.Trigger
	if t == nil {
		return strings.HasPrefix(ref, "refs/heads/")
	}
	if t.None {
		return false
	}
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return matchFilter(t.Tags, tag, "refs/tags/", false)
	}
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		return false
	}
	// A trigger that lists only tags does not fire for branches.
	if len(t.Branches.Include) == 0 && len(t.Tags.Include) > 0 {
		return false
	}
	if !matchFilter(t.Branches, branch, "refs/heads/", true) {
		return false
	}
	if changed == nil || len(t.Paths.Include) == 0 && len(t.Paths.Exclude) == 0 {
		return true
	}
	for _, f := range changed {
		if matchPaths(t.Paths, f) {
			return true
		}
	}
	return false
}

func matchFilter(f Filter, name, prefix string, emptyIncludesAll bool) bool {
	included := len(f.Include) == 0 && emptyIncludesAll
	for _, pat := range f.Include {
		included = included || wildcard(strings.TrimPrefix(pat, prefix), name)
	}
	for _, pat := range f.Exclude {
		if wildcard(strings.TrimPrefix(pat, prefix), name) {
			return false
		}
	}
	return included
}

// matchPaths: a pattern names a file or a folder (all below it), with *
// wildcards; excludes win.
func matchPaths(f Filter, file string) bool {
	file = strings.TrimPrefix(path.Clean("/"+file), "/")
	under := func(pat string) bool {
		pat = strings.Trim(path.Clean("/"+pat), "/")
		if pat == "" || pat == "*" {
			return true
		}
		if wildcard(pat, file) {
			return true
		}
		return strings.HasPrefix(file, strings.TrimSuffix(pat, "/*")+"/") && !strings.Contains(strings.TrimSuffix(pat, "/*"), "*")
	}
	included := len(f.Include) == 0
	for _, pat := range f.Include {
		included = included || under(pat)
	}
	for _, pat := range f.Exclude {
		if under(pat) {
			return false
		}
	}
	return included
}

// wildcard matches a name against a pattern in which * stands for any
// text (slashes included) and ? for one character.
func wildcard(pat, name string) bool {
	if pat == name {
		return true
	}
	for len(pat) > 0 {
		switch pat[0] {
		case '*':
			for i := len(name); i >= 0; i-- {
				if wildcard(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		case '?':
			if name == "" {
				return false
			}
		default:
			if name == "" || !strings.EqualFold(pat[:1], name[:1]) {
				return false
			}
		}
		pat, name = pat[1:], name[1:]
	}
	return name == ""
}
