package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slipway-dev/slipway/internal/testutil"
)

// freeAddr is a loopback address whose port was free a moment ago and
// not given out before in this run (testutil.FreePort).
func freeAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
}

// TestFirstSteps is a new user's session: start the platform, log in,
// create a team user, build and push an app as that team, stop.
func TestFirstSteps(t *testing.T) {
	e := newEnv(t)
	addr := freeAddr(t)
	up := e.startUp("--registry-addr", addr)
	if !strings.Contains(up.stdout.String(), "https://"+addr) || !strings.Contains(up.stdout.String(), "slipway login") || !strings.Contains(up.stdout.String(), "git clone") {
		t.Fatalf("up does not say where the registry is and how to log in:\n%s", up.stdout)
	}

	var status struct {
		PID      int `json:"pid"`
		Services []struct {
			Service string `json:"service"`
			Healthy bool   `json:"healthy"`
		} `json:"services"`
	}
	r := e.mustRun("", "status", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &status); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	if status.PID != up.cmd.Process.Pid || len(status.Services) != 3 { // registry, git, pipelines
		t.Fatalf("status: %+v", status)
	}
	for _, s := range status.Services {
		if !s.Healthy {
			t.Fatalf("%s is not healthy: %+v", s.Service, status)
		}
	}

	adminPassword, err := os.ReadFile(filepath.Join(e.home, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	r = e.run("not-the-password\n", "login", addr, "-u", "admin", "--password-stdin")
	if r.code == 0 || !strings.Contains(r.stderr, "refused the user name or password") {
		t.Fatalf("login with a wrong password: exit %d, %s", r.code, r.stderr)
	}
	e.mustRun(string(adminPassword), "login", addr, "-u", "admin", "--password-stdin")

	dev1Password := strings.TrimSpace(e.mustRun("", "user", "set", "dev1", "--push", "dev1/").stdout)
	if len(dev1Password) < 16 {
		t.Fatalf("generated password %q", dev1Password)
	}
	e.mustRun(dev1Password+"\n", "login", addr, "-u", "dev1", "--password-stdin")

	r = e.mustRun("", "build", "../../internal/build/testdata/hello", "--image", "dev1/hello", "--tag", "v1", "-o", "json")
	var built struct {
		Image     string   `json:"image"`
		Platforms []string `json:"platforms"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &built); err != nil {
		t.Fatalf("build -o json: %v\n%s", err, r.stdout)
	}
	if !strings.HasPrefix(built.Image, addr+"/dev1/hello@sha256:") || len(built.Platforms) != 2 {
		t.Fatalf("build result %+v", built)
	}

	r = e.run("", "build", "../../internal/build/testdata/hello", "--image", "dev2/hello")
	if r.code != 1 || !strings.Contains(r.stderr, "may push only under dev1/") {
		t.Fatalf("dev1 pushing as dev2: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Count(r.stderr, "error:") != 1 {
		t.Fatalf("the error should be printed once:\n%s", r.stderr)
	}

	second := e.run("", "up", "--registry-addr", freeAddr(t))
	if second.code == 0 || !strings.Contains(second.stderr, "already running") {
		t.Fatalf("second up: exit %d, %s", second.code, second.stderr)
	}

	e.mustRun("", "down")
	if code := up.wait(t); code != 0 {
		t.Fatalf("up exited %d after down:\n%s", code, up.stderr)
	}
	if r := e.run("", "status"); r.code != 3 {
		t.Fatalf("status after down: exit %d, want 3\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.home, "run", "up.json")); !os.IsNotExist(err) {
		t.Fatalf("state file left behind: %v", err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Fatal("the registry still listens after down")
	}
}

func TestUpStopsOnSIGTERMAndKeepsData(t *testing.T) {
	e := newEnv(t)
	addr := freeAddr(t)
	up := e.startUp("--registry-addr", addr)
	adminPassword, _ := os.ReadFile(filepath.Join(e.home, "admin-password"))
	e.mustRun(string(adminPassword), "login", addr, "-u", "admin", "--password-stdin")
	first := e.mustRun("", "build", "../../internal/build/testdata/hello", "--image", "dev1/hello", "--platform", "linux/amd64").stdout

	if err := up.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := up.wait(t); code != 0 {
		t.Fatalf("up exited %d on SIGTERM:\n%s", code, up.stderr)
	}
	if !strings.Contains(up.stderr.String(), "stopping registry") {
		t.Fatalf("shutdown not reported:\n%s", up.stderr)
	}

	// Started again, the registry has the image and the same admin.
	e.startUp("--registry-addr", addr)
	r := e.mustRun("", "build", "../../internal/build/testdata/hello", "--image", "dev1/hello", "--platform", "linux/amd64")
	if r.stdout != first {
		t.Fatalf("rebuild after restart gave %s, first build %s", r.stdout, first)
	}
}

func TestUpNamesTheServiceThatFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := newEnv(t)
	r := e.run("", "up", "--registry-addr", ln.Addr().String())
	if r.code != 1 || !strings.Contains(r.stderr, "registry: failed to start") || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("up on a taken port: exit %d\n%s", r.code, r.stderr)
	}
	// The lock is released: a later up on a free port works.
	up := e.startUp("--registry-addr", freeAddr(t))
	e.mustRun("", "down")
	up.wait(t)
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "-o", "xml"}, 2, "want one of text, json, yaml"},
		{[]string{"no-such-command"}, 2, "unknown command"},
		{[]string{"build", "--platform", "linux"}, 2, "write it as os/arch"},
		{[]string{"build", t.TempDir(), "--image", "dev1/x"}, 1, "go mod init"},
		{[]string{"user", "set", "Bad Name"}, 1, "user name"},
		{[]string{"user", "set", "dev3", "--push", "dev3"}, 1, "ending in '/'"},
		{[]string{"down"}, 0, "not running"},
	} {
		r := e.run("", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("slipway %s: exit %d (want %d), stderr %q (want %q)", strings.Join(tc.args, " "), r.code, tc.code, r.stderr, tc.want)
		}
	}
	r := e.mustRun("", "version", "-o", "json")
	if !strings.Contains(r.stdout, `"version"`) {
		t.Errorf("version -o json: %s", r.stdout)
	}
	_ = fmt.Sprint()
}
