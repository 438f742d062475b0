package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckUpgradeFollowsTheSkewPolicy(t *testing.T) {
	for _, c := range []struct {
		cur  Versions
		to   string
		want string // "" means allowed
	}{
		{Uniform("v1.36.3"), "v1.37.2", ""},
		{Uniform("v1.37.2"), "v1.37.2", ""},
		{Uniform("v1.37.2"), "v1.36.3", "refusing to downgrade: the cluster runs v1.37.2"},
		{Uniform("v1.35.4"), "v1.37.2", "skips 1 minor"},
		{Uniform("v1.36.3"), "v1.38.0", "not one this slipway can run"},
	} {
		err := CheckUpgrade(c.cur, c.to)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s to %s: %v, want %q", c.cur.Summary(), c.to, err, c.want)
		}
	}
	// Half done: the API server moved, the kubelet did not. Finishing is
	// allowed; going back is not.
	half := Uniform("v1.36.3")
	half.Programs["etcd"], half.Programs["kube-apiserver"] = "v1.37.2", "v1.37.2"
	if err := CheckUpgrade(half, "v1.37.2"); err != nil {
		t.Errorf("finishing a half-done upgrade: %v", err)
	}
	if err := CheckUpgrade(half, "v1.36.3"); err == nil {
		t.Error("a half-done upgrade may not go back by upgrade")
	}
	if !strings.HasPrefix(half.Summary(), "mixed: etcd v1.37.2") {
		t.Errorf("summary %q", half.Summary())
	}
}

func TestReadVersions(t *testing.T) {
	dir := t.TempDir()
	v, err := ReadVersions(dir, "v1.37.2")
	if err != nil || v.Summary() != "v1.37.2" {
		t.Fatalf("a new cluster: %v %v", v, err)
	}
	// A cluster made before versions were recorded ran v1.36.3.
	if err := os.MkdirAll(filepath.Join(dir, "etcd", "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	if v, _ := ReadVersions(dir, "v1.37.2"); v.Summary() != "v1.36.3" {
		t.Fatalf("an old cluster: %s", v.Summary())
	}
	half := Uniform("v1.36.3")
	half.Programs["etcd"] = "v1.37.2"
	half.APIServerArgs = map[string]string{"v": "2"}
	if err := WriteVersions(dir, half); err != nil {
		t.Fatal(err)
	}
	got, err := ReadVersions(dir, "v1.37.2")
	if err != nil || got.Programs["etcd"] != "v1.37.2" || got.Programs["kubelet"] != "v1.36.3" || got.APIServerArgs["v"] != "2" {
		t.Fatalf("read back %+v %v", got, err)
	}
	if err := os.WriteFile(versionsFile(dir), []byte(`{"programs":{"etcd":"v1.36.3"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadVersions(dir, "v1.37.2"); err == nil || !strings.Contains(err.Error(), "no version for kube-apiserver") {
		t.Fatalf("an incomplete record: %v", err)
	}
}

// A rollback restores from the bottom up (etcd's data before the API
// server on it, before its clients) and opens the node last.
func TestRollbackOrder(t *testing.T) {
	var done []upgradeStep
	for _, n := range []string{"etcd snapshot", "etcd", "control-plane", "cordon and drain", "kube-proxy", "kubelet"} {
		done = append(done, upgradeStep{name: n})
	}
	var got []string
	for _, s := range rollbackOrder(done) {
		got = append(got, s.name)
	}
	want := "etcd snapshot,etcd,control-plane,kube-proxy,kubelet,cordon and drain"
	if strings.Join(got, ",") != want {
		t.Fatalf("rollback order %v, want %s", got, want)
	}
}

// The control plane's process reads each program's name, then that
// program's flags: the three names once each, in the order it starts them,
// and ops' extra flags and the release's controllers with the right one.
func TestControlPlaneArgs(t *testing.T) {
	c := &Cluster{opts: Options{Dir: "/state", NodeIP: "10.244.0.1", APIPort: 6443, ServiceCIDR: "10.96.0.0/16"}}
	v := Uniform("v1.36.3")
	v.APIServerArgs = map[string]string{"v": "2"}
	args := c.controlPlaneArgs(v)
	var names []string
	owner := map[string]string{}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			names = append(names, a)
			continue
		}
		owner[a] = names[len(names)-1]
	}
	if got := strings.Join(names, ","); got != "kube-apiserver,kube-controller-manager,kube-scheduler" {
		t.Fatalf("the programs named %s in %q", got, args)
	}
	for flag, want := range map[string]string{
		"--v=2": "kube-apiserver",
		"--controllers=*,-node-ipam-controller,-cloud-node-lifecycle-controller": "kube-controller-manager",
		"--kubeconfig=/state/kubeconfig/scheduler.kubeconfig":                    "kube-scheduler",
	} {
		if owner[flag] != want {
			t.Errorf("%s goes to %q, want %s (args %q)", flag, owner[flag], want, args)
		}
	}
}
