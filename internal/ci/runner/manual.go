package runner

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/ci/pipeline"
	"github.com/slipway-dev/slipway/internal/gitcmd"
)

// Manual asks for a run of a working tree, uncommitted changes included,
// as `slipway pipeline run` does on a person's machine.
type Manual struct {
	// Dir is the working tree; File the pipeline file relative to it.
	Dir, File string
	// Pipeline names the run's pipeline; empty means TEAM/APP from the
	// origin remote's URL, else local/DIR.
	Pipeline string
	// Branch the run says it is for; empty means the current branch.
	Branch      string
	Parameters  map[string]string
	RequestedBy string
	// RepoDir is the bare repository of a repository of the platform's
	// git server, for templates from other repositories; nil refuses them.
	RepoDir func(repo string) string
}

// Prepare loads and checks the pipeline and describes the run, without
// running anything. A pipeline outside the supported subset is an error
// with its file and line.
func (m Manual) Prepare() (*Run, *pipeline.Pipeline, error) {
	dir, err := filepath.Abs(m.Dir)
	if err != nil {
		return nil, nil, err
	}
	name := m.Pipeline
	if name == "" {
		name = pipelineName(dir)
	}
	branch := m.Branch
	if branch == "" {
		branch = currentBranch(dir)
	}
	run := &Run{Pipeline: name, Reason: "Manual", Ref: "refs/heads/" + branch, Commit: gitcmd.Output(dir, "rev-parse", "HEAD"),
		RequestedBy: m.RequestedBy, Source: dir, File: m.File}
	resources := &resourceCheckouts{ctx: context.Background(), repoDir: m.RepoDir}
	defer resources.cleanup()
	p, err := pipeline.Load(pipeline.Options{Root: dir, File: m.File, Parameters: m.Parameters, Repository: resources.checkout, Variables: map[string]string{
		"Build.SourceBranch": run.Ref, "Build.SourceBranchName": branch, "Build.Reason": "Manual", "Build.Repository.Name": name}})
	if err != nil {
		return nil, nil, err
	}
	return run, p, nil
}

// pipelineName is TEAM/APP from the origin remote's URL, else local/DIR.
func pipelineName(dir string) string {
	if url := gitcmd.Output(dir, "remote", "get-url", "origin"); url != "" {
		url = strings.TrimSuffix(strings.TrimSuffix(url, "/"), ".git")
		parts := strings.Split(url, "/")
		if len(parts) >= 2 {
			return parts[len(parts)-2] + "/" + parts[len(parts)-1]
		}
	}
	return "local/" + filepath.Base(dir)
}

func currentBranch(dir string) string {
	if b := gitcmd.Output(dir, "rev-parse", "--abbrev-ref", "HEAD"); b != "" && b != "HEAD" {
		return b
	}
	return "main"
}
