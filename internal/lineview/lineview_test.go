package lineview

import (
	"context"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/release"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// storeWith writes runs to a real run store, as the runner would.
func storeWith(t *testing.T, runs ...*runner.Run) *runner.Store {
	t.Helper()
	s := &runner.Store{Dir: t.TempDir()}
	for _, r := range runs {
		if err := s.New(r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func buildRun(pipeline, commit, by string, at time.Time, status string, outputs map[string]string) *runner.Run {
	return &runner.Run{Pipeline: pipeline, Commit: commit, RequestedBy: by, QueuedAt: at, Status: status, Reason: "IndividualCI",
		Stages: []runner.StageResult{{Name: "Build", DisplayName: "Build, package, publish", Status: status,
			Jobs: []runner.JobResult{{Name: "build", Status: status, Steps: []runner.StepResult{{DisplayName: "Package and push the chart", Status: status, Outputs: outputs}}}}}}}
}

func TestGatherJoinsRunsAndReleases(t *testing.T) {
	store := storeWith(t,
		buildRun("dev1/hello", "c1", "dev1", t0, runner.Succeeded, map[string]string{"version": "1.0.1", "image": "reg/dev1/hello@sha256:aa"}),
		buildRun("dev2/quotes", "q1", "dev2", t0.Add(time.Minute), runner.Succeeded, map[string]string{"version": "0.3.0"}),
		buildRun("dev1/hello", "c2", "dev1", t0.Add(2*time.Minute), runner.Succeeded, map[string]string{"version": "1.0.2"}),
		buildRun("dev1/hello", "c3", "dev1", t0.Add(3*time.Minute), runner.Failed, nil),
		buildRun("ops/pipeline-templates", "o1", "ops", t0, runner.Succeeded, nil),
	)
	states := []release.EnvState{
		{Team: "dev1", App: "hello", Env: "staging", Running: "1.0.2", Ready: true, Records: []release.Record{
			{Version: "1.0.1", ReadyAt: t0.Add(40 * time.Second), Test: &release.Test{Passed: true, At: t0.Add(50 * time.Second), By: "dev1"}},
			{Version: "1.0.2", ReadyAt: t0.Add(2*time.Minute + 9*time.Second)},
		}},
		{Team: "dev1", App: "hello", Env: "prod", Running: "1.0.1", Ready: false, Reason: "UpgradeFailed", Message: "context deadline exceeded", Records: []release.Record{
			{Version: "1.0.1", ReadyAt: t0.Add(70 * time.Second), PromotedAt: t0.Add(60 * time.Second), PromotedBy: "slipway for dev1", PromotedFrom: "staging"},
		}},
		{Team: "dev2", App: "quotes", Env: "staging", Running: "0.3.0", Ready: true},
	}
	src := Sources{Runs: store, Releases: func(context.Context) ([]release.EnvState, error) { return states, nil },
		Subjects: func(repo string, commits []string) map[string]string {
			if repo == "dev1/hello" {
				return map[string]string{"c2": "say hello louder"}
			}
			return nil
		}}

	all, err := Gather(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Team != "dev1" || all[0].Name != "hello" || all[1].Team != "dev2" {
		t.Fatalf("apps: %+v", all)
	}
	hello := all[0]
	if hello.Running["staging"] != "1.0.2" || hello.Running["prod"] != "1.0.1" || hello.NotReady["prod"] != "UpgradeFailed: context deadline exceeded" {
		t.Errorf("running %v, not ready %v", hello.Running, hello.NotReady)
	}
	if len(hello.Versions) != 3 {
		t.Fatalf("versions: %+v", hello.Versions)
	}
	failed, v2, v1 := hello.Versions[0], hello.Versions[1], hello.Versions[2]
	if failed.Version != "" || failed.Run == nil || failed.Run.Status != runner.Failed || failed.Commit != "c3" {
		t.Errorf("the failed build's row: %+v", failed)
	}
	if v2.Version != "1.0.2" || v2.Subject != "say hello louder" || v2.PushToReady != 9*time.Second || len(v2.Envs) != 1 || !v2.Envs[0].Running {
		t.Errorf("1.0.2: %+v", v2)
	}
	if v1.Image != "reg/dev1/hello@sha256:aa" || v1.PushedBy != "dev1" || v1.Run.Stages[0].Name != "Build, package, publish" {
		t.Errorf("1.0.1: %+v", v1)
	}
	if len(v1.Envs) != 2 || v1.Envs[0].Env != "staging" || v1.Envs[0].Tested != "passed" || v1.Envs[0].Running ||
		v1.Envs[1].Env != "prod" || !v1.Envs[1].Running || v1.Envs[1].PromotedBy != "slipway for dev1" {
		t.Errorf("1.0.1 in its environments: %+v", v1.Envs)
	}

	// A team sees its own line only: not another team's apps, runs or
	// releases, nor ops's repositories.
	mine, err := Gather(context.Background(), src, []string{"dev2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].Name != "quotes" || len(mine[0].Versions) != 1 || mine[0].Versions[0].Run == nil {
		t.Errorf("dev2's line: %+v", mine)
	}
}

func TestGatherKeepsTheNewestVersions(t *testing.T) {
	var runs []*runner.Run
	for i := range MaxVersions + 10 {
		runs = append(runs, buildRun("dev1/hello", "c", "dev1", t0.Add(time.Duration(i)*time.Minute), runner.Succeeded, map[string]string{"version": "1.0." + string(rune('a'+i%26)) + string(rune('a'+i/26))}))
	}
	apps, err := Gather(context.Background(), Sources{Runs: storeWith(t, runs...)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 || len(apps[0].Versions) != MaxVersions || !apps[0].Versions[0].PushedAt.Equal(t0.Add(time.Duration(MaxVersions+9)*time.Minute)) {
		t.Fatalf("kept %d versions, newest %v", len(apps[0].Versions), apps[0].Versions[0].PushedAt)
	}
}
