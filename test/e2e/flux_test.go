package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/components"
)

// fluxCLI builds (or takes from the cache) the real flux command line.
func fluxCLI(t *testing.T) string {
	t.Helper()
	cache, _ := os.UserCacheDir()
	paths, err := components.Ensure(context.Background(), components.FluxCLI, components.Options{CacheDir: filepath.Join(cache, "slipway"), Progress: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	return paths["flux"]
}

// git runs the real git with the given environment.
func gitCmd(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := gitCommand(args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// gitCommand is git as a user runs it: trusting the CAs its repository's
// http.sslCAInfo names (`git clone -c http.sslCAInfo=...`), so a
// GIT_SSL_CAINFO of the machine's, which would win over it, is left out.
func gitCommand(args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_SSL_CAINFO=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=ops", "GIT_AUTHOR_EMAIL=ops@example.com",
		"GIT_COMMITTER_NAME=ops", "GIT_COMMITTER_EMAIL=ops@example.com")
	return cmd
}

// fluxObject is the part of a Flux object's status the tests read.
type fluxObject struct {
	Status struct {
		LastAttemptedRevision string `json:"lastAttemptedRevision"`
		Conditions            []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

func (o fluxObject) condition(typ string) (status, reason, message string) {
	for _, c := range o.Status.Conditions {
		if c.Type == typ {
			return c.Status, c.Reason, c.Message
		}
	}
	return "", "", ""
}

// TestFlux runs Flux in the cluster as the line uses it: the real flux CLI
// checks the install; a team's HelmRelease follows an OCI HelmRepository
// in the embedded registry; a higher chart version upgrades it, found on
// the platform's notice of the push and on request; a failing upgrade is
// rolled back; and the multi-tenancy lockdown keeps each team in its own
// namespace. The registry speaks the token flow, as ACR does, so
// containerd's pulls, source-controller's chart pulls and the teams'
// pushes all go through it.
func TestFlux(t *testing.T) {
	e := clusterEnv(t)
	fluxBin := fluxCLI(t)
	// Addresses other than the defaults, given as flags to up alone: every
	// later command must find them from the running platform.
	regPort := strings.Split(freeAddr(t), ":")[1]
	regAddr := "127.0.0.1:" + regPort
	gitAddr := freeAddr(t)
	start := time.Now()
	up := e.startUpWithin(45*time.Minute, "--registry-addr", regAddr, "--git-addr", gitAddr, "--registry-token-auth")
	t.Logf("platform with cluster and Flux ready in %s (includes any first build)", time.Since(start).Round(time.Millisecond))

	// The registry sends clients for a token, as ACR does.
	resp, err := (&http.Client{Transport: e.transport()}).Get("https://" + regAddr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := `Bearer realm="https://` + regAddr + `/oauth2/token"`; resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), want) {
		t.Fatalf("registry's challenge: %s %q, want 401 %s", resp.Status, resp.Header.Get("WWW-Authenticate"), want)
	}

	flux := func(args ...string) (string, error) {
		cmd := exec.Command(fluxBin, append([]string{"--context", "slipway"}, args...)...)
		cmd.Env = append(os.Environ(), e.vars...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	// The real flux CLI: every check passes and it lists the fleet.
	out, err := flux("check")
	if err != nil || !strings.Contains(out, "all checks passed") {
		t.Fatalf("flux check: %v\n%s", err, out)
	}
	t.Logf("flux check:\n%s", out)
	out, err = flux("get", "all", "-A")
	if err != nil || !strings.Contains(out, "gitrepository/flux-system") || !strings.Contains(out, "kustomization/flux-system") {
		t.Fatalf("flux get all -A: %v\n%s", err, out)
	}
	if got := e.mustRun("", "get", "all", "-A").stdout; !strings.Contains(got, "kustomization/tenants-staging") || !strings.Contains(got, "True") {
		t.Fatalf("slipway get all -A:\n%s", got)
	}

	// The fleet repository holds Flux itself and the tenant overlays.
	adminPassword := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	fleetURL := fmt.Sprintf("https://admin:%s@%s/ops/fleet.git", adminPassword, gitAddr)
	fleet := t.TempDir()
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fleetURL, fleet)
	for _, f := range []string{"clusters/slipway/flux-system/gotk-components.yaml", "clusters/slipway/flux-system/gotk-sync.yaml",
		"clusters/slipway/flux-system/kustomization.yaml", "clusters/slipway/tenants.yaml",
		"tenants/staging/kustomization.yaml", "tenants/prod/kustomization.yaml"} {
		if _, err := os.Stat(filepath.Join(fleet, f)); err != nil {
			t.Errorf("fleet repository lacks %s", f)
		}
	}
	// Teams cannot push to it.
	dev1Password := strings.TrimSpace(e.mustRun("", "user", "set", "dev1", "--push", "dev1/").stdout)
	dev2Password := strings.TrimSpace(e.mustRun("", "user", "set", "dev2", "--push", "dev2/").stdout)

	// Ops onboards two teams through the fleet repository: a staging
	// namespace each, and an account with admin rights there only.
	var resources []string
	for _, team := range []string{"dev1", "dev2"} {
		ns := team + "-staging"
		writeFile(t, filepath.Join(fleet, "tenants/staging", team+".yaml"), fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: %[2]s, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[2]s-admin, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: ServiceAccount, name: %[2]s, namespace: %[1]s}]
`, ns, team))
		resources = append(resources, team+".yaml")
	}
	writeFile(t, filepath.Join(fleet, "tenants/staging/kustomization.yaml"),
		"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: ["+strings.Join(resources, ", ")+"]\n")
	gitCmd(t, fleet, "add", "--all")
	gitCmd(t, fleet, "commit", "--quiet", "-m", "tenants: onboard dev1 and dev2 in staging")
	dev1Fleet := fmt.Sprintf("https://dev1:%s@%s/ops/fleet.git", dev1Password, gitAddr)
	if out, err := gitCommand("-C", fleet, "push", dev1Fleet, "HEAD:main").CombinedOutput(); err == nil {
		t.Fatalf("dev1 pushed to the fleet repository:\n%s", out)
	} else if !strings.Contains(string(out), "403") {
		t.Fatalf("dev1's push to the fleet repository failed, but not as refused (403):\n%s", out)
	}
	gitCmd(t, fleet, "push", "--quiet", "origin", "HEAD:main")
	e.mustRun("", "reconcile", "kustomization", "tenants-staging", "--with-source", "--timeout", "3m")
	e.mustKubectl("get", "namespace", "dev1-staging", "dev2-staging")

	// Each team publishes charts under its own prefix; Flux reads them with
	// the team's credentials, kept in a Secret of the team's namespace.
	for team, password := range map[string]string{"dev1": dev1Password, "dev2": dev2Password} {
		e.mustKubectl("-n", team+"-staging", "create", "secret", "generic", "registry",
			"--from-literal=username="+team, "--from-literal=password="+password, "--from-file=ca.crt="+e.caFile())
	}
	e.mustRun(dev1Password, "login", regAddr, "-u", "dev1", "--password-stdin")

	// The targets checked as a platform that uses them from outside
	// would: this cluster and its Flux, this registry through the token
	// flow, the fleet on this git server. Then what each refuses, named
	// before anything is written.
	check := e.run("", "target", "check", "--context", "slipway", "--registry", regAddr, "--registry-repo", "dev1/check", "--git", fleetURL)
	t.Logf("slipway target check:\n%s%s", check.stdout, check.stderr)
	for _, want := range []string{"✔ cluster", "cluster admin", "✔ helm-controller: Flux " + components.FluxVersion, "✔ kustomize-controller",
		"✔ registry", "as dev1: may push to dev1/check", "✔ git", "as admin: may push"} {
		if check.code != 0 || !strings.Contains(check.stdout, want) {
			t.Errorf("slipway target check (exit %d) lacks %q", check.code, want)
		}
	}
	wrongPassword := *e
	wrongPassword.vars = append(append([]string{}, e.vars...), "SLIPWAY_REGISTRY_USERNAME=dev1", "SLIPWAY_REGISTRY_PASSWORD=not-the-password")
	for _, c := range []struct {
		env  *env
		args []string
		want string
	}{
		{e, []string{"--context", "no-such-context"}, `context "no-such-context" is not in ` + filepath.Join(e.home, "kubeconfig") + " (it has: slipway)"},
		{e, []string{"--registry", regAddr, "--registry-repo", "dev2/check"}, "registry " + regAddr + " refuses a push to dev2/check as dev1"},
		{&wrongPassword, []string{"--registry", regAddr}, "registry " + regAddr + " refuses the credentials (as dev1)"},
		{e, []string{"--git", dev1Fleet}, `the git host refuses a push to https://` + gitAddr + `/ops/fleet.git as dev1: user "dev1" may not push to ops/fleet`},
	} {
		r := c.env.run("", append([]string{"target", "check"}, c.args...)...)
		if r.code != 1 || !strings.Contains(r.stdout, c.want) || !strings.Contains(r.stderr, "nothing was written") {
			t.Errorf("slipway target check %v: exit %d, want 1 and %q:\n%s%s", c.args, r.code, c.want, r.stdout, r.stderr)
		}
	}
	// The push was only begun: nothing is in the repository.
	req, _ := http.NewRequest(http.MethodGet, "https://"+regAddr+"/v2/dev1/check/tags/list", nil)
	req.SetBasicAuth("admin", adminPassword)
	if tags, err := (&http.Client{Transport: e.transport()}).Do(req); err != nil {
		t.Fatal(err)
	} else if tags.Body.Close(); tags.StatusCode != http.StatusNotFound {
		t.Errorf("after the registry check, dev1/check answers %s, want 404", tags.Status)
	}

	image := strings.TrimSpace(e.mustRun("", "build", "testdata/greeter", "--image", "dev1/greeter", "--platform", "linux/amd64").stdout)
	chartDir := filepath.Join(t.TempDir(), "greeter")
	e.mustRun("", "chart", "init", chartDir, "--name", "greeter", "--image", "dev1/greeter")
	values := readFile(t, filepath.Join(chartDir, "values.yaml"))
	pushChartTo := func(repository, version, greeting string, failReady bool) time.Time {
		t.Helper()
		env := fmt.Sprintf("env:\n  - {name: GREETING, value: %q}\n", greeting)
		if failReady {
			env += "  - {name: FAIL_READY, value: \"1\"}\n"
		}
		v := strings.Replace(values, "env: []\n", env, 1)
		v = strings.Replace(v, "probes:\n  path: /\n", "probes:\n  path: /healthz\n", 1)
		v = strings.Replace(v, "  periodSeconds: 5\n", "  periodSeconds: 1\n", 1)
		writeFile(t, filepath.Join(chartDir, "values.yaml"), v)
		e.mustRun("", "chart", "push", chartDir, "--repository", repository, "--version", version, "--image", image)
		return time.Now()
	}
	pushChart := func(version, greeting string, failReady bool) time.Time {
		t.Helper()
		return pushChartTo("dev1/charts", version, greeting, failReady)
	}
	pushChart("0.1.0", "first", false)

	apply := func(yaml string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "m.yaml")
		writeFile(t, path, yaml)
		e.mustKubectl("apply", "-f", path)
	}
	for _, team := range []string{"dev1", "dev2"} {
		apply(fmt.Sprintf(`apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: %s-staging}
spec:
  type: oci
  url: oci://10.244.0.1:%s/%s/charts
  interval: 1m
  secretRef: {name: registry}
  certSecretRef: {name: registry}
`, team, regPort, team))
	}
	release := func(name, extra string) string {
		return fmt.Sprintf(`apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: %s, namespace: dev1-staging}
spec:
  interval: 1m
  timeout: 40s
  chart:
    spec:
      chart: greeter
      version: ">=0.1.0"
      interval: 1m
      sourceRef: {kind: HelmRepository, name: charts}
  upgrade:
    remediation: {retries: 0, remediateLastFailure: true, strategy: rollback}
%s`, name, extra)
	}
	apply(release("greeter", "  serviceAccountName: dev1\n"))

	hr := func(ns, name string) fluxObject {
		out, err := e.kubectl("-n", ns, "get", "helmrelease", name, "-o", "json")
		var o fluxObject
		if err == nil {
			_ = json.Unmarshal([]byte(out), &o)
		}
		return o
	}
	waitVersion := func(version string, within time.Duration) {
		t.Helper()
		eventually(t, "greeter "+version+" Ready", within, func() error {
			o := hr("dev1-staging", "greeter")
			status, _, msg := o.condition("Ready")
			if o.Status.LastAttemptedRevision != version || status != "True" {
				return fmt.Errorf("revision %q ready %q: %s", o.Status.LastAttemptedRevision, status, msg)
			}
			return nil
		})
	}
	serves := func(greeting string) {
		t.Helper()
		eventually(t, "greeter answers "+greeting, time.Minute, func() error {
			body, err := e.kubectl("get", "--raw", "/api/v1/namespaces/dev1-staging/services/greeter:80/proxy/")
			if err != nil || !strings.Contains(body, "greeting: "+greeting) {
				return fmt.Errorf("%v %q", err, body)
			}
			return nil
		})
	}
	installStart := time.Now()
	waitVersion("0.1.0", 3*time.Minute)
	t.Logf("greeter 0.1.0 installed in %s", time.Since(installStart).Round(time.Millisecond))
	serves("first")

	// A higher version upgrades the release: first found because the
	// platform heard of the push and asked Flux to look at the chart, then
	// on a user's request.
	pushed := pushChart("0.2.0", "second", false)
	waitVersion("0.2.0", 3*time.Minute)
	noticed := time.Since(pushed)
	serves("second")
	// dev1's namespace was made by hand, with no Receiver: the platform
	// asked for the reconcile itself.
	if log := readFile(t, filepath.Join(e.home, "logs", "chart-pushes.log")); !strings.Contains(log, "dev1/charts/greeter:0.2.0 pushed by dev1: ") ||
		!strings.Contains(log, "HelmChart dev1-staging/dev1-staging-greeter: asked Flux to reconcile") {
		t.Errorf("the platform did not ask Flux to look at the pushed chart; chart-pushes.log:\n%s", log)
	}
	pushed = pushChart("0.3.0", "third", false)
	e.mustRun("", "reconcile", "hr", "greeter", "-n", "dev1-staging", "--with-source", "--timeout", "3m")
	waitVersion("0.3.0", 3*time.Minute)
	requested := time.Since(pushed)
	serves("third")
	t.Logf("push-to-Ready: %s on the platform's notice of the push, %s with slipway reconcile --with-source", noticed.Round(time.Millisecond), requested.Round(time.Millisecond))

	// An upgrade whose pods never become ready is rolled back, and the
	// previous version keeps serving all along.
	pushChart("0.4.0", "broken", true)
	e.run("", "reconcile", "hr", "greeter", "-n", "dev1-staging", "--with-source", "--timeout", "20s")
	eventually(t, "failed upgrade rolled back", 3*time.Minute, func() error {
		o := hr("dev1-staging", "greeter")
		status, reason, msg := o.condition("Remediated")
		if status != "True" || o.Status.LastAttemptedRevision != "0.4.0" {
			return fmt.Errorf("remediated=%q %s %s (attempted %s)", status, reason, msg, o.Status.LastAttemptedRevision)
		}
		return nil
	})
	serves("third")
	if status, reason, msg := hr("dev1-staging", "greeter").condition("Ready"); status != "False" {
		t.Fatalf("after the failed upgrade, Ready=%s %s %s", status, reason, msg)
	}
	if got := e.mustKubectl("-n", "dev1-staging", "get", "deployment", "greeter", "-o", "jsonpath={.metadata.labels.helm\\.sh/chart}"); got != "greeter-0.3.0" {
		t.Fatalf("after the rollback the deployment is from %q, want greeter-0.3.0", got)
	}

	// Lockdown. A release that refers to another team's source is refused;
	// one that targets another team's namespace, or names no account (and
	// so acts as "default", which has no rights), cannot deploy.
	apply(strings.Replace(release("borrowed-source", "  serviceAccountName: dev1\n"),
		"sourceRef: {kind: HelmRepository, name: charts}", "sourceRef: {kind: HelmRepository, name: charts, namespace: dev2-staging}", 1))
	apply(release("other-namespace", "  serviceAccountName: dev1\n  targetNamespace: dev2-staging\n"))
	apply(release("no-account", ""))
	expectRefused := func(name, want string) {
		t.Helper()
		eventually(t, name+" refused", 3*time.Minute, func() error {
			status, reason, msg := hr("dev1-staging", name).condition("Ready")
			if status != "False" || !strings.Contains(msg, want) {
				return fmt.Errorf("ready=%q %s: %s", status, reason, msg)
			}
			t.Logf("%s: %s: %s", name, reason, msg)
			return nil
		})
	}
	expectRefused("other-namespace", "system:serviceaccount:dev1-staging:dev1")
	expectRefused("no-account", "system:serviceaccount:dev1-staging:default")
	// helm-controller refuses a cross-namespace source before it records
	// any status (it logs "cross-namespace references are not allowed"):
	// the release never becomes ready and no chart is made for it in dev2's
	// namespace, though the same release reading its own namespace's
	// source would have been reconciled long since.
	if status, _, _ := hr("dev1-staging", "borrowed-source").condition("Ready"); status == "True" {
		t.Fatal("a release reading dev2's chart source became Ready")
	}
	if out := e.mustKubectl("-n", "dev2-staging", "get", "helmcharts", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Fatalf("a chart was made in dev2-staging for dev1's release: %s", out)
	}
	// slipway wait says why at once, instead of waiting for a status that never comes.
	if r := e.run("", "wait", "borrowed-source", "--team", "dev1", "--env", "staging", "--version", "0.4.0", "--timeout", "1m"); r.code == 0 || !strings.Contains(r.stderr, "--no-cross-namespace-refs") {
		t.Fatalf("slipway wait on the cross-namespace release: exit %d %s", r.code, r.stderr)
	}
	logs := e.mustKubectl("-n", "flux-system", "logs", "deployment/helm-controller")
	if !strings.Contains(logs, "cross-namespace references are not allowed: cannot access HelmChart dev2-staging/dev1-staging-borrowed-source") {
		t.Fatal("helm-controller's log does not say why borrowed-source was refused")
	}
	if out := e.mustKubectl("-n", "dev2-staging", "get", "deployments,services,secrets", "-o", "name"); strings.Contains(out, "greeter") || strings.Contains(out, "helm.release") {
		t.Fatalf("dev1's releases reached dev2-staging:\n%s", out)
	}

	// Ops onboards a third team with slipway: the tenant's chart source
	// and the fleet remote name the addresses up actually serves (given
	// only to up), and Flux pulls the team's chart from there.
	dev3Password := strings.TrimSpace(e.mustRun("", "tenant", "create", "dev3", "--repo", "greeter").stdout)
	if dev3Password == "" {
		t.Fatal("tenant create printed no password for dev3")
	}
	if got := e.mustKubectl("-n", "dev3-staging", "get", "helmrepository", "charts", "-o", "jsonpath={.spec.url}"); got != "oci://10.244.0.1:"+regPort+"/dev3/charts" {
		t.Fatalf("dev3's chart source is %q, want the served registry port %s", got, regPort)
	}
	if got := e.mustRun("", "tenant", "list").stdout; !strings.Contains(got, "dev3") {
		t.Fatalf("tenant list: %q", got)
	}
	gitCmd(t, "", "-c", "http.sslCAInfo="+e.caFile(), "ls-remote", fmt.Sprintf("https://dev3:%s@%s/dev3/greeter.git", dev3Password, gitAddr))
	e.mustRun("", "release", "create", "dev3/greeter", "--range", ">=1.0.0")
	e.mustRun(dev3Password, "login", regAddr, "-u", "dev3", "--password-stdin")
	pushChartTo("dev3/charts", "1.0.0", "from dev3", false)
	e.mustRun("", "reconcile", "hr", "greeter", "-n", "dev3-staging", "--with-source", "--timeout", "3m")
	eventually(t, "dev3's greeter 1.0.0 Ready", 3*time.Minute, func() error {
		o := hr("dev3-staging", "greeter")
		if status, _, msg := o.condition("Ready"); o.Status.LastAttemptedRevision != "1.0.0" || status != "True" {
			return fmt.Errorf("revision %q ready %q: %s", o.Status.LastAttemptedRevision, status, msg)
		}
		return nil
	})

	// dev3's namespaces enforce the restricted Pod Security Standard, and
	// its account cannot relabel them.
	dev3 := "--as=system:serviceaccount:dev3-staging:dev3"
	privileged := hostEscapePod(t, "dev3-staging", image)
	if out, err := e.kubectl("apply", "-f", privileged, dev3); err == nil || !strings.Contains(out, "violates PodSecurity") {
		t.Fatalf("dev3's account created a privileged pod with the host's / mounted: %v %s", err, out)
	}
	if out := e.canI("patch", "namespace/dev3-staging", dev3); out != "no" {
		t.Fatalf("dev3's account may relabel its namespace: %s", out)
	}

	// A chart whose helm test hook is a ClusterRoleBinding: slipway test
	// creates hooks as the team's account, so it is refused and nothing is
	// bound.
	writeFile(t, filepath.Join(chartDir, "templates", "tests", "escalate.yaml"), `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: dev3-escalate
  annotations: {helm.sh/hook: test, helm.sh/hook-weight: "-5"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: dev3, namespace: dev3-staging}]
`)
	pushChartTo("dev3/charts", "1.0.1", "from dev3", false)
	e.mustRun("", "reconcile", "hr", "greeter", "-n", "dev3-staging", "--with-source", "--timeout", "3m")
	e.mustRun("", "wait", "greeter", "--team", "dev3", "--env", "staging", "--version", "1.0.1", "--timeout", "3m")
	if r := e.run("", "test", "greeter", "--team", "dev3", "--env", "staging"); r.code == 0 || !strings.Contains(strings.ToLower(r.stdout+r.stderr), "forbidden") {
		t.Fatalf("slipway test of a chart whose test hook binds cluster-admin: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if out, err := e.kubectl("get", "clusterrolebinding", "dev3-escalate"); err == nil {
		t.Fatalf("the test hook's ClusterRoleBinding exists: %s", out)
	}

	// A fleet from before the registry spoke HTTPS: dev3's chart source
	// says insecure: true and its Secret has no CA. The next start moves
	// it to the platform's CA, and Flux reads dev3's charts again.
	source := filepath.Join(fleet, "tenants", "base", "dev3", "source-charts.yaml")
	gitCmd(t, fleet, "pull", "--quiet", "origin", "main")
	writeFile(t, source, fmt.Sprintf("apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\nspec:\n  insecure: true\n  interval: 10m0s\n  secretRef:\n    name: registry\n  type: oci\n  url: oci://10.244.0.1:%s/dev3/charts\n", regPort))
	// Nor had it Flux's notifications.
	for _, env := range []string{"staging", "prod"} {
		overlay := filepath.Join(fleet, "tenants", env, "dev3")
		gitCmd(t, overlay, "rm", "--quiet", "notifications.yaml")
		k := filepath.Join(overlay, "kustomization.yaml")
		writeFile(t, k, strings.Replace(readFile(t, k), "- notifications.yaml\n", "", 1))
	}
	gitCmd(t, fleet, "commit", "--quiet", "-am", "dev3's source as an older slipway wrote it")
	gitCmd(t, fleet, "push", "--quiet", "origin", "HEAD:main")
	e.mustKubectl("-n", "dev3-staging", "patch", "secret", "registry", "--type=json", `-p=[{"op":"remove","path":"/data/ca.crt"}]`)
	e.mustRun("", "down")
	up.wait(t)
	e.startUpWithin(10*time.Minute, "--registry-addr", regAddr, "--git-addr", gitAddr)
	// The stop held the fleet's Kustomization (suspended, so the next
	// start's kustomize-controller waits for source-controller); the
	// start must have let it go again.
	if got := e.mustKubectl("-n", "flux-system", "get", "kustomization", "flux-system", "-o", "jsonpath={.spec.suspend}"); strings.TrimSpace(got) != "false" {
		t.Fatalf("after a restart the fleet's Kustomization has suspend=%q, want false", got)
	}
	gitCmd(t, fleet, "pull", "--quiet", "origin", "main")
	if got := readFile(t, source); strings.Contains(got, "insecure") || !strings.Contains(got, "certSecretRef") {
		t.Fatalf("dev3's source after the restart:\n%s", got)
	}
	if got := e.mustKubectl("-n", "dev3-staging", "get", "secret", "registry", "-o", "jsonpath={.data.ca\\.crt}"); got == "" {
		t.Fatal("dev3's registry Secret has no CA after the restart")
	}
	e.mustRun("", "reconcile", "kustomization", "tenants-staging", "--with-source", "--timeout", "3m")
	pushChartTo("dev3/charts", "1.0.2", "from dev3, after the move to HTTPS", false)
	e.mustRun("", "reconcile", "hr", "greeter", "-n", "dev3-staging", "--with-source", "--timeout", "3m")
	e.mustRun("", "wait", "greeter", "--team", "dev3", "--env", "staging", "--version", "1.0.2", "--timeout", "3m")

	// The restart gave dev3 its notifications back. A chart push now
	// reaches Ready through dev3's Receiver alone: the platform calls it as
	// ACR's webhook would, and no one asks Flux to reconcile.
	gitCmd(t, fleet, "pull", "--quiet", "origin", "main")
	if _, err := os.Stat(filepath.Join(fleet, "tenants", "staging", "dev3", "notifications.yaml")); err != nil {
		t.Fatalf("the restart did not give dev3 its notifications back: %v", err)
	}
	eventually(t, "dev3's Receiver Ready", 2*time.Minute, func() error {
		out, err := e.kubectl("-n", "dev3-staging", "get", "receiver", "chart-pushes", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status} {.status.webhookPath}")
		if err != nil || !strings.HasPrefix(out, "True /hook/") {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	pushed = pushChartTo("dev3/charts", "1.0.3", "from dev3, by Receiver", false)
	eventually(t, "dev3's greeter 1.0.3 Ready with no reconcile asked", 3*time.Minute, func() error {
		o := hr("dev3-staging", "greeter")
		if status, _, msg := o.condition("Ready"); o.Status.LastAttemptedRevision != "1.0.3" || status != "True" {
			return fmt.Errorf("revision %q ready %q: %s", o.Status.LastAttemptedRevision, status, msg)
		}
		return nil
	})
	t.Logf("push-to-Ready through dev3's Receiver alone: %s", time.Since(pushed).Round(time.Millisecond))
	if log := readFile(t, filepath.Join(e.home, "logs", "chart-pushes.log")); !strings.Contains(log, "dev3/charts/greeter:1.0.3 pushed by dev3: Receiver dev3-staging/chart-pushes called") ||
		strings.Contains(log, "dev3/charts/greeter:1.0.3 pushed by dev3: Receiver dev3-staging/chart-pushes is not ready") {
		t.Errorf("the platform did not go through dev3's Receiver; chart-pushes.log:\n%s", log)
	}

	// Flux's events reach the timeline, signed with each owner's key.
	// The person logged in is dev3: it sees dev3's events and no other's.
	type timelineEvent struct{ Source, Team, Namespace, Kind, Name, Reason, Message, Revision string }
	readEvents := func(args ...string) []timelineEvent {
		var list []timelineEvent
		if err := json.Unmarshal([]byte(e.mustRun("", append([]string{"events", "-o", "json"}, args...)...).stdout), &list); err != nil {
			t.Fatal(err)
		}
		return list
	}
	eventually(t, "Flux's event of dev3's upgrade to 1.0.3 on the timeline", time.Minute, func() error {
		list := readEvents()
		var upgraded, pushedChart bool
		for _, ev := range list {
			if ev.Team != "dev3" {
				return fmt.Errorf("dev3 sees another's event: %+v", ev)
			}
			upgraded = upgraded || (ev.Source == "flux" && ev.Kind == "HelmRelease" && ev.Namespace == "dev3-staging" && strings.Contains(ev.Message, "1.0.3"))
			pushedChart = pushedChart || (ev.Source == "registry" && ev.Revision == "1.0.3")
		}
		if !upgraded || !pushedChart {
			return fmt.Errorf("upgrade event %v, chart push %v among %d events", upgraded, pushedChart, len(list))
		}
		return nil
	})
	if r := e.run("", "events", "--team", "dev1"); r.code == 0 || !strings.Contains(r.stderr, "only its own team") {
		t.Fatalf("dev3 reading dev1's events: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.vars = append(e.vars, "SLIPWAY_REGISTRY_USERNAME=admin", "SLIPWAY_REGISTRY_PASSWORD="+strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password"))))
	eventually(t, "the fleet's Kustomization events on ops's timeline", time.Minute, func() error {
		for _, ev := range readEvents("--since", "30m") {
			if ev.Source == "flux" && ev.Team == "" && ev.Namespace == "flux-system" && ev.Kind == "Kustomization" {
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})

	// Flux's objects as Prometheus reads them, labelled as Flux's own
	// dashboards expect.
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	series := ""
	for _, line := range strings.Split(scrape(t, e, gitAddr, "admin", admin, http.StatusOK), "\n") {
		if strings.HasPrefix(line, "gotk_resource_info{") && strings.Contains(line, `name="greeter"`) && strings.Contains(line, `exported_namespace="dev3-staging"`) {
			series = line
		}
	}
	for _, want := range []string{`customresource_kind="HelmRelease"`, `customresource_group="helm.toolkit.fluxcd.io"`, `ready="True"`,
		`suspended="false"`, `chart_version="1.0.3"`, `chart_name="greeter"`, `chart_source_name="charts"`, `reason="UpgradeSucceeded"`} {
		if !strings.Contains(series, want) {
			t.Errorf("dev3's greeter in gotk_resource_info lacks %s: %q", want, series)
		}
	}

	out, _ = flux("get", "all", "-A")
	t.Logf("flux get all -A:\n%s", out)
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
