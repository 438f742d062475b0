// Package lineview puts the line together the way a person follows it:
// per team and app, one row per version, from the push that made it
// through its pipeline run, the image and chart it published, Ready and
// tested in staging, to its promotion and prod. It joins what the
// platform already keeps — the runs' records (with the chart version and
// image the build's steps gave as outputs) and the release records in
// the cluster — and adds nothing of its own.
//
// The dashboard's Line page and `slipway line -o json` read Gather, so
// both show the same data.
package lineview

import (
	"cmp"
	"context"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/release"
)

// The output variables of a run's steps that name what it published
// (the example line's build-publish.yml sets chart.version and
// image.image).
const (
	VersionOutput = "version"
	ImageOutput   = "image"
)

// MaxVersions is how many versions an app's line keeps, newest first.
const MaxVersions = 50

// App is one team's app along the line.
type App struct {
	Team string `json:"team"`
	Name string `json:"name"`
	// Running is the chart version running in each environment.
	Running map[string]string `json:"running,omitempty"`
	// NotReady says why an environment's release is not Ready, in
	// Flux's words; absent when it is.
	NotReady map[string]string `json:"notReady,omitempty"`
	Versions []Version         `json:"versions"`
}

// Version is one row of the line: a version and what happened to it.
type Version struct {
	// Version is the chart version; "" for a run that published none (a
	// build that failed).
	Version string `json:"version,omitempty"`
	Commit  string `json:"commit,omitempty"`
	Subject string `json:"subject,omitempty"`
	// PushedBy and PushedAt: who pushed the commit, and when the runner
	// took the push.
	PushedBy string    `json:"pushedBy,omitempty"`
	PushedAt time.Time `json:"pushedAt,omitzero"`
	Run      *Run      `json:"run,omitempty"`
	Image    string    `json:"image,omitempty"`
	// Envs is the version in each environment, in the line's order.
	Envs []Env `json:"envs"`
	// PushToReady is from the push to Ready in the first environment.
	PushToReady time.Duration `json:"pushToReadyNanos,omitempty"`
}

// Run is a pipeline run, as the line shows it.
type Run struct {
	ID         int       `json:"id"`
	Number     string    `json:"number"`
	Status     string    `json:"status"`
	Stages     []Stage   `json:"stages"`
	QueuedAt   time.Time `json:"queuedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// Stage is a run's stage and its outcome.
type Stage struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// Env is one version in one environment.
type Env struct {
	Env     string    `json:"env"`
	Running bool      `json:"running,omitempty"`
	ReadyAt time.Time `json:"readyAt,omitzero"`
	// Tested is "passed", "failed" or "" (not tested there).
	Tested       string    `json:"tested,omitempty"`
	TestedAt     time.Time `json:"testedAt,omitzero"`
	TestedBy     string    `json:"testedBy,omitempty"`
	PromotedAt   time.Time `json:"promotedAt,omitzero"`
	PromotedBy   string    `json:"promotedBy,omitempty"`
	PromotedFrom string    `json:"promotedFrom,omitempty"`
}

// Sources are where the line is read from.
type Sources struct {
	Runs *runner.Store
	// Releases reads the releases' states; nil on a platform without a
	// cluster.
	Releases func(ctx context.Context) ([]release.EnvState, error)
	// Subjects gives the first line of each commit's message in a
	// repository ("team/app"); nil, or a commit it does not know, shows
	// none.
	Subjects func(repo string, commits []string) map[string]string
}

// Gather reads the line of the given teams (nil: every team), apps
// sorted by team and name, versions newest first.
func Gather(ctx context.Context, src Sources, teams []string) ([]App, error) {
	visible := func(team string) bool {
		// ops's own repositories (ops/pipeline-templates) are the
		// platform's, not an app's.
		return team != "ops" && flux.ValidTeam(team) == nil && (teams == nil || slices.Contains(teams, team))
	}
	apps := map[[2]string]*App{}
	app := func(team, name string) *App {
		k := [2]string{team, name}
		if apps[k] == nil {
			apps[k] = &App{Team: team, Name: name}
		}
		return apps[k]
	}
	// rows are each app's versions, found by chart version; runs that
	// published none get rows of their own.
	rows := map[*App][]*Version{}
	byVersion := map[*App]map[string]*Version{}
	row := func(a *App, version string) *Version {
		if v := byVersion[a][version]; v != nil {
			return v
		}
		v := &Version{Version: version}
		rows[a] = append(rows[a], v)
		if version != "" {
			if byVersion[a] == nil {
				byVersion[a] = map[string]*Version{}
			}
			byVersion[a][version] = v
		}
		return v
	}
	var runs []*runner.Run
	if src.Runs != nil {
		all, err := src.Runs.List("")
		if err != nil {
			return nil, err
		}
		runs = all
	}
	var states []release.EnvState
	if src.Releases != nil {
		s, err := src.Releases(ctx)
		if err != nil {
			return nil, err
		}
		states = s
	}

	// Runs, newest first: the newest run of a version is its row's.
	for _, r := range runs {
		team, name := splitRepo(r.Repository())
		if !visible(team) {
			continue
		}
		a := app(team, name)
		version, image := published(r)
		v := row(a, version)
		if v.Run != nil {
			continue
		}
		v.Run = summary(r)
		v.Commit, v.PushedBy, v.PushedAt, v.Image = r.Commit, r.RequestedBy, r.QueuedAt, image
	}
	for _, st := range states {
		if !visible(st.Team) {
			continue
		}
		a := app(st.Team, st.App)
		if st.Running != "" {
			if a.Running == nil {
				a.Running = map[string]string{}
			}
			a.Running[st.Env] = st.Running
		}
		if !st.Ready {
			if a.NotReady == nil {
				a.NotReady = map[string]string{}
			}
			a.NotReady[st.Env] = strings.TrimSpace(cmp.Or(st.Reason+": "+st.Message, "not ready yet"))
		}
		for _, rec := range st.Records {
			v := row(a, rec.Version)
			if v.Image == "" {
				v.Image = rec.Image
			}
			e := Env{Env: st.Env, ReadyAt: rec.ReadyAt, PromotedAt: rec.PromotedAt, PromotedBy: rec.PromotedBy, PromotedFrom: rec.PromotedFrom}
			if rec.Test != nil {
				e.Tested, e.TestedAt, e.TestedBy = "failed", rec.Test.At, rec.Test.By
				if rec.Test.Passed {
					e.Tested = "passed"
				}
			}
			v.Envs = append(v.Envs, e)
		}
	}

	out := make([]App, 0, len(apps))
	for _, a := range apps {
		a.Versions = make([]Version, 0, len(rows[a]))
		for _, v := range rows[a] {
			finish(v, a.Running)
			a.Versions = append(a.Versions, *v)
		}
		sort.SliceStable(a.Versions, func(i, j int) bool { return newest(a.Versions[i]).After(newest(a.Versions[j])) })
		if len(a.Versions) > MaxVersions {
			a.Versions = a.Versions[:MaxVersions]
		}
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Team != out[j].Team {
			return out[i].Team < out[j].Team
		}
		return out[i].Name < out[j].Name
	})
	if src.Subjects != nil {
		for i := range out {
			addSubjects(&out[i], src.Subjects)
		}
	}
	return out, nil
}

// splitRepo reads "team/app" (an app's repository; its pipeline's name).
func splitRepo(repo string) (team, app string) {
	team, rest, _ := strings.Cut(repo, "/")
	return team, path.Base(rest)
}

// published is the chart version and image a run's steps gave as
// outputs.
func published(r *runner.Run) (version, image string) {
	for _, s := range r.Stages {
		for _, j := range s.Jobs {
			for _, st := range j.Steps {
				if v := st.Outputs[VersionOutput]; v != "" && version == "" {
					version = v
				}
				if v := st.Outputs[ImageOutput]; v != "" && image == "" {
					image = v
				}
			}
		}
	}
	return version, image
}

func summary(r *runner.Run) *Run {
	s := &Run{ID: r.ID, Number: r.Number, Status: r.Status, QueuedAt: r.QueuedAt, FinishedAt: r.FinishedAt, Error: r.Error}
	for _, st := range r.Stages {
		s.Stages = append(s.Stages, Stage{Name: cmp.Or(st.DisplayName, st.Name), Status: st.Status})
	}
	return s
}

// finish orders a row's environments the line's way, marks where it
// runs, and works out push-to-Ready.
func finish(v *Version, running map[string]string) {
	sort.SliceStable(v.Envs, func(i, j int) bool { return envIndex(v.Envs[i].Env) < envIndex(v.Envs[j].Env) })
	for i := range v.Envs {
		v.Envs[i].Running = v.Version != "" && running[v.Envs[i].Env] == v.Version
	}
	if len(v.Envs) > 0 && v.Envs[0].Env == flux.Environments[0] && !v.PushedAt.IsZero() && v.Envs[0].ReadyAt.After(v.PushedAt) {
		v.PushToReady = v.Envs[0].ReadyAt.Sub(v.PushedAt)
	}
}

func envIndex(env string) int {
	if i := slices.Index(flux.Environments, env); i >= 0 {
		return i
	}
	return len(flux.Environments)
}

// newest is the latest thing that happened to a version.
func newest(v Version) time.Time {
	t := v.PushedAt
	for _, e := range v.Envs {
		for _, u := range []time.Time{e.ReadyAt, e.TestedAt, e.PromotedAt} {
			if u.After(t) {
				t = u
			}
		}
	}
	return t
}

func addSubjects(a *App, subjects func(string, []string) map[string]string) {
	var commits []string
	for _, v := range a.Versions {
		if v.Commit != "" {
			commits = append(commits, v.Commit)
		}
	}
	if len(commits) == 0 {
		return
	}
	got := subjects(a.Team+"/"+a.Name, commits)
	for i := range a.Versions {
		a.Versions[i].Subject = got[a.Versions[i].Commit]
	}
}

// Find is the line of one app; ok is false when it has none.
func Find(apps []App, team, name string) (App, bool) {
	for _, a := range apps {
		if a.Team == team && a.Name == name {
			return a, true
		}
	}
	return App{}, false
}
