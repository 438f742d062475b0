package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/components"
)

// upgradeFixtures puts on the cluster what its upgrade must keep and what
// its plan must name: a PersistentVolume with data, in use by a
// Deployment, and an object of a deprecated API in the fleet.
func upgradeFixtures(t *testing.T, e *env, gitAddr, regAddr string) {
	t.Helper()
	pvDir := t.TempDir()
	// The CI image runs as a user of its own, not root.
	if err := os.Chmod(pvDir, 0o777); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(t.TempDir(), "keeper.yaml")
	writeFile(t, manifest, fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: keeper-data}
spec:
  capacity: {storage: 1Mi}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {path: %s, type: Directory}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: keeper-data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: keeper-data
  resources: {requests: {storage: 1Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: keeper, namespace: default}
spec:
  selector: {matchLabels: {app: keeper}}
  template:
    metadata: {labels: {app: keeper}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: keeper
        image: %s/slipway/ci:latest
        command: [sleep, infinity]
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: keeper-data}
`, pvDir, regAddr))
	e.mustKubectl("apply", "-f", manifest)
	e.mustKubectl("rollout", "status", "deployment/keeper", "--timeout=3m")
	e.mustKubectl("exec", "deploy/keeper", "--", "sh", "-c", "echo written-before-the-upgrade > /data/precious")

	// Ops left an Endpoints object in the fleet: served by both releases,
	// deprecated since v1.33 in favour of EndpointSlices.
	password := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	fleet := filepath.Join(t.TempDir(), "fleet")
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://admin:%s@%s/ops/fleet.git", password, gitAddr), fleet)
	writeFile(t, filepath.Join(fleet, "clusters", "slipway", "legacy-endpoints.yaml"), `apiVersion: v1
kind: Endpoints
metadata: {name: legacy-db, namespace: default}
subsets:
- addresses: [{ip: 192.0.2.10}]
  ports: [{port: 5432}]
`)
	gitCmd(t, fleet, "add", "--all")
	gitCmd(t, fleet, "commit", "--quiet", "-m", "a database outside the cluster, the old way")
	gitCmd(t, fleet, "push", "--quiet", "origin", "HEAD")
}

// upgradeKeptEverything checks the cluster after `demo --upgrade`: every
// program on the new release, the volume's data there, every HelmRelease
// Ready.
func upgradeKeptEverything(t *testing.T, e *env, newest string) {
	t.Helper()
	if got := serverVersion(t, e); got != newest {
		t.Errorf("the API server reports %q after the upgrade, want %s", got, newest)
	}
	if got := e.mustKubectl("get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.kubeletVersion}"); got != newest {
		t.Errorf("the kubelet reports %s after the upgrade, want %s", got, newest)
	}
	for p, r := range recordedVersions(t, e) {
		if r != newest {
			t.Errorf("the cluster records %s on %s", p, r)
		}
	}
	eventually(t, "the keeper's data after the upgrade", 3*time.Minute, func() error {
		out, err := e.kubectl("exec", "deploy/keeper", "--", "cat", "/data/precious")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "written-before-the-upgrade" {
			return fmt.Errorf("the volume holds %q", out)
		}
		return nil
	})
	out := e.mustKubectl("get", "helmreleases", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	if strings.Count(out, "=True") < 4 || strings.Contains(out, "=False") {
		t.Errorf("HelmReleases after the upgrade:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(e.home, "cluster", "snapshots")); err != nil {
		t.Errorf("no snapshot was kept: %v", err)
	}
}

// TestClusterUpgradeRollsBack upgrades a cluster to a new API server that
// cannot start (a flag it does not know): the upgrade rolls back to the
// old release, with etcd's data restored and the cluster working; a
// team's user may not upgrade at all; and a snapshot taken by hand,
// restored with the platform stopped, brings back exactly what it held.
func TestClusterUpgradeRollsBack(t *testing.T) {
	e := clusterEnv(t)
	e.vars = append(e.vars, "SLIPWAY_FLUX=false", "SLIPWAY_GIT_ADDR="+freeAddr(t))
	regAddr := freeAddr(t)
	older, newest := components.KubernetesVersions[len(components.KubernetesVersions)-2], components.KubernetesVersion
	up := e.startUpWithin(45*time.Minute, "--registry-addr", regAddr, "--kubernetes-version", older)
	e.mustKubectl("create", "configmap", "before-the-upgrade", "--from-literal=kept=yes")

	// A team's user may neither plan nor perform an upgrade.
	e.mustRun("dev1-password\n", "user", "set", "dev1", "--push", "dev1/", "--password-stdin")
	vars := e.vars
	e.vars = append(e.vars, "SLIPWAY_REGISTRY_USERNAME=dev1", "SLIPWAY_REGISTRY_PASSWORD=dev1-password")
	for _, args := range [][]string{{"--plan"}, {"--to", newest}} {
		if r := e.run("", append([]string{"cluster", "upgrade"}, args...)...); r.code == 0 || !strings.Contains(r.stderr, "only ops") {
			t.Errorf("dev1 ran cluster upgrade %v: exit %d %s", args, r.code, r.stderr)
		}
	}
	e.vars = vars
	// Input the platform refuses before it builds or touches anything.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "v1.99.0"}, "not one this slipway can run"},
		{[]string{"--to", newest, "--apiserver-arg", "bad name=1"}, "want a flag name"},
		{[]string{"--to", newest, "--apiserver-arg", "no-value"}, "want name=value"},
	} {
		if r := e.run("", append([]string{"cluster", "upgrade"}, tc.args...)...); r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("cluster upgrade %v: exit %d %s, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}

	// The new API server does not know a flag ops gave it: it exits, and
	// the upgrade rolls back.
	r := e.run("", "cluster", "upgrade", "--to", newest, "--apiserver-arg", "no-such-flag=1")
	t.Logf("the failed upgrade:\n%s\n%s", r.stdout, r.stderr)
	if r.code == 0 || !strings.Contains(r.stdout, "rolled back") || !strings.Contains(r.stderr, "unknown flag: --no-such-flag") ||
		!strings.Contains(r.stderr, "restoring etcd's data") || !strings.Contains(r.stderr, "is back on "+older) {
		t.Fatalf("an upgrade whose API server cannot start: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := serverVersion(t, e); got != older {
		t.Fatalf("after the rollback the API server reports %q, want %s", got, older)
	}
	if got := e.mustKubectl("get", "configmap", "before-the-upgrade", "-o", "jsonpath={.data.kept}"); got != "yes" {
		t.Fatalf("the ConfigMap made before the upgrade holds %q after the rollback", got)
	}
	if st := e.run("", "status"); st.code != 0 || !strings.Contains(st.stdout, "Kubernetes "+older+"; "+newest+" is available") {
		t.Fatalf("slipway status after the rollback: exit %d\n%s%s", st.code, st.stdout, st.stderr)
	}
	eventually(t, "the node Ready on "+older, 2*time.Minute, func() error {
		out, err := e.kubectl("get", "nodes", "--no-headers")
		if err != nil || !strings.Contains(out, " Ready ") || !strings.Contains(out, older) || strings.Contains(out, "SchedulingDisabled") {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	e.mustKubectl("create", "configmap", "after-the-rollback")

	// The platform is killed (SIGKILL) in the middle of an upgrade, with
	// etcd moved and the API server restarting: `up` starts the node as
	// recorded, and the upgrade, run again, finishes where it stopped.
	up = interruptedUpgrade(t, e, up, regAddr, newest)
	if got := strings.TrimSpace(e.mustKubectl("get", "configmap", "after-the-rollback", "-o", "name")); got != "configmap/after-the-rollback" {
		t.Fatalf("after the interrupted upgrade: %q", got)
	}

	// A snapshot by hand, restored with the platform stopped.
	snapshot := strings.TrimSpace(e.mustRun("", "cluster", "snapshot").stdout)
	e.mustKubectl("create", "configmap", "after-the-snapshot")
	if r := e.run("", "cluster", "restore", snapshot); r.code == 0 || !strings.Contains(r.stderr, "stop it with `slipway down` first") {
		t.Fatalf("restore while the platform runs: exit %d %s", r.code, r.stderr)
	}
	e.mustRun("", "down")
	up.wait(t)
	e.mustRun("", "cluster", "restore", snapshot)
	e.startUpWithin(5*time.Minute, "--registry-addr", regAddr)
	for name, want := range map[string]bool{"before-the-upgrade": true, "after-the-rollback": true, "after-the-snapshot": false} {
		_, err := e.kubectl("get", "configmap", name)
		if (err == nil) != want {
			t.Errorf("after the restore, ConfigMap %s there: %v, want %v", name, err == nil, want)
		}
	}
}

// interruptedUpgrade kills `slipway up` once the upgrade has moved etcd
// and is restarting the API server, starts the platform again and runs
// the upgrade again to its end. It returns the new `up`.
func interruptedUpgrade(t *testing.T, e *env, up *upProcess, regAddr, newest string) *upProcess {
	t.Helper()
	cmd := exec.Command(slipwayBin, "cluster", "upgrade", "--to", newest)
	cmd.Env = append(os.Environ(), e.vars...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(strings.TrimSpace(sc.Text()), "control-plane ") && strings.HasSuffix(sc.Text(), "...") {
			_ = up.cmd.Process.Kill()
			break
		}
	}
	_, _ = io.Copy(&seen, stderr)
	_ = cmd.Wait()
	select {
	case <-up.exited:
	case <-time.After(time.Minute):
		t.Fatal("slipway up did not die")
	}
	t.Logf("the upgrade, until its platform was killed:\n%s", seen.String())
	if recorded := recordedVersions(t, e); recorded["etcd"] != newest || recorded["kubelet"] == newest {
		t.Fatalf("killed mid-upgrade, the cluster records %v", recorded)
	}
	up = e.startUpWithin(5*time.Minute, "--registry-addr", regAddr)
	if st := e.mustRun("", "status").stdout; !strings.Contains(st, "Kubernetes mixed: etcd "+newest) {
		t.Errorf("status of a half-upgraded cluster:\n%s", st)
	}
	r := e.run("", "cluster", "upgrade", "--to", newest)
	t.Logf("the upgrade, run again:\n%s\n%s", r.stdout, r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, "upgraded the cluster from mixed: etcd "+newest) || strings.Contains(r.stdout, "etcd snapshot") {
		t.Fatalf("finishing an interrupted upgrade: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := e.mustKubectl("get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.kubeletVersion}"); got != newest {
		t.Fatalf("after the upgrade was finished the kubelet reports %s", got)
	}
	return up
}

// serverVersion is the release the API server reports.
func serverVersion(t *testing.T, e *env) string {
	t.Helper()
	var v struct {
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(e.mustKubectl("version", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	return v.ServerVersion.GitVersion
}

// recordedVersions is the release the cluster records for each program.
func recordedVersions(t *testing.T, e *env) map[string]string {
	t.Helper()
	var v struct{ Programs map[string]string }
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(e.home, "cluster", "versions.json"))), &v); err != nil {
		t.Fatal(err)
	}
	return v.Programs
}
