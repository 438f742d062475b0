package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// SnapshotDir is where snapshots are kept unless told otherwise.
func (o Options) SnapshotDir() string { return filepath.Join(o.Dir, "snapshots") }

// Snapshot saves etcd's whole keyspace to path through etcd's snapshot
// API, with etcdctl (of the release etcd runs), while etcd serves.
func Snapshot(ctx context.Context, o Options, etcdctl, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	pki := func(n string) string { return filepath.Join(o.Dir, "pki", n) }
	tmp := path + ".part"
	_ = os.Remove(tmp)
	cmd := exec.CommandContext(ctx, etcdctl, "--endpoints=https://127.0.0.1:2379",
		"--cacert="+pki("ca.crt"), "--cert="+pki("apiserver-etcd-client.crt"), "--key="+pki("apiserver-etcd-client.key"),
		"--command-timeout=2m", "snapshot", "save", tmp)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("etcd snapshot: %v: %s", err, lastLines(out, 5))
	}
	return os.Rename(tmp, path)
}

// RestoreSnapshot replaces etcd's data with a snapshot, with etcdutl (of
// the release etcd will run). etcd must be stopped. The data it replaces
// is kept beside it, named after the time, and its path returned.
//
// The restored keyspace's revision is bumped past anything clients saw,
// and older revisions marked compacted, so the API server's and every
// controller's watches start over instead of missing changes.
func RestoreSnapshot(ctx context.Context, o Options, etcdutl, snapshot string) (string, error) {
	if _, err := os.Stat(snapshot); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	data := filepath.Join(o.Dir, "etcd")
	fresh := data + ".restoring"
	_ = os.RemoveAll(fresh)
	cmd := exec.CommandContext(ctx, etcdutl, "snapshot", "restore", snapshot,
		"--data-dir="+fresh, "--name="+o.NodeName,
		"--initial-cluster="+o.NodeName+"=https://127.0.0.1:2380",
		"--initial-advertise-peer-urls=https://127.0.0.1:2380",
		"--bump-revision=1000000000", "--mark-compacted")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(fresh)
		return "", fmt.Errorf("etcd restore: %v: %s", err, lastLines(out, 5))
	}
	if err := os.Chmod(fresh, 0o700); err != nil {
		return "", err
	}
	kept := ""
	if _, err := os.Stat(data); err == nil {
		kept = fmt.Sprintf("%s.replaced-%s", data, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(data, kept); err != nil {
			return "", err
		}
	}
	if err := os.Rename(fresh, data); err != nil {
		return "", err
	}
	return kept, nil
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
