package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testutil"
)

// clusterEnv is an env whose `up` starts the cluster. The compiled
// Kubernetes programs are in the user's cache (shared with every state
// directory), so only the first run on a machine builds them.
func clusterEnv(t testing.TB) *env {
	testutil.Slow(t)
	testutil.NeedRoot(t, "the cluster")
	e := newEnv(t)
	e.vars = append(e.vars,
		"SLIPWAY_CLUSTER=true",
		"KUBECONFIG="+filepath.Join(e.home, "kubeconfig"),
		// Monitoring runs whenever Flux does; on addresses of the test's own.
		"SLIPWAY_PROMETHEUS_ADDR="+freeAddr(t),
		"SLIPWAY_ALERTMANAGER_ADDR="+freeAddr(t),
	)
	return e
}

// kubectl runs the kubectl built from the pinned sources with the merged
// kubeconfig, as a user would.
func (e *env) kubectl(args ...string) (string, error) {
	e.t.Helper()
	cache, _ := os.UserCacheDir()
	// One per pinned release, v1.36 before v1.37: the newest speaks to both.
	matches, _ := filepath.Glob(filepath.Join(cache, "slipway", "components", "kubernetes", "v*", "kubectl"))
	if len(matches) == 0 {
		e.t.Fatal("no kubectl built")
	}
	sort.Strings(matches)
	cmd := exec.Command(matches[len(matches)-1], append([]string{"--context", "slipway"}, args...)...)
	cmd.Env = append(os.Environ(), e.vars...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (e *env) mustKubectl(args ...string) string {
	e.t.Helper()
	out, err := e.kubectl(args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// eventually retries f until it returns nil.
func eventually(t *testing.T, what string, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// TestCluster brings the whole platform up with the cluster and checks it
// the way a user would, with kubectl.
func TestCluster(t *testing.T) {
	e := clusterEnv(t)
	// Flux has its own test; this one is about the node.
	e.vars = append(e.vars, "SLIPWAY_FLUX=false")
	addr := "127.0.0.1:" + strings.Split(freeAddr(t), ":")[1]
	// The git server also answers on the node address, so it needs a fixed port.
	gitAddr := freeAddr(t)
	e.vars = append(e.vars, "SLIPWAY_GIT_ADDR="+gitAddr)
	// The user's own Docker config holds a stale password for the
	// registry (a `slipway login` to an earlier state directory): the
	// node must pull with the platform's credentials anyway. HOME moves to
	// hold it; the caches stay where they are.
	userHome := t.TempDir()
	writeFile(t, filepath.Join(userHome, ".docker", "config.json"), fmt.Sprintf(`{"auths": {%q: {"auth": %q}, %q: {"auth": %q}}}`,
		addr, base64.StdEncoding.EncodeToString([]byte("admin:stale-password")),
		"10.244.0.1:"+strings.Split(addr, ":")[1], base64.StdEncoding.EncodeToString([]byte("admin:stale-password"))))
	cacheDir, _ := os.UserCacheDir()
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	e.vars = append(e.vars, "HOME="+userHome, "XDG_CACHE_HOME="+cacheDir,
		"GOPATH="+goEnv("GOPATH"), "GOMODCACHE="+goEnv("GOMODCACHE"), "GOCACHE="+goEnv("GOCACHE"))
	start := time.Now()
	up := e.startUpWithin(45*time.Minute, "--registry-addr", addr)
	t.Logf("platform with cluster ready in %s (includes any first build of the components)", time.Since(start).Round(time.Millisecond))

	// The node is Ready and every pod Running.
	eventually(t, "node Ready", time.Minute, func() error {
		out, err := e.kubectl("get", "nodes", "--no-headers")
		if err != nil || !strings.Contains(out, " Ready ") {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	eventually(t, "all pods Running", 2*time.Minute, func() error {
		out, err := e.kubectl("get", "pods", "-A", "--no-headers")
		if err != nil || out == "" || strings.Contains(out, "Pending") || strings.Contains(out, "Error") || strings.Contains(out, "Crash") {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	})
	t.Logf("kubectl get nodes:\n%s", e.mustKubectl("get", "nodes", "-o", "wide"))
	if out := e.mustRun("", "kubectl", "get", "nodes", "--no-headers").stdout; !strings.Contains(out, "slipway") {
		t.Fatalf("slipway kubectl get nodes: %q", out)
	}
	t.Logf("kubectl get pods -A:\n%s", e.mustKubectl("get", "pods", "-A"))

	// Build the app and push it as admin, then deploy it by digest.
	adminPassword, _ := os.ReadFile(filepath.Join(e.home, "admin-password"))
	e.mustRun(string(adminPassword), "login", addr, "-u", "admin", "--password-stdin")
	image := strings.TrimSpace(e.mustRun("", "build", "../../internal/build/testdata/hello", "--image", "dev1/hello", "--platform", "linux/amd64").stdout)
	check := addr + "/slipway/http-check:latest"
	e.mustKubectl("create", "namespace", "dev1")
	e.mustKubectl("create", "namespace", "dev2")
	manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, namespace: dev1}
spec:
  replicas: 2
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers:
      - name: hello
        image: %s
        env: [{name: PORT, value: "8080"}]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: hello, namespace: dev1}
spec:
  selector: {app: hello}
  ports: [{port: 80, targetPort: 8080}]
`, image)
	apply := func(yaml string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "m.yaml")
		os.WriteFile(path, []byte(yaml), 0o644)
		e.mustKubectl("apply", "-f", path)
	}
	apply(manifest)
	// A namespace that sets no Pod Security level gets the API server's
	// default: baseline, so no privileged pod with the host's / mounted.
	escape := hostEscapePod(t, "dev2", check)
	if out, err := e.kubectl("apply", "-f", escape); err == nil || !strings.Contains(out, `violates PodSecurity "baseline:latest"`) {
		t.Fatalf("a privileged pod in a namespace without a Pod Security label: %v %s", err, out)
	}
	deployStart := time.Now()
	e.mustKubectl("-n", "dev1", "rollout", "status", "deployment/hello", "--timeout=3m")
	t.Logf("deployment Available in %s", time.Since(deployStart).Round(time.Millisecond))

	// Another pod reaches it by its Service DNS name, and reaches the
	// registry and the git server at the node address, the names in-cluster
	// controllers use, over HTTPS with the platform's CA (`slipway ca`).
	port := strings.Split(addr, ":")[1]
	e.mustKubectl("-n", "dev2", "create", "configmap", "platform-ca", "--from-literal=ca.crt="+e.mustRun("", "ca").stdout)
	apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: client, namespace: dev2}
spec:
  restartPolicy: Never
  containers:
  - name: check
    image: %s
    args: ["http://hello.dev1.svc.cluster.local/", "https://10.244.0.1:%s/healthz", "https://10.244.0.1:%s/healthz"]
    env: [{name: SSL_CERT_FILE, value: /ca/ca.crt}]
    volumeMounts: [{name: ca, mountPath: /ca}]
  volumes: [{name: ca, configMap: {name: platform-ca}}]
`, check, port, strings.Split(gitAddr, ":")[1]))
	eventually(t, "client pod reaches hello by DNS", 2*time.Minute, func() error {
		phase, _ := e.kubectl("-n", "dev2", "get", "pod", "client", "-o", "jsonpath={.status.phase}")
		if phase == "Succeeded" {
			return nil
		}
		logs, _ := e.kubectl("-n", "dev2", "logs", "client")
		return fmt.Errorf("phase %q, logs: %s", phase, logs)
	})

	// The host reaches it through the API server's service proxy.
	body := e.mustKubectl("get", "--raw", "/api/v1/namespaces/dev1/services/hello:80/proxy/")
	if !strings.Contains(body, "hello from slipway") {
		t.Fatalf("service proxy answered %q", body)
	}

	// RBAC: a ServiceAccount bound in dev1 is denied in dev2.
	e.mustKubectl("-n", "dev1", "create", "serviceaccount", "deployer")
	e.mustKubectl("-n", "dev1", "create", "rolebinding", "deployer-edit", "--clusterrole=edit", "--serviceaccount=dev1:deployer")
	canI := func(ns string) string {
		out, _ := e.kubectl("auth", "can-i", "create", "deployments", "-n", ns, "--as=system:serviceaccount:dev1:deployer")
		return strings.TrimSpace(out)
	}
	if got := canI("dev1"); got != "yes" {
		t.Fatalf("deployer in its own namespace: %q", got)
	}
	if got := canI("dev2"); got != "no" {
		t.Fatalf("deployer in another namespace: %q", got)
	}
	// And with its own token, for real: a kubeconfig holding only the
	// token (a client certificate beside it would win).
	token := strings.TrimSpace(e.mustKubectl("-n", "dev1", "create", "token", "deployer"))
	server := e.mustKubectl("config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	caData := e.mustKubectl("config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}")
	tokenConfig := filepath.Join(t.TempDir(), "deployer.kubeconfig")
	os.WriteFile(tokenConfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: slipway, cluster: {server: %s, certificate-authority-data: %s}}]
users: [{name: deployer, user: {token: %s}}]
contexts: [{name: slipway, context: {cluster: slipway, user: deployer}}]
current-context: slipway
`, server, caData, token)), 0o600)
	if out, err := e.kubectl("--kubeconfig", tokenConfig, "-n", "dev2", "get", "pods"); err == nil || !strings.Contains(out, "Forbidden") {
		t.Fatalf("deployer's token listed dev2's pods: %v %s", err, out)
	}
	if _, err := e.kubectl("--kubeconfig", tokenConfig, "-n", "dev1", "get", "pods"); err != nil {
		t.Fatalf("deployer's token in dev1: %v", err)
	}

	// Restart: down leaves nothing behind; up brings the workload back.
	e.mustRun("", "down")
	if code := up.wait(t); code != 0 {
		t.Fatalf("up exited %d:\n%s", code, up.stderr)
	}
	assertNothingLeft(t, filepath.Join(e.home, "cluster"))

	restart := time.Now()
	up = e.startUpWithin(10*time.Minute, "--registry-addr", addr)
	t.Logf("restart to ready in %s", time.Since(restart).Round(time.Millisecond))
	e.mustKubectl("-n", "dev1", "rollout", "status", "deployment/hello", "--timeout=3m")
	eventually(t, "hello serves again after the restart", 2*time.Minute, func() error {
		body, err := e.kubectl("get", "--raw", "/api/v1/namespaces/dev1/services/hello:80/proxy/")
		if err != nil || !strings.Contains(body, "hello from slipway") {
			return fmt.Errorf("%v %q", err, body)
		}
		return nil
	})

	var status struct {
		Nodes []struct{ Ready bool } `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("", "cluster", "status", "-o", "json").stdout), &status); err != nil || len(status.Nodes) != 1 || !status.Nodes[0].Ready {
		t.Fatalf("cluster status: %v %+v", err, status)
	}

	// Killed with SIGKILL, slipway leaves its pods' containers running
	// under their shims; the next up ends them and starts clean.
	clusterDir := filepath.Join(e.home, "cluster")
	killHard := func() []string {
		t.Helper()
		_ = up.cmd.Process.Signal(syscall.SIGKILL)
		up.wait(t)
		shims := shimsOf(clusterDir)
		if len(shims) == 0 {
			t.Fatal("no shim outlived a killed slipway: nothing to clear")
		}
		return shims
	}
	left := killHard()
	up = e.startUpWithin(10*time.Minute, "--registry-addr", addr)
	for _, pid := range left {
		if _, err := os.Stat("/proc/" + pid); err == nil && slices.Contains(shimsOf(clusterDir), pid) {
			t.Errorf("shim %s of the killed run still runs after up", pid)
		}
	}
	if !strings.Contains(up.stdout.String(), "ended what a killed run left") {
		t.Errorf("up did not say it cleared the killed run's leftovers:\n%s", up.stdout)
	}
	e.mustKubectl("-n", "dev1", "rollout", "status", "deployment/hello", "--timeout=3m")
	eventually(t, "hello serves after a start that followed a kill", 2*time.Minute, func() error {
		body, err := e.kubectl("get", "--raw", "/api/v1/namespaces/dev1/services/hello:80/proxy/")
		if err != nil || !strings.Contains(body, "hello from slipway") {
			return fmt.Errorf("%v %q", err, body)
		}
		return nil
	})
	// And `down` with nothing running ends what a killed run left.
	killHard()
	r := e.mustRun("", "down")
	t.Logf("down after a kill:\n%s", r.stderr)
	if !strings.Contains(r.stderr, "ended what a killed run left") {
		t.Errorf("down after a kill: %s", r.stderr)
	}
	assertNothingLeft(t, clusterDir)
	e.mustRun("", "cluster", "reset")
}

// shimsOf lists the PIDs of containerd shims serving the cluster in dir.
func shimsOf(clusterDir string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(data), "containerd-shim") && strings.Contains(string(data), clusterDir+"/") {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

// assertNothingLeft checks that no process, mount or network namespace of
// the cluster outlives `down`.
func assertNothingLeft(t *testing.T, clusterDir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(data), "\x00", " ")
		if strings.Contains(cmdline, clusterDir) {
			t.Errorf("still running after down: %s", cmdline)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, clusterDir) {
			t.Errorf("still mounted after down: %s", line)
		}
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "cni-") {
		t.Errorf("network namespaces left after down:\n%s", out)
	}
	if _, err := os.Stat("/sys/class/net/slipway0"); err == nil {
		t.Error("bridge slipway0 left after down")
	}
}

// canI asks `kubectl auth can-i` and returns its answer, yes or no
// (kubectl's warnings, such as a cluster-scoped resource asked with -n,
// left out).
func (e *env) canI(args ...string) string {
	e.t.Helper()
	out, _ := e.kubectl(append([]string{"auth", "can-i"}, args...)...)
	answer, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(answer)
}

// hostEscapePod writes the manifest of a pod that would own the node, a
// privileged container with the host's / mounted, for Pod Security to
// refuse; it returns the file's path.
func hostEscapePod(t *testing.T, namespace, image string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "escape.yaml")
	writeFile(t, path, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: escape, namespace: %s}
spec:
  containers:
  - {name: shell, image: %s, securityContext: {privileged: true}, volumeMounts: [{name: host, mountPath: /host}]}
  volumes: [{name: host, hostPath: {path: /}}]
`, namespace, image))
	return path
}
