package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Containerd is a private containerd for one test: its own root, state and
// socket, with the CRI plugin off, driven through Debian's ctr.
type Containerd struct {
	Address   string
	Namespace string
	t         testing.TB
}

// StartContainerd runs containerd until the test ends. It needs root.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	NeedRoot(t, "running containers")
	bin := NeedCommand(t, "containerd", "containerd")
	NeedCommand(t, "ctr", "containerd")
	NeedCommand(t, "runc", "runc")
	dir, err := os.MkdirTemp("", "ctd-") // short: the socket path is limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	// A namespace of its own: runc keeps its containers' state under
	// /run/containerd/runc/NAMESPACE whatever containerd's root, so a run
	// killed mid-test would otherwise leave containers whose fixed IDs
	// the next run's tests cannot create again.
	c := &Containerd{Address: filepath.Join(dir, "containerd.sock"), Namespace: "slipway-test-" + filepath.Base(dir), t: t}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Address)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		_ = os.RemoveAll(dir)
		_ = os.Remove(filepath.Join("/run/containerd/runc", c.Namespace)) // empty once its containers are gone
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		if _, err := c.ctr("version"); err == nil {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("containerd exited:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd did not answer on its socket")
		}
	}
	return c
}

func (c *Containerd) ctr(args ...string) (string, error) {
	all := append([]string{"--address", c.Address, "--namespace", c.Namespace}, args...)
	out, err := exec.Command("ctr", all...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Ctr runs ctr against this containerd and fails the test on error.
func (c *Containerd) Ctr(args ...string) string {
	c.t.Helper()
	out, err := c.ctr(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// CtrMayFail runs ctr against this containerd and returns its error (a
// container's non-zero exit included) for the test to judge.
func (c *Containerd) CtrMayFail(args ...string) (string, error) {
	return c.ctr(args...)
}

// RunDetached starts a container on the host network and removes it when
// the test ends.
func (c *Containerd) RunDetached(image, id string, env ...string) {
	c.t.Helper()
	args := []string{"run", "-d", "--net-host"}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	c.Ctr(append(args, image, id)...)
	c.t.Cleanup(func() {
		_, _ = c.ctr("task", "kill", "-s", "SIGKILL", id)
		for i := 0; i < 50; i++ {
			if _, err := c.ctr("task", "delete", id); err == nil || strings.Contains(err.Error(), "not found") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = c.ctr("container", "delete", id)
	})
}
