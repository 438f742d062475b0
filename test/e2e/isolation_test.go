package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileJob pushes a dev1 pipeline whose job tries, from its pod, to
// reach everything a team's job must not: the platform's secrets, root,
// the cluster's admin, dev2's namespaces, a ClusterRoleBinding, a
// privileged pod, etcd, dev2's registry and git repositories, dev2's
// promotion and the platform's records. Every attempt must be refused.
func hostileJob(t *testing.T, e *env, gitAddr string) {
	// The demo required dev1's pipelines to extend ops's line; the probe
	// is a pipeline of its own, so ops lifts the rule for it (a job that
	// extends the line runs the same way, in the same pod, as the same
	// account).
	if out := e.mustRun("", "pipeline", "require", "dev1").stdout; !strings.Contains(out, "line.yml@ops/pipeline-templates") {
		t.Fatalf("after the demo, dev1's rule is %q", out)
	}
	e.mustRun("", "pipeline", "require", "dev1", "--none")
	e.mustRun("", "repo", "create", "dev1/probe")
	clone := probeClone(t, e, gitAddr)
	probe, err := os.ReadFile("testdata/probe/main.go")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(clone, "main.go"), string(probe))
	writeFile(t, filepath.Join(clone, "go.mod"), "module example.com/probe\n\ngo 1.26\n")
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), fmt.Sprintf(`trigger: [main]
pool: {vmImage: ubuntu-latest}
steps:
- script: go run .
  displayName: Reach what a team may not
  env:
    SLIPWAY_REGISTRY_PASSWORD: $(slipway.registry.password)
    PLATFORM_HOME: %s
    NODE_IP: 10.244.0.1
- script: |
    git -c user.email=ci@dev1 -c user.name=ci commit --quiet --allow-empty -m evil
    url="https://ci-dev1:${PW}@${SLIPWAY_GIT_URL#https://}/dev2/quotes.git"
    if git push --quiet "$url" HEAD:refs/heads/evil 2>&1; then echo "REACHED: push to dev2/quotes in git"; else echo "refused: push to dev2/quotes in git"; fi
    if slipway promote quotes --team dev2 --from staging --to prod 2>&1; then echo "REACHED: promote dev2's quotes"; else echo "refused: promote dev2's quotes"; fi
    echo "kubectl acts as: $(slipway kubectl auth whoami -o jsonpath='{.status.userInfo.username}')"
    if slipway kubectl get secrets -n dev1-prod 2>&1; then echo "REACHED: dev1-prod secrets with kubectl"; else echo "refused: dev1-prod secrets with kubectl"; fi
    echo "job runs as: $(id -u):$(id -g) in $(hostname)"
  displayName: Push and promote as dev2
  env:
    PW: $(slipway.git.password)
    SLIPWAY_REGISTRY_PASSWORD: $(slipway.registry.password)
`, e.home))
	commit := gitPush(t, clone, "a hostile job")

	// While it runs, its pod is there to see in dev1-ci.
	running := e.waitRun(t, commit, func(r runRecord) bool { return r.Status != "queued" })
	jobPod(t, e, running.ID)
	run := e.waitRun(t, commit, finished)
	logs := e.mustRun("", "pipeline", "logs", fmt.Sprint(run.ID)).stdout
	if run.Status != "succeeded" {
		t.Fatalf("the probe run %s: %s\n%s", run.Status, run.Error, logs)
	}
	for _, want := range []string{
		"read " + e.home + "/admin-password", "read " + e.home + "/users.yaml", "read " + e.home + "/pipelines/credentials/ci-dev2",
		"read " + e.home + "/cluster/pki/ca.key", "read " + e.home + "/cluster/admin.kubeconfig", "read /root/.docker/config.json",
		"root", "capabilities", "act as admin", "read kube-system secrets", "read dev2-staging pods", "read dev2-ci secrets",
		"create a ClusterRoleBinding", "create a privileged pod", "write the tested evidence", "deploy in dev1-prod", "etcd",
		"push under dev2/ in the registry", "bind dev2's Go cache", "push to dev2/quotes in git", "promote dev2's quotes", "dev1-prod secrets with kubectl",
	} {
		if !strings.Contains(logs, "refused: "+want) {
			t.Errorf("the hostile job's attempt %q was not refused", want)
		}
	}
	// Refused by the git server (403), not by a failed TLS handshake:
	// the job trusts the platform's CA.
	if !strings.Contains(logs, "The requested URL returned error: 403") {
		t.Errorf("the hostile job's push to dev2/quotes was not refused by the git server:\n%s", logs)
	}
	if strings.Contains(logs, "REACHED") {
		t.Errorf("the hostile job reached what it must not:\n%s", logs)
	}
	if !strings.Contains(logs, "kubectl acts as: system:serviceaccount:dev1-ci:ci") {
		t.Errorf("kubectl in the job does not act as dev1-ci:ci:\n%s", logs)
	}
	if !strings.Contains(logs, "job runs as: 65532:65532") {
		t.Errorf("the job does not run as the non-root user:\n%s", logs)
	}
	if strings.Contains(logs, readFile(t, filepath.Join(e.home, "pipelines", "credentials", "ci-dev1"))) {
		t.Errorf("the job's log shows its CI password")
	}
	// When the run is over, its pod is gone.
	eventually(t, "no job pod left in dev1-ci", time.Minute, func() error {
		if out, _ := e.kubectl("get", "pods", "-n", "dev1-ci", "-l", fmt.Sprintf("slipway.dev/run=%d", run.ID), "-o", "name"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("pods left: %s", out)
		}
		return nil
	})
	if out, _ := e.kubectl("get", "clusterrolebinding", "dev1-is-admin"); !strings.Contains(out, "NotFound") {
		t.Errorf("the hostile job's ClusterRoleBinding exists: %s", out)
	}
}

// jobPodsGoWithACrash cancels a long job, whose pod goes at once, then
// kills `slipway up` with SIGKILL while another runs: after the restart
// that job's pod is deleted and its run is marked failed.
func jobPodsGoWithACrash(t *testing.T, e *env, up *upProcess, regAddr, gitAddr string) {
	clone := probeClone(t, e, gitAddr)
	// container: runs a job in an image of the platform's registry; an
	// image from anywhere else is refused before a pod is made.
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), fmt.Sprintf(`trigger: [main]
jobs:
- job: own
  container: %s/slipway/ci:latest
  steps:
  - script: echo "in the image it named"
- job: foreign
  dependsOn: own
  container: docker.io/library/alpine:3
  steps:
  - script: echo "REACHED a foreign image"
`, regAddr))
	images := e.waitRun(t, gitPush(t, clone, "jobs in named images"), finished)
	logs := e.mustRun("", "pipeline", "logs", fmt.Sprint(images.ID)).stdout
	if images.Status != "failed" || !strings.Contains(images.Error, "must come from the platform's registry") ||
		!strings.Contains(logs, "in the image it named") || strings.Contains(logs, "REACHED") {
		t.Errorf("container: jobs: run %s, error %q\n%s", images.Status, images.Error, logs)
	}

	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), "trigger: [main]\nsteps:\n- script: sleep 600\n")
	commit := gitPush(t, clone, "a job that runs long")
	long := e.waitRun(t, commit, func(r runRecord) bool { return r.Status == "running" })
	pod := jobPod(t, e, long.ID)
	// A cancel deletes the job's pod at once.
	e.mustRun("", "pipeline", "cancel", fmt.Sprint(long.ID))
	if r := e.waitRun(t, commit, finished); r.Status != "canceled" {
		t.Errorf("the canceled run is %s", r.Status)
	}
	podGone(t, e, pod, "the canceled job's pod deleted", time.Minute)
	// Again, and this time the platform crashes.
	writeFile(t, filepath.Join(clone, "n"), "2")
	commit = gitPush(t, clone, "a job that runs long, again")
	long = e.waitRun(t, commit, func(r runRecord) bool { return r.Status == "running" })
	pod = jobPod(t, e, long.ID)
	if err := up.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-up.exited
	e.startUpWithin(10*time.Minute, "--registry-addr", regAddr)
	podGone(t, e, pod, "the crashed job's pod deleted", 2*time.Minute)
	if r := e.waitRun(t, commit, finished); r.Status != "failed" {
		t.Errorf("the run cut short by the crash is %s", r.Status)
	}
}

// probeClone clones dev1/probe as admin.
func probeClone(t *testing.T, e *env, gitAddr string) string {
	clone := filepath.Join(t.TempDir(), "probe")
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://admin:%s@%s/dev1/probe.git", admin, gitAddr), clone)
	return clone
}

// podGone waits for a job pod in dev1-ci to be deleted.
func podGone(t *testing.T, e *env, pod, what string, within time.Duration) {
	eventually(t, what, within, func() error {
		if out, err := e.kubectl("get", "pod", "-n", "dev1-ci", pod); err == nil {
			return fmt.Errorf("still there: %s", out)
		}
		return nil
	})
}

// jobPod waits for the pod of a run's job in dev1-ci and returns its name.
func jobPod(t *testing.T, e *env, run int) string {
	var pod string
	eventually(t, fmt.Sprintf("run %d's job pod in dev1-ci", run), 3*time.Minute, func() error {
		out, _ := e.kubectl("get", "pods", "-n", "dev1-ci", "-l", fmt.Sprintf("slipway.dev/run=%d", run), "-o", "jsonpath={.items[*].metadata.name}")
		if pod = strings.TrimSpace(out); pod == "" {
			return fmt.Errorf("no job pod yet")
		}
		return nil
	})
	return pod
}
