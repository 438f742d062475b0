package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/components"
)

// TestLine plays the three tracks with `slipway demo --upgrade` on a
// running platform whose cluster starts one Kubernetes release back (ops
// upgrades it near the end, with both teams' apps, Flux's releases and a
// PersistentVolume's data on it, and dev1 ships through the upgraded
// line), then checks what must not happen: a version that fails its
// smoke test is not promoted, a broken build never reaches staging, one
// team cannot push to another's repository or registry prefix, and one
// team's account can do nothing in another team's namespaces.
func TestLine(t *testing.T) {
	e := clusterEnv(t)
	// The default addresses, as `slipway demo` uses them: the example
	// charts name the registry 127.0.0.1:5000 for their test image.
	regAddr, gitAddr := "127.0.0.1:5000", "127.0.0.1:3000"
	for _, addr := range []string{regAddr, gitAddr} {
		if ln, err := net.Listen("tcp", addr); err != nil {
			t.Fatalf("TestLine needs %s free (the example charts use the default registry address): %v", addr, err)
		} else {
			ln.Close()
		}
	}
	e.vars = append(e.vars, "SLIPWAY_GIT_ADDR="+gitAddr, "SLIPWAY_REGISTRY_ADDR="+regAddr)
	start := time.Now()
	older, newest := components.KubernetesVersions[len(components.KubernetesVersions)-2], components.KubernetesVersion
	up := e.startUpWithin(60*time.Minute, "--registry-addr", regAddr, "--kubernetes-version", older)
	t.Logf("platform ready in %s", time.Since(start).Round(time.Millisecond))
	if v := e.mustKubectl("get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.kubeletVersion}"); v != older {
		t.Fatalf("the new cluster runs %s, want %s as asked", v, older)
	}
	if st := e.mustRun("", "status").stdout; !strings.Contains(st, newest+" is available") {
		t.Errorf("slipway status does not offer the upgrade:\n%s", st)
	}
	upgradeFixtures(t, e, gitAddr, regAddr)

	demo := e.run("", "demo", "--upgrade")
	t.Logf("slipway demo:\n%s", demo.stdout)
	if demo.code != 0 || !strings.Contains(demo.stdout, "every step passed") {
		t.Fatalf("slipway demo: exit %d\n%s\n%s", demo.code, demo.stdout, demo.stderr)
	}
	for _, want := range []string{"ops      ", "dev1     ", "dev2     ", "stage Promote to prod (succeeded)", "push to ready in staging: median",
		// The plan names the deprecated object ops left in the fleet.
		"ops/fleet:clusters/slipway/legacy-endpoints.yaml  v1 Endpoints", "deprecated in 1.33", "discovery.k8s.io/v1 EndpointSlice",
		"upgraded the cluster from " + older + " to " + newest, "unavailable during the upgrade: dev2-prod/quotes",
		"API server, kubelet and kube-proxy: " + newest, "pushes hello 2.0"} {
		if !strings.Contains(demo.stdout, want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
	upgradeKeptEverything(t, e, newest)
	prodVersion := func(app, ns string) string {
		out, _ := e.kubectl("-n", ns, "get", "helmrelease", app, "-o", "jsonpath={.status.history[0].chartVersion}")
		return strings.TrimSpace(out)
	}
	// The example apps count their requests, and Prometheus scrapes them:
	// hello's request rate in prod is there for dev1 (its probes alone
	// make a rate).
	eventually(t, "hello's request rate in prod", 3*time.Minute, func() error {
		r := e.run("", "metrics", "hello", "--team", "dev1", "--env", "prod", "-o", "json")
		var m struct {
			Series []struct {
				Name   string
				Points []struct{ Value *float64 }
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &m); r.code != 0 || err != nil {
			return fmt.Errorf("slipway metrics hello: exit %d %v %s", r.code, err, r.stderr)
		}
		for _, s := range m.Series {
			if s.Name != "requests/s" {
				continue
			}
			for _, p := range s.Points {
				if p.Value != nil && *p.Value > 0 {
					return nil
				}
			}
		}
		return fmt.Errorf("no request rate yet:\n%s", r.stdout)
	})
	helloProd := prodVersion("hello", "dev1-prod")
	helloStaging := prodVersion("hello", "dev1-staging")
	if helloProd == "" || helloProd != helloStaging {
		t.Fatalf("after the demo hello runs %q in prod and %q in staging", helloProd, helloStaging)
	}

	// dev1 works on hello from a clone, with its own password.
	dev1 := "dev1-line-password"
	e.mustRun(dev1+"\n", "user", "set", "dev1", "--push", "dev1/", "--password-stdin")
	clone := filepath.Join(t.TempDir(), "hello")
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://dev1:%s@%s/dev1/hello.git", dev1, gitAddr), clone)
	runOf := func(commit string) runRecord { return e.waitRun(t, commit, finished) }
	stepStatus := func(r runRecord, name string) string {
		for _, s := range r.Stages {
			for _, j := range s.Jobs {
				for _, st := range j.Steps {
					if strings.HasPrefix(st.DisplayName, name) {
						return st.Status
					}
				}
			}
		}
		return "absent"
	}

	// A smoke test that fails: the version reaches staging, fails its
	// test, and is not promoted.
	writeFile(t, filepath.Join(clone, "slipway.yaml"), "smoke:\n- name: greets in French\n  path: /\n  contains: bonjour\n")
	failing := runOf(gitPush(t, clone, "a smoke test this version fails"))
	if failing.Status != "failed" || stepStatus(failing, "Test in staging") != "failed" || stepStatus(failing, "Promote") != "skipped" {
		t.Fatalf("failing smoke test: run %s, test %s, promote %s", failing.Status, stepStatus(failing, "Test in staging"), stepStatus(failing, "Promote"))
	}
	if got := prodVersion("hello", "dev1-prod"); got != helloProd {
		t.Fatalf("prod moved to %s after a failed test", got)
	}
	untested := prodVersion("hello", "dev1-staging")
	// The team cannot forge the evidence: its account may not write the
	// platform's records, and a record it writes in its own namespace
	// counts for nothing.
	dev1SA := "--as=system:serviceaccount:dev1-staging:dev1"
	for _, verb := range []string{"create", "update", "patch"} {
		if out := e.canI(verb, "configmaps", "-n", "slipway-system", dev1SA); out != "no" {
			t.Errorf("dev1's account can %s ConfigMaps in slipway-system: %s", verb, out)
		}
	}
	forged := filepath.Join(t.TempDir(), "forged.yaml")
	writeFile(t, forged, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: history-dev1-staging, namespace: dev1-staging}
data:
  hello: '[{"version":"%s","readyAt":"2026-01-01T00:00:00Z","test":{"passed":true,"at":"2026-01-01T00:00:00Z","checks":[{"name":"forged","passed":true}]}}]'
`, untested))
	e.mustKubectl("apply", "-f", forged, dev1SA)
	forgedSystem := filepath.Join(t.TempDir(), "forged-system.yaml")
	writeFile(t, forgedSystem, strings.Replace(readFile(t, forged), "namespace: dev1-staging", "namespace: slipway-system", 1))
	if out, err := e.kubectl("apply", "-f", forgedSystem, dev1SA); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("dev1's account wrote the platform's record: %v %s", err, out)
	}
	// Nor may it run a privileged pod with the host's / mounted.
	escape := hostEscapePod(t, "dev1-staging", "127.0.0.1:5000/slipway/http-check:latest")
	if out, err := e.kubectl("apply", "-f", escape, dev1SA); err == nil || !strings.Contains(out, "violates PodSecurity") {
		t.Errorf("dev1's account created a privileged pod: %v %s", err, out)
	}
	// Even by hand, promote refuses it.
	if r := e.run("", "promote", "hello", "--from", "staging", "--to", "prod"); r.code == 0 || !strings.Contains(r.stderr, "failed its tests") {
		t.Fatalf("promote of the version that failed its tests: exit %d %s", r.code, r.stderr)
	}
	writeFile(t, filepath.Join(clone, "slipway.yaml"), readFile(t, "../../examples/hello/slipway.yaml"))

	// A build that breaks: no image, no chart, staging unchanged.
	writeFile(t, filepath.Join(clone, "broken.go"), "package main\n\nfunc broken() { undefined() }\n")
	broken := runOf(gitPush(t, clone, "a change that does not compile"))
	if broken.Status != "failed" || stepStatus(broken, "Wait for") != "skipped" {
		t.Fatalf("broken build: run %s, wait %s", broken.Status, stepStatus(broken, "Wait for"))
	}
	time.Sleep(2 * time.Second)
	if got := prodVersion("hello", "dev1-staging"); got != untested {
		t.Fatalf("staging moved from %s to %s after a broken build", untested, got)
	}
	os.Remove(filepath.Join(clone, "broken.go"))

	// A version whose pods crash: the pipeline's wait fails fast, naming
	// the crash loop, well before Helm's own timeout, and it goes no further.
	writeFile(t, filepath.Join(clone, "crash.go"), "package main\n\nimport \"os\"\n\n// In the cluster (PORT is set there, not in unit tests) this version dies at once.\nfunc init() {\n\tif os.Getenv(\"PORT\") != \"\" {\n\t\tos.Exit(3)\n\t}\n}\n")
	crashing := runOf(gitPush(t, clone, "a version that crashes"))
	crashLog := e.mustRun("", "pipeline", "logs", fmt.Sprint(crashing.ID)).stdout
	if crashing.Status != "failed" || stepStatus(crashing, "Wait for") != "failed" || !strings.Contains(crashLog, "CrashLoopBackOff") {
		t.Fatalf("crashing version: run %s, wait %s\n%s", crashing.Status, stepStatus(crashing, "Wait for"), crashLog)
	}
	if got := prodVersion("hello", "dev1-prod"); got != helloProd {
		t.Fatalf("prod moved to %s", got)
	}
	dashboardFollowsAPush(t, e, clone, gitAddr, dev1)

	// dev1 cannot push to dev2's repository, nor under dev2's prefix.
	other := filepath.Join(t.TempDir(), "quotes")
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://dev1:%s@%s/dev2/quotes.git", dev1, gitAddr), other)
	writeFile(t, filepath.Join(other, "intruder"), "x\n")
	gitCmd(t, other, "add", "--all")
	gitCmd(t, other, "commit", "--quiet", "-m", "intrude")
	if out, err := gitCommand("-C", other, "push", "origin", "HEAD:main").CombinedOutput(); err == nil {
		t.Fatalf("dev1 pushed to dev2/quotes:\n%s", out)
	} else if !strings.Contains(string(out), "403") {
		t.Fatalf("dev1's push to dev2/quotes failed, but not as refused (403):\n%s", out)
	}
	e.mustRun(dev1, "login", regAddr, "-u", "dev1", "--password-stdin")
	if r := e.run("", "build", "../../examples/quotes", "--image", "dev2/quotes", "--platform", "linux/amd64"); r.code == 0 || !strings.Contains(r.stderr, "dev1/") {
		t.Fatalf("dev1 pushed under dev2/: exit %d %s", r.code, r.stderr)
	}

	// dev1 cannot promote dev2's app: the platform checks who asks.
	quotesProd := prodVersion("quotes", "dev2-prod")
	vars := e.vars
	e.vars = append(e.vars, "SLIPWAY_REGISTRY_USERNAME=dev1", "SLIPWAY_REGISTRY_PASSWORD="+dev1)
	r := e.run("", "promote", "quotes", "--team", "dev2", "--from", "staging", "--to", "prod")
	e.vars = vars
	if r.code == 0 || !strings.Contains(r.stderr, "does not belong to team dev2") {
		t.Fatalf("dev1 promoting dev2's quotes: exit %d %s", r.code, r.stderr)
	}
	if got := prodVersion("quotes", "dev2-prod"); got != quotesProd {
		t.Fatalf("dev2's prod moved from %s to %s", quotesProd, got)
	}
	// The promotions the pipelines made name the team's CI account.
	if got := e.mustKubectl("-n", "dev1-prod", "get", "helmrelease", "hello", "-o", "jsonpath={.metadata.annotations.slipway\\.dev/promoted-by}"); !strings.HasPrefix(got, "ci-dev1") {
		t.Errorf("hello in prod was promoted by %q, want the team's CI account", got)
	}

	// dev1's account: everything in its namespaces, nothing in dev2's.
	as := "--as=system:serviceaccount:dev1-staging:dev1"
	for _, ns := range []string{"dev1-staging", "dev1-prod", "dev2-staging", "dev2-prod"} {
		for _, verb := range []string{"get", "list", "create", "delete"} {
			for _, res := range []string{"pods", "deployments", "secrets", "helmreleases.helm.toolkit.fluxcd.io"} {
				want := "no"
				if ns == "dev1-staging" {
					want = "yes"
				}
				out, _ := e.kubectl("auth", "can-i", verb, res, "-n", ns, as)
				if got := strings.TrimSpace(out); got != want {
					t.Errorf("dev1-staging:dev1 can-i %s %s -n %s: %s, want %s", verb, res, ns, got, want)
				}
			}
		}
	}
	// The pipeline jobs' account, in dev1-ci: deploys and tests in
	// staging, looks at prod, and reaches nothing of dev2's.
	ci := "--as=system:serviceaccount:dev1-ci:ci"
	for _, tc := range []struct{ verb, res, ns, want string }{
		{"create", "deployments", "dev1-staging", "yes"},
		{"create", "pods/exec", "dev1-staging", "yes"},
		{"get", "helmreleases.helm.toolkit.fluxcd.io", "dev1-prod", "yes"},
		{"create", "deployments", "dev1-prod", "no"},
		{"get", "secrets", "dev1-prod", "no"},
		{"get", "pods", "dev2-staging", "no"},
		{"get", "secrets", "flux-system", "no"},
		{"create", "clusterrolebindings", "", "no"},
		{"update", "configmaps", "slipway-system", "no"},
	} {
		args := []string{tc.verb, tc.res, ci}
		if tc.ns != "" {
			args = append(args, "-n", tc.ns)
		}
		if out := e.canI(args...); out != tc.want {
			t.Errorf("dev1-ci:ci can-i %s %s -n %s: %s, want %s", tc.verb, tc.res, tc.ns, out, tc.want)
		}
	}
	if ns := e.mustKubectl("get", "namespace", "dev1-ci", "-o", "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}"); ns != "restricted" {
		t.Errorf("dev1-ci enforces %q, want restricted", ns)
	}
	// Each environment has its own account: dev1's prod account may not
	// touch staging, and neither reaches the cluster's own namespaces.
	for _, tc := range []struct{ as, ns string }{
		{"--as=system:serviceaccount:dev1-prod:dev1", "dev1-staging"},
		{as, "flux-system"},
		{as, "kube-system"},
	} {
		if out, _ := e.kubectl("auth", "can-i", "get", "secrets", "-n", tc.ns, tc.as); strings.TrimSpace(out) != "no" {
			t.Errorf("%s can read secrets in %s", tc.as, tc.ns)
		}
	}

	agentElsewhereShips(t, e, e, dev1)
	hostileJob(t, e, gitAddr)
	jobPodsGoWithACrash(t, e, up, regAddr, gitAddr)
}
