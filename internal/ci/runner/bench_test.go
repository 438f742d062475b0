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
