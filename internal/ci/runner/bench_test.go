package runner

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkPushToFirstStep measures, over real git pushes to the real git
// server, the time from `git push` returning to the run's first step
// (the checkout) starting, and to the first of the pipeline's own steps.
// It reports both as custom metrics; run it with scripts/bench-pipeline.
func BenchmarkPushToFirstStep(b *testing.B) {
	l := newLine(b)
	pipelineFile := "steps:\n- script: echo first\n  displayName: First\n"
	var toCheckout, toFirst time.Duration
	for i := 0; i < b.N; i++ {
		files := map[string]string{"azure-pipelines.yml": pipelineFile, "n": strconv.Itoa(i)}
		commit := l.commit(files, "push "+strconv.Itoa(i))
		pushed := l.pushed()
		r := l.waitRun(commit)
		steps := r.Stages[0].Jobs[0].Steps
		toCheckout += steps[0].StartedAt.Sub(pushed)
		toFirst += steps[1].StartedAt.Sub(pushed)
	}
	b.ReportMetric(float64(toCheckout.Milliseconds())/float64(b.N), "ms-to-checkout")
	b.ReportMetric(float64(toFirst.Milliseconds())/float64(b.N), "ms-to-first-own-step")
}

// BenchmarkParallelJobs runs a stage of two 3-second jobs and reports how
// long the stage took and the two jobs' time added up (about 3 s against
// 6 s when they run side by side). Run it with scripts/bench-pipeline.
func BenchmarkParallelJobs(b *testing.B) {
	l := newLine(b)
	var stage, jobs time.Duration
	for i := 0; i < b.N; i++ {
		r := l.waitRun(l.push(map[string]string{"n": strconv.Itoa(i), "azure-pipelines.yml": `jobs:
- job: A
  steps:
  - script: sleep 3
- job: B
  steps:
  - script: sleep 3
`}, "two jobs "+strconv.Itoa(i)))
		first, last := r.Stages[0].Jobs[0].StartedAt, r.Stages[0].Jobs[0].FinishedAt
		for _, j := range r.Stages[0].Jobs {
			jobs += j.FinishedAt.Sub(j.StartedAt)
			if j.StartedAt.Before(first) {
				first = j.StartedAt
			}
			if j.FinishedAt.After(last) {
				last = j.FinishedAt
			}
		}
		stage += last.Sub(first)
	}
	b.ReportMetric(stage.Seconds()/float64(b.N), "s-stage")
	b.ReportMetric(jobs.Seconds()/float64(b.N), "s-jobs-added")
}
