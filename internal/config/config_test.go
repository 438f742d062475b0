package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLayering(t *testing.T) {
	home := t.TempDir()
	file := "registry:\n  addr: 127.0.0.1:6000\n  anonymousPull: true\n"
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}

	c, err := Load("", envOf(map[string]string{"SLIPWAY_HOME": home}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Registry.Addr != "127.0.0.1:6000" || !c.Registry.AnonymousPull {
		t.Fatalf("file not applied over defaults: %+v", c)
	}
	if c.Registry.MinFreeBytes != Default().Registry.MinFreeBytes {
		t.Fatal("a default the file does not set was lost")
	}

	c, err = Load("", envOf(map[string]string{"SLIPWAY_HOME": home, "SLIPWAY_REGISTRY_ADDR": "127.0.0.1:7000", "SLIPWAY_REGISTRY_ANONYMOUS_PULL": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Registry.Addr != "127.0.0.1:7000" || c.Registry.AnonymousPull {
		t.Fatalf("environment not applied over the file: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestBadConfigIsReported(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "config.yaml"), []byte("registry:\n  adr: typo\n"), 0o644)
	if _, err := Load("", envOf(map[string]string{"SLIPWAY_HOME": home})); err == nil || !strings.Contains(err.Error(), "adr") {
		t.Fatalf("unknown field: %v", err)
	}
	if _, err := Load(filepath.Join(home, "missing.yaml"), envOf(nil)); err == nil {
		t.Fatal("an explicit config file that does not exist must be an error")
	}
	if _, err := Load("", envOf(map[string]string{"SLIPWAY_HOME": t.TempDir(), "SLIPWAY_REGISTRY_ANONYMOUS_PULL": "maybe"})); err == nil {
		t.Fatal("bad boolean accepted")
	}
	for _, addr := range []string{"5000", ":5000", "host:port"} {
		c := Default()
		c.Registry.Addr = addr
		if err := c.Validate(); err == nil {
			t.Errorf("address %q accepted", addr)
		}
	}
	c := Default()
	c.Home = "relative/dir"
	if err := c.Validate(); err == nil {
		t.Error("relative home accepted")
	}
}

func TestNodeRegistriesAndFluxImages(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "config.yaml"), []byte(`cluster:
  fluxImages: ghcr.io/fluxcd
  registries:
  - {host: myacr.azurecr.io, username: puller, password: secret}
  - {host: "127.0.0.1:5555", plainHTTP: true}
`), 0o644)
	c, err := Load("", envOf(map[string]string{"SLIPWAY_HOME": home}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Cluster.FluxImages != "ghcr.io/fluxcd" || len(c.Cluster.Registries) != 2 || c.Cluster.Registries[0].Username != "puller" || !c.Cluster.Registries[1].PlainHTTP {
		t.Fatalf("read %+v", c.Cluster)
	}
	c, _ = Load("", envOf(map[string]string{"SLIPWAY_HOME": home, "SLIPWAY_FLUX_IMAGES": "127.0.0.1:5555/fluxcd"}))
	if err := c.Validate(); err != nil || c.Cluster.FluxImages != "127.0.0.1:5555/fluxcd" {
		t.Fatalf("from the environment: %q %v", c.Cluster.FluxImages, err)
	}
	for _, bad := range []string{"https://ghcr.io/fluxcd", "ghcr.io/fluxcd:v2", "ghcr.io/fluxcd/", "ghcr.io//fluxcd", "ghcr.io/fluxcd@sha256:00"} {
		c := Default()
		c.Cluster.FluxImages = bad
		if err := c.Validate(); err == nil {
			t.Errorf("fluxImages %q accepted", bad)
		}
	}
	for _, r := range []NodeRegistry{{Host: ""}, {Host: "https://x"}, {Host: Default().Registry.Addr}, {Host: "x.io", CAFile: "ca.crt"}} {
		c := Default()
		c.Cluster.Registries = []NodeRegistry{r}
		if err := c.Validate(); err == nil {
			t.Errorf("registry %+v accepted", r)
		}
	}
}
