package platform

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/config"
)

// On an existing cluster every address the cluster is given names the
// platform host, and the images it runs are named there too; the
// platform's own node keeps its node address and pulls by the configured one.
func TestAddressesTheClusterIsGiven(t *testing.T) {
	own := config.Default()
	own.Registry.Addr, own.Git.Addr = "127.0.0.1:5000", "127.0.0.1:3000"
	if got := RegistryNodeAddr(own); got != "10.244.0.1:5000" {
		t.Errorf("own cluster: registry at %s", got)
	}
	if got := imageRegistry(own); got != "127.0.0.1:5000" {
		t.Errorf("own cluster: images named on %s", got)
	}
	if got := alsoServe(own, own.Git.Addr); got != "10.244.0.1:3000" {
		t.Errorf("own cluster: git also on %q", got)
	}

	ext := own
	ext.Cluster.Existing = &config.ExistingCluster{Kubeconfig: "/k", PlatformHost: "slipway.example.com"}
	if got := RegistryNodeAddr(ext); got != "slipway.example.com:5000" {
		t.Errorf("existing cluster: registry at %s", got)
	}
	if got := imageRegistry(ext); got != "slipway.example.com:5000" {
		t.Errorf("existing cluster: images named on %s", got)
	}
	for addr, want := range map[string]string{
		"127.0.0.1:3000":           "slipway.example.com:3000",
		"0.0.0.0:3000":             "", // serves every address already
		"slipway.example.com:3000": "",
		"127.0.0.1:0":              "",
	} {
		if got := alsoServe(ext, addr); got != want {
			t.Errorf("existing cluster, git on %s: also on %q, want %q", addr, got, want)
		}
	}
	ext.Cluster.Existing.PlatformHost = "fd00::4"
	if got := RegistryNodeAddr(ext); got != "[fd00::4]:5000" {
		t.Errorf("an IPv6 platform host: %s", got)
	}
}

// A cluster that fails its check gets nothing written, and the platform
// keeps no copy of its credentials.
func TestUnreachableExistingClusterIsRefusedFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.Default()
	cfg.Home = t.TempDir()
	kubeconfig := filepath.Join(t.TempDir(), "aks")
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: aks, cluster: {server: "https://`+addr+`", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: abc}}]
contexts: [{name: aks-admin, context: {cluster: aks, user: admin}}]
current-context: aks-admin
`), 0o600)
	cfg.Cluster.Existing = &config.ExistingCluster{Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4"}
	err = openExistingCluster(context.Background(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the API server at https://"+addr) {
		t.Fatalf("an unreachable cluster: %v", err)
	}
	if _, err := os.Stat(ClusterOptions(cfg).AdminKubeconfig()); !os.IsNotExist(err) {
		t.Errorf("a copy of the refused context was kept: %v", err)
	}
}
