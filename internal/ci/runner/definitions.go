package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/pipeline"
	"github.com/slipway-dev/slipway/internal/fsutil"
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

func (s *Store) definitionsPath() string { return filepath.Join(s.Dir, "definitions.json") }

// Definitions lists the pipelines defined on the platform, by name (the
// implicit ones of each repository's root file are not listed).
func (s *Store) Definitions() ([]Definition, error) {
	data, err := os.ReadFile(s.definitionsPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var defs []Definition
	if err := json.Unmarshal(data, &defs); err != nil {
		return nil, fmt.Errorf("%s: %w", s.definitionsPath(), err)
	}
	return defs, nil
}

// changeDefinitions rewrites the definitions under a lock, so that two
// processes changing them at once lose nothing.
func (s *Store) changeDefinitions(change func([]Definition) ([]Definition, error)) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	unlock, err := s.lock("definitions.lock")
	if err != nil {
		return err
	}
	defer unlock()
	defs, err := s.Definitions()
	if err != nil {
		return err
	}
	if defs, err = change(defs); err != nil {
		return err
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	data, err := json.MarshalIndent(defs, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.definitionsPath(), append(data, '\n'), 0o644)
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

func (s *Store) requiredPath() string { return filepath.Join(s.Dir, "required-templates.json") }

func (s *Store) readRequired() (map[string][]pipeline.Template, error) {
	rules := map[string][]pipeline.Template{}
	data, err := os.ReadFile(s.requiredPath())
	if errors.Is(err, os.ErrNotExist) {
		return rules, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &rules); err != nil {
		return nil, fmt.Errorf("%s: %w", s.requiredPath(), err)
	}
	return rules, nil
}

// RequiredTemplates are the templates a team's pipelines must extend one
// of; none means any pipeline runs.
func (s *Store) RequiredTemplates(team string) ([]pipeline.Template, error) {
	rules, err := s.readRequired()
	return rules[team], err
}

// SetRequiredTemplates sets a team's rule; none lifts it.
func (s *Store) SetRequiredTemplates(team string, templates []pipeline.Template) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	unlock, err := s.lock("required-templates.lock")
	if err != nil {
		return err
	}
	defer unlock()
	rules, err := s.readRequired()
	if err != nil {
		return err
	}
	if len(templates) == 0 {
		delete(rules, team)
	} else {
		rules[team] = templates
	}
	data, err := json.MarshalIndent(rules, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.requiredPath(), append(data, '\n'), 0o644)
}
