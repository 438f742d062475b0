package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkPushToFirstStepInPod measures, on the platform with the
// cluster, the time from `git push` returning to the job's checkout step
// starting in its pod, and to the pipeline's own first step. Each push is
// one run, one job, one pod. It reports the medians; run it with
// scripts/bench-pipeline.
func BenchmarkPushToFirstStepInPod(b *testing.B) {
	e := clusterEnv(b)
	regAddr, gitAddr := freeAddr(b), freeAddr(b)
	e.vars = append(e.vars, "SLIPWAY_GIT_ADDR="+gitAddr, "SLIPWAY_REGISTRY_ADDR="+regAddr)
	e.startUpWithin(60*time.Minute, "--registry-addr", regAddr)
	e.mustRun("", "tenant", "create", "dev1", "--repo", "bench")
	admin := strings.TrimSpace(readFile(b, filepath.Join(e.home, "admin-password")))
	clone := filepath.Join(b.TempDir(), "bench")
	gitCmd(b, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://admin:%s@%s/dev1/bench.git", admin, gitAddr), clone)
	writeFile(b, filepath.Join(clone, "azure-pipelines.yml"), "trigger: [main]\nsteps:\n- script: echo first\n  displayName: First\n")
	// The first run waits for Flux to apply dev1-ci; it is not counted.
	e.waitRun(b, gitPush(b, clone, "warm up"), finished)
	var toCheckout, toFirst []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		writeFile(b, filepath.Join(clone, "n"), fmt.Sprint(i))
		commit := gitPush(b, clone, fmt.Sprint("push ", i))
		pushed := time.Now()
		r := e.waitRun(b, commit, finished)
		if r.Status != "succeeded" {
			b.Fatalf("run %d: %s %s", r.ID, r.Status, r.Error)
		}
		steps := r.Stages[0].Jobs[0].Steps
		toCheckout = append(toCheckout, steps[0].StartedAt.Sub(pushed))
		toFirst = append(toFirst, steps[1].StartedAt.Sub(pushed))
	}
	b.ReportMetric(float64(median(toCheckout).Milliseconds()), "ms-to-checkout")
	b.ReportMetric(float64(median(toFirst).Milliseconds()), "ms-to-first-own-step")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
