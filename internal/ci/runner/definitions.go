package runner

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/pipeline"
)

// Definition is a pipeline of a repository, as Azure Pipelines defines
// one (`az pipelines create --yaml-path`): a name, the repository it
// reads and the YAML file in it. Every repository also has an implicit
// one, named as the repository, for its root azure-pipelines.yml. Each
// definition has its own trigger, queue and history; one push may start
// several (a monorepo with web/ and api/ pipelines).
type Definition struct {
	Name      string    `json:"name"`
	Repo      string    `json:"repo"`
	File      string    `json:"file"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

var definitionName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)+$`)

// Check says what is wrong with a definition, before it is kept.
func (d Definition) Check() error {
	if !definitionName.MatchString(d.Name) || strings.Contains(d.Name, "..") {
		return fmt.Errorf("pipeline name %q: use TEAM/NAME, lower-case, such as dev1/web", d.Name)
	}
	if team(d.Name) != team(d.Repo) {
		return fmt.Errorf("pipeline %s reads %s: a pipeline is named under its repository's team (%s/…)", d.Name, d.Repo, team(d.Repo))
	}
	f := d.File
	if f == "" || path.IsAbs(f) || path.Clean(f) != f || strings.HasPrefix(f, "../") || f == ".." || strings.Contains(f, "\\") {
		return fmt.Errorf("YAML path %q: give a file inside the repository, relative to its root, such as web/azure-pipelines.yml", f)
	}
	if ext := path.Ext(f); ext != ".yml" && ext != ".yaml" {
		return fmt.Errorf("YAML path %q: a pipeline file ends in .yml or .yaml", f)
	}
	return nil
}

// Definitions lists the pipelines defined on the platform, by name (the
// implicit ones of each repository's root file are not listed).
func (s *Store) Definitions() ([]Definition, error) {
	var defs []Definition
	return defs, s.readJSON("definitions", &defs)
}

// changeDefinitions rewrites the definitions under the store's lock.
func (s *Store) changeDefinitions(change func([]Definition) ([]Definition, error)) error {
	var defs []Definition
	return s.changeJSON("definitions", &defs, func() (err error) {
		if defs, err = change(defs); err != nil {
			return err
		}
		sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
		return nil
	})
}

// AddDefinition keeps a new definition; its name must be new.
func (s *Store) AddDefinition(d Definition) error {
	if err := d.Check(); err != nil {
		return err
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now().UTC()
	}
	return s.changeDefinitions(func(defs []Definition) ([]Definition, error) {
		for _, old := range defs {
			if old.Name == d.Name {
				return nil, fmt.Errorf("pipeline %s exists already (reading %s in %s)", d.Name, old.File, old.Repo)
			}
		}
		return append(defs, d), nil
	})
}

// RemoveDefinition forgets a definition; its runs stay in the history.
func (s *Store) RemoveDefinition(name string) error {
	return s.changeDefinitions(func(defs []Definition) ([]Definition, error) {
		for i, d := range defs {
			if d.Name == name {
				return append(defs[:i], defs[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("no pipeline %s (slipway pipeline definitions lists them)", name)
	})
}

// definitionsOf are the pipelines a push to repo may start: the implicit
// one of its root file first, then the defined ones, by name.
func (s *Store) definitionsOf(repo string) ([]Definition, error) {
	out := []Definition{{Name: repo, Repo: repo, File: pipeline.DefaultFile}}
	defs, err := s.Definitions()
	for _, d := range defs {
		if d.Repo == repo {
			out = append(out, d)
		}
	}
	return out, err
}

// Required templates: a team's pipelines may be required to extend a
// template that ops keeps in a repository of its own (Azure's "required
// template" check); a pipeline that does not is refused before a step runs.

// RequiredTemplates are the templates a team's pipelines must extend one
// of; none means any pipeline runs.
func (s *Store) RequiredTemplates(team string) ([]pipeline.Template, error) {
	rules := map[string][]pipeline.Template{}
	err := s.readJSON("required-templates", &rules)
	return rules[team], err
}

// SetRequiredTemplates sets a team's rule; none lifts it.
func (s *Store) SetRequiredTemplates(team string, templates []pipeline.Template) error {
	rules := map[string][]pipeline.Template{}
	return s.changeJSON("required-templates", &rules, func() error {
		if len(templates) == 0 {
			delete(rules, team)
		} else {
			rules[team] = templates
		}
		return nil
	})
}
