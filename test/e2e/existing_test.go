package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/testutil"
)

// TestLineOnAnExistingCluster plays the line through a platform that runs
// no cluster of its own, onto a cluster that runs already, as a team would
// on AKS with ACR. Platform A stands in for the cloud's cluster: it runs
// only the cluster (no Flux), and its node pulls from B's registry with
// the CA and a pull-only account it was given (cluster.registries, as AKS
// pulls from an attached ACR). Platform B runs on other ports with its
// registry challenging for tokens (as ACR does) and targets A's cluster
// by a kubeconfig context (cluster.existing), with the fleet repository
// on A's git server (cluster.existing.fleet, as on Azure Repos), which
// Flux reads with a read-only account of A's: B checks the cluster, the
// fleet's host and both accounts before writing anything, installs Flux
// there, onboards the teams, runs their jobs as pods in A's CI
// namespaces, and the demo's tracks pass through B onto A. The example
// apps' pipelines and charts are the ones the embedded line runs; only
// B's settings differ.
func TestLineOnAnExistingCluster(t *testing.T) {
	a := clusterEnv(t)
	b, bRegPort, pullPassword := platformForACluster(t)

	// A: the cluster alone, pulling from B's registry where the cluster
	// reaches it (A's node address, which B will listen on).
	const nodeHost = "10.244.0.1"
	passwordFile := filepath.Join(t.TempDir(), "aks-puller")
	writeFile(t, passwordFile, pullPassword+"\n")
	writeFile(t, filepath.Join(a.home, "config.yaml"), fmt.Sprintf(`cluster:
  registries:
  - {host: %q, caFile: %s, username: aks-puller, passwordFile: %s}
`, net.JoinHostPort(nodeHost, bRegPort), b.caFile(), passwordFile))
	a.vars = append(a.vars, "SLIPWAY_FLUX=false")
	aGit := freeAddr(t)
	a.startUpWithin(45*time.Minute, "--registry-addr", freeAddr(t), "--git-addr", aGit)
	if out, _ := a.kubectl("get", "namespace", "flux-system"); !strings.Contains(out, "NotFound") {
		t.Fatalf("the stand-in cluster runs a Flux of its own:\n%s", out)
	}
	// The fleet lives on A's git server, as on Azure Repos: an empty
	// repository made there by its owner, which B pushes to with an
	// account of A's and Flux reads from where A's cluster reaches it.
	a.mustRun("", "repo", "create", "ops/fleet")
	_, aGitPort, _ := net.SplitHostPort(aGit)
	fleetURL := "https://" + net.JoinHostPort(nodeHost, aGitPort) + "/ops/fleet.git"
	fleetPassword, wrongPassword := filepath.Join(t.TempDir(), "fleet-token"), filepath.Join(t.TempDir(), "stale-token")
	writeFile(t, fleetPassword, readFile(t, filepath.Join(a.home, "admin-password")))
	writeFile(t, wrongPassword, "expired-token\n")

	aKubeconfig := filepath.Join(a.home, "kubeconfig")
	b.vars = append(b.vars, "SLIPWAY_TARGET_KUBECONFIG="+aKubeconfig, "SLIPWAY_PLATFORM_HOST="+nodeHost, "SLIPWAY_REGISTRY_TOKEN_AUTH=true",
		"SLIPWAY_FLEET_URL="+fleetURL, "SLIPWAY_FLEET_USERNAME=admin", "SLIPWAY_FLEET_CA_FILE="+a.caFile())

	// A fleet host that refuses the credentials: B says so and writes
	// nothing.
	refused := b.runWithin(5*time.Minute, "up", "--target-context", "slipway", "--fleet-password-file", wrongPassword)
	if refused.code == 0 || !strings.Contains(refused.stderr, "the fleet repository (cluster.existing.fleet): the git host refuses the credentials (as admin)") {
		t.Fatalf("up with a fleet password the host refuses: exit %d\n%s", refused.code, refused.stderr)
	}
	if out, _ := a.kubectl("get", "namespace", "flux-system"); !strings.Contains(out, "NotFound") {
		t.Fatalf("a refused fleet got Flux's namespace:\n%s", out)
	}
	b.vars = append(b.vars, "SLIPWAY_FLEET_PASSWORD_FILE="+fleetPassword)

	// A context the file does not have: B says so and writes nothing.
	wrong := b.runWithin(5*time.Minute, "up", "--target-context", "aks-prod")
	if wrong.code == 0 || !strings.Contains(wrong.stderr, `context "aks-prod" is not in `+aKubeconfig+` (it has: slipway)`) {
		t.Fatalf("up with a context the kubeconfig lacks: exit %d\n%s", wrong.code, wrong.stderr)
	}
	if out, _ := a.kubectl("get", "namespace", "flux-system"); !strings.Contains(out, "NotFound") {
		t.Fatalf("a refused target got Flux's namespace:\n%s", out)
	}

	// Flux is given a read-only account of A's (every user of A's git
	// server may read ops/, only admins push there), named by flags; one
	// the host refuses stops the start before anything is written.
	readerPassword, readerFile := fmt.Sprintf("fleet-read-%d", time.Now().UnixNano()), filepath.Join(t.TempDir(), "fleet-read-token")
	a.mustRun(readerPassword+"\n", "user", "set", "fleet-reader", "--password-stdin")
	writeFile(t, readerFile, readerPassword+"\n")
	badReader := b.runWithin(5*time.Minute, "up", "--target-context", "slipway", "--fleet-reader-username", "fleet-reader", "--fleet-reader-password-file", wrongPassword)
	if badReader.code == 0 || !strings.Contains(badReader.stderr, "the fleet repository's reader (cluster.existing.fleet.readerUsername): the git host refuses the credentials (as fleet-reader)") {
		t.Fatalf("up with a fleet reader the host refuses: exit %d\n%s", badReader.code, badReader.stderr)
	}
	if out, _ := a.kubectl("get", "namespace", "flux-system"); !strings.Contains(out, "NotFound") {
		t.Fatalf("a refused fleet reader got Flux's namespace:\n%s", out)
	}

	start := time.Now()
	up := b.startUpWithin(30*time.Minute, "--target-context", "slipway", "--fleet-reader-username", "fleet-reader", "--fleet-reader-password-file", readerFile)
	t.Logf("platform B ready on the existing cluster in %s", time.Since(start).Round(time.Millisecond))
	if out := up.stderr.String(); !strings.Contains(out, `existing cluster: context "slipway": https://`+nodeHost+`:6443`) {
		t.Errorf("B did not report the cluster it checked:\n%s", out)
	}
	if out := up.stderr.String(); !strings.Contains(out, "each team's Go caches are a claim of the cluster's default StorageClass slipway-local") {
		t.Errorf("B did not say where the jobs' Go caches are kept:\n%s", out)
	}
	// Flux runs in A, from B's registry, reading the fleet from B's git server.
	image := a.mustKubectl("-n", "flux-system", "get", "deployment", "source-controller", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	if !strings.HasPrefix(image, net.JoinHostPort(nodeHost, bRegPort)+"/") {
		t.Errorf("source-controller runs %s, not an image from B's registry", image)
	}
	if url := a.mustKubectl("-n", "flux-system", "get", "gitrepository", "flux-system", "-o", "jsonpath={.spec.url}"); url != fleetURL {
		t.Errorf("the fleet is read from %s, not A's git server (%s)", url, fleetURL)
	}
	if out := up.stderr.String(); !strings.Contains(out, "fleet repository: "+fleetURL+" as admin: may push (cluster.existing.fleet)") {
		t.Errorf("B did not report the fleet repository it checked:\n%s", out)
	}
	if out := up.stderr.String(); !strings.Contains(out, "fleet repository: "+fleetURL+" as fleet-reader: may read; Flux reads it with this account") || strings.Contains(out, "warning: the fleet's reader") {
		t.Errorf("B did not report the fleet's reader it checked, or found it may push:\n%s", out)
	}
	if user := a.mustKubectl("-n", "flux-system", "get", "secret", "flux-system", "-o", "jsonpath={.data.username}"); user != base64.StdEncoding.EncodeToString([]byte("fleet-reader")) {
		t.Errorf("Flux reads the fleet as %s (base64), not the read-only account", user)
	}

	demo := b.run("", "demo")
	t.Logf("slipway demo through B onto A's cluster:\n%s", demo.stdout)
	if demo.code != 0 || !strings.Contains(demo.stdout, "every step passed") {
		t.Fatalf("slipway demo: exit %d\n%s\n%s", demo.code, demo.stdout, demo.stderr)
	}
	for _, want := range []string{"stage Promote to prod (succeeded)", "push to ready in staging: median",
		// The monitoring track: the bake in staging catches a version
		// that fails, read through A's API server.
		"promotes quotes 1.2 by hand: refused while its critical alert fires"} {
		if !strings.Contains(demo.stdout, want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
	checkMonitoringThroughTheAPIServer(t, a, b)

	// What the line wrote, as A holds it (logged, to compare with what
	// the embedded cluster holds).
	for _, what := range [][]string{
		{"-n", "dev1-staging", "get", "helmrepository,helmrelease,receiver", "-o", "yaml"},
		{"-n", "dev1-ci", "get", "rolebinding", "-o", "yaml"},
		{"-n", "flux-system", "get", "gitrepository", "flux-system", "-o", "jsonpath={.spec}"},
	} {
		out, _ := a.kubectl(what...)
		t.Logf("kubectl %s:\n%s", strings.Join(what, " "), out)
	}
	// The line's commits went to A's fleet repository; B's git server
	// holds no fleet of its own.
	fleetLog := gitCmd(t, "", "--git-dir", filepath.Join(a.home, "git", "ops", "fleet.git"), "log", "--format=%s", "main")
	for _, want := range []string{"flux: install Flux", "tenant", "promote"} {
		if !strings.Contains(fleetLog, want) {
			t.Errorf("A's fleet repository has no commit about %q:\n%s", want, fleetLog)
		}
	}
	if _, err := os.Stat(filepath.Join(b.home, "git", "ops", "fleet.git")); err == nil {
		t.Error("B's git server holds a fleet repository too")
	}
	// B's ops view lists the fleet's commits as A's repository holds
	// them, newest first.
	var ops struct {
		FleetCommits []struct{ ID, Subject string } `json:"fleetCommits"`
		Errors       []string                       `json:"errors"`
	}
	if err := json.Unmarshal([]byte(b.mustRun("", "ops", "-o", "json").stdout), &ops); err != nil {
		t.Fatalf("slipway ops -o json: %v", err)
	}
	newest := strings.TrimSpace(gitCmd(t, "", "--git-dir", filepath.Join(a.home, "git", "ops", "fleet.git"), "rev-parse", "main"))
	if len(ops.FleetCommits) == 0 || ops.FleetCommits[0].ID != newest || len(ops.Errors) > 0 {
		t.Errorf("B's ops view of the fleet (A's newest commit %s): %+v", newest, ops)
	}
	chartURL := a.mustKubectl("-n", "dev1-staging", "get", "helmrepository", "-o", "jsonpath={.items[0].spec.url}")
	if chartURL != "oci://"+net.JoinHostPort(nodeHost, bRegPort)+"/dev1/charts" {
		t.Errorf("dev1's charts are read from %s", chartURL)
	}
	for _, ns := range []string{"dev1-prod", "dev2-prod"} {
		ready := a.mustKubectl("-n", ns, "get", "helmrelease", "-o", "jsonpath={.items[0].status.conditions[?(@.type==\"Ready\")].status}")
		if ready != "True" {
			t.Errorf("the release in %s is not Ready on A: %q", ns, ready)
		}
	}
	hello := a.mustKubectl("-n", "dev1-prod", "get", "deployment", "-o", "jsonpath={.items[0].spec.template.spec.containers[0].image}")
	if !strings.HasPrefix(hello, net.JoinHostPort(nodeHost, bRegPort)+"/dev1/hello@sha256:") {
		t.Errorf("hello in prod runs %s", hello)
	}
	// An agent elsewhere ships through B onto A's cluster with dev1's
	// variable group alone, reaching A's API server through B.
	b.mustRun("dev1-existing-password\n", "user", "set", "dev1", "--push", "dev1/", "--password-stdin")
	agentElsewhereShips(t, b, a, "dev1-existing-password")
	// The jobs ran as pods in A, as the teams' CI accounts.
	if out := a.mustKubectl("get", "serviceaccount", "-n", "dev1-ci", "-o", "name"); !strings.Contains(out, "serviceaccount/") {
		t.Errorf("dev1's CI namespace on A holds no account:\n%s", out)
	}
	// Each team's first job seeded its new cache claim from the
	// platform's seed (said in the first step's log); the rest found it.
	seeded := 0
	for id := 1; id <= 8; id++ {
		logs := b.run("", "pipeline", "logs", fmt.Sprint(id))
		seeded += strings.Count(logs.stdout, "seeded the Go cache in ")
	}
	if seeded < 2 {
		t.Errorf("%d jobs seeded a Go cache claim, want one per team", seeded)
	}
	for _, l := range []string{"dev1", "dev2"} {
		if got := a.canI("get", "pods", "-n", l+"-prod", "--as=system:serviceaccount:"+otherTeam(l)+"-ci:ci"); got != "no" {
			t.Errorf("%s's CI account may read %s-prod on A: %s", otherTeam(l), l, got)
		}
		// Flux's Secret holds the fleet host's account, which may push:
		// no team's accounts may read it.
		for _, as := range []string{"system:serviceaccount:" + l + "-ci:ci", "system:serviceaccount:" + l + "-staging:" + l} {
			if got := a.canI("get", "secret/flux-system", "-n", "flux-system", "--as="+as); got != "no" {
				t.Errorf("%s may read the fleet's credentials on A: %s", as, got)
			}
		}
		// Each team's Go caches are a claim of A's default StorageClass in
		// its CI namespace, which the team's builds filled; the other
		// team can neither read the claim nor start a pod that mounts it.
		claim := a.mustKubectl("-n", l+"-ci", "get", "pvc", "go-cache", "-o", "jsonpath={.status.phase} {.spec.storageClassName} {.spec.volumeName}")
		phase, rest, _ := strings.Cut(claim, " ")
		class, volume, _ := strings.Cut(rest, " ")
		if phase != "Bound" || class != "slipway-local" {
			t.Errorf("%s's Go cache claim on A: %q", l, claim)
		} else if entries, err := os.ReadDir(filepath.Join(a.home, "volumes", volume, "go-build")); err != nil || len(entries) == 0 {
			t.Errorf("%s's builds left nothing in their Go cache volume (%d entries): %v", l, len(entries), err)
		}
		for _, verb := range [][]string{{"get", "persistentvolumeclaims"}, {"create", "pods"}} {
			if got := a.canI(verb[0], verb[1], "-n", l+"-ci", "--as=system:serviceaccount:"+otherTeam(l)+"-ci:ci"); got != "no" {
				t.Errorf("%s's CI account may %s %s in %s-ci on A: %s", otherTeam(l), verb[0], verb[1], l, got)
			}
		}
	}

	// A restart finds the Flux it installed and takes it over; a Flux that
	// was loosened in between (a lockdown flag turned off on the cluster)
	// is refused before anything is written, naming the flag.
	b.mustRun("", "down")
	up.wait(t)
	addArg := func(arg string) {
		a.mustKubectl("-n", "flux-system", "patch", "deployment", "helm-controller", "--type=json",
			"-p", `[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"`+arg+`"}]`)
	}
	addArg("--no-cross-namespace-refs=false")
	loose := b.runWithin(5*time.Minute, "up", "--target-context", "slipway")
	if loose.code == 0 || !strings.Contains(loose.stderr, "--no-cross-namespace-refs") || !strings.Contains(loose.stderr, "is not one Slipway can use") {
		t.Fatalf("up on a cluster whose Flux lets teams refer across namespaces: exit %d\n%s", loose.code, loose.stderr)
	}
	addArg("--no-cross-namespace-refs=true")
	a.mustKubectl("-n", "flux-system", "rollout", "status", "deployment/helm-controller", "--timeout=5m")
	up = b.startUpWithin(15*time.Minute, "--target-context", "slipway")
	if out := up.stderr.String(); !strings.Contains(out, "passes the check; Slipway takes it over") || !strings.Contains(out, "✔ helm-controller") {
		t.Errorf("the restart did not report the Flux it found:\n%s", out)
	}
	if args := a.mustKubectl("-n", "flux-system", "get", "deployment", "helm-controller", "-o", "jsonpath={.spec.template.spec.containers[0].args}"); strings.Contains(args, "--no-cross-namespace-refs=false") {
		t.Errorf("the loosened flag outlived the restart: %s", args)
	}
	if v := a.mustKubectl("-n", "dev1-prod", "get", "helmrelease", "-o", "jsonpath={.items[0].status.history[0].chartVersion}"); v == "" {
		t.Error("hello's prod release is gone after the restart")
	}

	// The cluster is its owner's to upgrade.
	upgrade := b.run("", "cluster", "upgrade", "--to", components.KubernetesVersion)
	if upgrade.code == 0 || !strings.Contains(upgrade.stderr, "existing cluster, which its owner upgrades") {
		t.Errorf("cluster upgrade on an existing cluster: exit %d\n%s", upgrade.code, upgrade.stderr)
	}
	b.mustRun("", "down")
	up.wait(t)
}

// platformForACluster is platform B of the tests on an existing cluster,
// started once and stopped: on ports that stay free while the cluster
// runs (below the kernel's range for outgoing connections, which the
// cluster's many clients draw from), with its CA made and a pull-only
// account aks-puller for the cluster's node, as for a registry that
// exists before the cluster is attached to it. It returns B, its
// registry's port and that account's password.
func platformForACluster(t *testing.T) (b *env, regPort, pullPassword string) {
	b = newEnv(t)
	reg, git := stableAddr(t), stableAddr(t)
	_, regPort, _ = net.SplitHostPort(reg)
	// Monitoring runs on an existing cluster too; on addresses of the
	// test's own.
	b.vars = append(b.vars, "SLIPWAY_REGISTRY_ADDR="+reg, "SLIPWAY_GIT_ADDR="+git,
		"SLIPWAY_PROMETHEUS_ADDR="+freeAddr(t), "SLIPWAY_ALERTMANAGER_ADDR="+freeAddr(t))
	first := b.startUp()
	pullPassword = "aks-pull-" + fmt.Sprint(time.Now().UnixNano())
	b.mustRun(pullPassword+"\n", "user", "set", "aks-puller", "--password-stdin")
	b.mustRun("", "down")
	first.wait(t)
	return b, regPort, pullPassword
}

// stableAddr is a loopback address whose port stays free while other
// programs run (testutil.StablePort).
func stableAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testutil.StablePort(t))
}

func otherTeam(team string) string {
	if team == "dev1" {
		return "dev2"
	}
	return "dev1"
}

// checkMonitoringThroughTheAPIServer: B's Prometheus reads A's cluster
// through A's API server, every target up, as a ServiceAccount of A's
// that may read metrics and change nothing; no team may act as it.
func checkMonitoringThroughTheAPIServer(t *testing.T, a, b *env) {
	t.Helper()
	var promAddr string
	for _, v := range b.vars {
		if addr, ok := strings.CutPrefix(v, "SLIPWAY_PROMETHEUS_ADDR="); ok {
			promAddr = addr
		}
	}
	eventually(t, "B's Prometheus reads every target of A's", 2*time.Minute, func() error {
		res, err := http.Get("http://" + promAddr + "/api/v1/targets")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var targets struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					ScrapeURL string            `json:"scrapeUrl"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := json.NewDecoder(res.Body).Decode(&targets); err != nil {
			return err
		}
		up := map[string]int{}
		var down []string
		for _, tg := range targets.Data.ActiveTargets {
			if tg.Health != "up" {
				down = append(down, tg.Labels["job"]+" "+tg.ScrapeURL+": "+tg.LastError)
				continue
			}
			up[tg.Labels["job"]]++
			if job := tg.Labels["job"]; job != "prometheus" && job != "alertmanager" && job != "slipway" && !strings.Contains(tg.ScrapeURL, ":6443/") {
				return fmt.Errorf("job %s reads %s, not through A's API server", job, tg.ScrapeURL)
			}
		}
		for job, want := range map[string]int{"apiserver": 1, "kubelet": 1, "cadvisor": 1, "flux-system": 4, "tenant-pods": 4} {
			if up[job] < want {
				return fmt.Errorf("job %s: %d targets up, want %d; down: %v", job, up[job], want, down)
			}
		}
		return nil
	})
	prometheus := "--as=system:serviceaccount:slipway-system:prometheus"
	for _, read := range [][]string{{"list", "pods", "-A"}, {"get", "pods/proxy", "-n", "dev1-prod"}, {"get", "nodes/proxy"}, {"get", "/metrics"}} {
		if got := a.canI(append(read, prometheus)...); got != "yes" {
			t.Errorf("Prometheus may not %v on A: %s", read, got)
		}
	}
	for _, write := range [][]string{{"create", "pods", "-n", "dev1-staging"}, {"get", "secrets", "-A"}, {"create", "pods/exec", "-n", "dev1-prod"},
		{"create", "pods/proxy", "-n", "dev1-prod"}, {"create", "nodes/proxy"}, {"patch", "helmreleases.helm.toolkit.fluxcd.io", "-A"}} {
		if got := a.canI(append(write, prometheus)...); got != "no" {
			t.Errorf("Prometheus may %v on A: %s", write, got)
		}
	}
	for _, team := range []string{"dev1", "dev2"} {
		for _, as := range []string{"system:serviceaccount:" + team + "-ci:ci", "system:serviceaccount:" + team + "-staging:" + team} {
			if got := a.canI("create", "serviceaccounts/token", "-n", "slipway-system", "--as="+as); got != "no" {
				t.Errorf("%s may mint Prometheus' tokens on A: %s", as, got)
			}
		}
	}
}
