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
	pwFile := filepath.Join(t.TempDir(), "acr-password")
	os.WriteFile(pwFile, []byte("from-file\n"), 0o600)
	c = Default()
	c.Cluster.Registries = []NodeRegistry{{Host: "myacr.azurecr.io", Username: "puller", PasswordFile: pwFile}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if pw, err := c.Cluster.Registries[0].Secret(); err != nil || pw != "from-file" {
		t.Fatalf("password from the file: %q %v", pw, err)
	}
	for _, r := range []NodeRegistry{{Host: ""}, {Host: "https://x"}, {Host: Default().Registry.Addr}, {Host: "x.io", CAFile: "ca.crt"},
		{Host: "x.io", PasswordFile: pwFile, Password: "both"}, {Host: "x.io", PasswordFile: "relative"}, {Host: "x.io", PasswordFile: pwFile + ".missing"}} {
		c := Default()
		c.Cluster.Registries = []NodeRegistry{r}
		if err := c.Validate(); err == nil {
			t.Errorf("registry %+v accepted", r)
		}
	}
}

// An existing cluster comes from the file or the environment, replaces
// the platform's own cluster (and the parts that need its node), and is
// refused when the cluster could not reach the platform at the host given.
func TestExistingCluster(t *testing.T) {
	home := t.TempDir()
	kubeconfig := filepath.Join(home, "aks.kubeconfig")
	os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600)
	os.WriteFile(filepath.Join(home, "config.yaml"), []byte("cluster:\n  existing: {kubeconfig: "+kubeconfig+", platformHost: 10.0.0.4}\ndatabases: {enabled: true}\n"), 0o644)
	c, err := Load("", envOf(map[string]string{"SLIPWAY_HOME": home, "SLIPWAY_TARGET_CONTEXT": "aks-admin"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if e := c.Cluster.Existing; e.Kubeconfig != kubeconfig || e.Context != "aks-admin" || e.PlatformHost != "10.0.0.4" {
		t.Fatalf("read %+v", e)
	}
	// The file asks for databases: they run on the existing cluster too.
	if c.ClusterEnabled() || !c.FluxEnabled() || !c.JobsInPods() || !c.MonitoringEnabled() || !c.DatabasesEnabled() {
		t.Errorf("on an existing cluster: own cluster %v, Flux %v, jobs in pods %v, monitoring %v, databases %v (want false true true true true)",
			c.ClusterEnabled(), c.FluxEnabled(), c.JobsInPods(), c.MonitoringEnabled(), c.DatabasesEnabled())
	}
	c, _ = Load("", envOf(map[string]string{"SLIPWAY_HOME": t.TempDir(), "SLIPWAY_TARGET_KUBECONFIG": kubeconfig, "SLIPWAY_PLATFORM_HOST": "slipway.example.com"}))
	if err := c.Validate(); err != nil || c.Cluster.Existing == nil || c.Cluster.Existing.PlatformHost != "slipway.example.com" {
		t.Fatalf("from the environment: %+v %v", c.Cluster.Existing, err)
	}
	tokenFile, emptyFile := filepath.Join(home, "fleet-token"), filepath.Join(home, "empty")
	os.WriteFile(tokenFile, []byte("pat-123\n"), 0o600)
	os.WriteFile(emptyFile, nil, 0o600)
	on := true
	for what, e := range map[string]ExistingCluster{
		"no kubeconfig":           {PlatformHost: "10.0.0.4"},
		"a relative kubeconfig":   {Kubeconfig: "aks.kubeconfig", PlatformHost: "10.0.0.4"},
		"a missing kubeconfig":    {Kubeconfig: kubeconfig + ".gone", PlatformHost: "10.0.0.4"},
		"no platform host":        {Kubeconfig: kubeconfig},
		"loopback":                {Kubeconfig: kubeconfig, PlatformHost: "127.0.0.1"},
		"all interfaces":          {Kubeconfig: kubeconfig, PlatformHost: "0.0.0.0"},
		"a port":                  {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4:5000"},
		"a URL":                   {Kubeconfig: kubeconfig, PlatformHost: "https://slipway.example.com"},
		"another way to Flux":     {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4", Flux: "upgrade"},
		"a class that is no name": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4", JobCacheClass: "storage.k8s.io/azurefile"},
		"a fleet over plain HTTP": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4",
			Fleet: &ExternalFleet{URL: "http://dev.azure.com/org/p/_git/fleet", Username: "ops", PasswordFile: tokenFile}},
		"a fleet URL with credentials": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4",
			Fleet: &ExternalFleet{URL: "https://ops:pat@dev.azure.com/org/p/_git/fleet", Username: "ops", PasswordFile: tokenFile}},
		"a fleet without an account": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4",
			Fleet: &ExternalFleet{URL: "https://dev.azure.com/org/p/_git/fleet", PasswordFile: tokenFile}},
		"a fleet's relative password file": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4",
			Fleet: &ExternalFleet{URL: "https://dev.azure.com/org/p/_git/fleet", Username: "ops", PasswordFile: "token"}},
		"a fleet's empty password file": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4",
			Fleet: &ExternalFleet{URL: "https://dev.azure.com/org/p/_git/fleet", Username: "ops", PasswordFile: emptyFile}},
		"a reader's password file without its name": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4",
			Fleet: &ExternalFleet{URL: "https://dev.azure.com/org/p/_git/fleet", Username: "ops", PasswordFile: tokenFile, ReaderPasswordFile: tokenFile}},
		"a reader without a password file": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4",
			Fleet: &ExternalFleet{URL: "https://dev.azure.com/org/p/_git/fleet", Username: "ops", PasswordFile: tokenFile, ReaderUsername: "flux"}},
		"a reader's empty password file": {Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4",
			Fleet: &ExternalFleet{URL: "https://dev.azure.com/org/p/_git/fleet", Username: "ops", PasswordFile: tokenFile, ReaderUsername: "flux", ReaderPasswordFile: emptyFile}},
	} {
		c := Default()
		c.Cluster.Existing = &e
		if err := c.Validate(); err == nil {
			t.Errorf("%s accepted: %+v", what, e)
		}
	}
	// The Flux there is adopted when asked, from the file or the
	// environment; never together with images to install Flux from.
	if c.AdoptsFlux() {
		t.Error("a Flux is adopted without being asked")
	}
	c, _ = Load("", envOf(map[string]string{"SLIPWAY_HOME": home, "SLIPWAY_TARGET_FLUX": "adopt", "SLIPWAY_JOB_CACHE_CLASS": "azurefile-csi"}))
	if err := c.Validate(); err != nil || !c.AdoptsFlux() || c.Cluster.Existing.Kubeconfig != kubeconfig || c.Cluster.Existing.JobCacheClass != "azurefile-csi" {
		t.Errorf("adopting from the environment: %+v %v", c.Cluster.Existing, err)
	}
	c.Cluster.FluxImages = "ghcr.io/fluxcd"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "an adopted Flux keeps its own") {
		t.Errorf("adopting and fluxImages: %v", err)
	}
	// The fleet on a git host of its own, from the environment.
	c, _ = Load("", envOf(map[string]string{"SLIPWAY_HOME": home, "SLIPWAY_FLEET_URL": "https://dev.azure.com/org/p/_git/fleet",
		"SLIPWAY_FLEET_USERNAME": "ops", "SLIPWAY_FLEET_PASSWORD_FILE": tokenFile}))
	if err := c.Validate(); err != nil || c.ExternalFleet() == nil || c.ExternalFleet().URL != "https://dev.azure.com/org/p/_git/fleet" {
		t.Fatalf("the fleet from the environment: %+v %v", c.ExternalFleet(), err)
	}
	if pw, err := c.ExternalFleet().Password(); pw != "pat-123" || err != nil {
		t.Errorf("the fleet's password: %q %v", pw, err)
	}
	// Without a reader, Flux reads with the account that pushes; with
	// one (a read-only token), with that.
	if user, pw, err := c.ExternalFleet().Reader(); user != "ops" || pw != "pat-123" || err != nil {
		t.Errorf("the fleet's reader without one named: %q %q %v", user, pw, err)
	}
	readerFile := filepath.Join(home, "fleet-read-token")
	os.WriteFile(readerFile, []byte("read-456\n"), 0o600)
	c, _ = Load("", envOf(map[string]string{"SLIPWAY_HOME": home, "SLIPWAY_FLEET_URL": "https://dev.azure.com/org/p/_git/fleet",
		"SLIPWAY_FLEET_USERNAME": "ops", "SLIPWAY_FLEET_PASSWORD_FILE": tokenFile,
		"SLIPWAY_FLEET_READER_USERNAME": "flux", "SLIPWAY_FLEET_READER_PASSWORD_FILE": readerFile}))
	if err := c.Validate(); err != nil {
		t.Fatalf("the fleet with a reader: %v", err)
	}
	if user, pw, err := c.ExternalFleet().Reader(); user != "flux" || pw != "read-456" || err != nil {
		t.Errorf("the fleet's reader: %q %q %v", user, pw, err)
	}
	if Default().ExternalFleet() != nil {
		t.Error("a fleet elsewhere by default")
	}
	c = Default()
	c.Cluster.Existing = &ExistingCluster{Kubeconfig: kubeconfig, PlatformHost: "10.0.0.4"}
	c.Cluster.Enabled = &on
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("an existing cluster and one of the platform's own: %v", err)
	}
}

// The line's registry of its own: from the file and the environment
// layered field by field, with the reader and each team's account read
// from their files; what cannot work is refused.
func TestLineRegistry(t *testing.T) {
	home := t.TempDir()
	kubeconfig := filepath.Join(home, "aks.kubeconfig")
	os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600)
	readerFile, passwords := filepath.Join(home, "reader"), filepath.Join(home, "teams")
	os.WriteFile(readerFile, []byte("pull-789\n"), 0o600)
	os.Mkdir(passwords, 0o700)
	os.WriteFile(filepath.Join(passwords, "ci-dev1"), []byte("push-dev1\n"), 0o600)
	os.WriteFile(filepath.Join(passwords, "README"), []byte("not an account\n"), 0o600)
	os.WriteFile(filepath.Join(home, "config.yaml"), []byte("cluster:\n  existing:\n    registry:\n      host: myacr.azurecr.io\n      readerUsername: flux-pull\n"), 0o600)
	c, err := Load(filepath.Join(home, "config.yaml"), envOf(map[string]string{"SLIPWAY_HOME": home, "SLIPWAY_TARGET_KUBECONFIG": kubeconfig,
		"SLIPWAY_PLATFORM_HOST": "10.0.0.4", "SLIPWAY_LINE_REGISTRY_READER_PASSWORD_FILE": readerFile, "SLIPWAY_LINE_REGISTRY_PASSWORDS_DIR": passwords}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the line registry from the file and the environment: %v", err)
	}
	r := c.LineRegistry()
	if r == nil || r.Host != "myacr.azurecr.io" || r.ReaderUsername != "flux-pull" {
		t.Fatalf("the line registry: %+v", r)
	}
	if user, pw, err := r.Reader(); user != "flux-pull" || pw != "pull-789" || err != nil {
		t.Errorf("the reader: %q %q %v", user, pw, err)
	}
	if pw, err := r.TeamPassword("ci-dev1"); pw != "push-dev1" || err != nil {
		t.Errorf("dev1's account: %q %v", pw, err)
	}
	if _, err := r.TeamPassword("ci-dev2"); err == nil || !strings.Contains(err.Error(), "has no password for ci-dev2 here") || !strings.Contains(err.Error(), filepath.Join(passwords, "ci-dev2")) {
		t.Errorf("a team without a password: %v", err)
	}
	if teams, err := r.Accounts(); err != nil || len(teams) != 1 || teams[0] != "ci-dev1" {
		t.Errorf("the accounts with a password: %v %v", teams, err)
	}
	if Default().LineRegistry() != nil {
		t.Error("a line registry of its own by default")
	}
	good := *r
	for what, change := range map[string]func(*LineRegistry){
		"a scheme":                   func(r *LineRegistry) { r.Host = "https://myacr.azurecr.io" },
		"a path":                     func(r *LineRegistry) { r.Host = "myacr.azurecr.io/dev1" },
		"a port that is no number":   func(r *LineRegistry) { r.Host = "myacr.azurecr.io:https" },
		"credentials":                func(r *LineRegistry) { r.Host = "ops@myacr.azurecr.io" },
		"no reader":                  func(r *LineRegistry) { r.ReaderUsername = "" },
		"a relative reader password": func(r *LineRegistry) { r.ReaderPasswordFile = "reader" },
		"a missing reader password":  func(r *LineRegistry) { r.ReaderPasswordFile = readerFile + ".gone" },
		"no passwords directory":     func(r *LineRegistry) { r.PasswordsDir = "" },
		"a missing passwords dir":    func(r *LineRegistry) { r.PasswordsDir = passwords + ".gone" },
		"a relative CA":              func(r *LineRegistry) { r.CAFile = "ca.crt" },
	} {
		bad := good
		change(&bad)
		c.Cluster.Existing.Registry = &bad
		if err := c.Validate(); err == nil {
			t.Errorf("%s accepted: %+v", what, bad)
		}
	}
	good.Host = "10.244.0.1:5443"
	c.Cluster.Existing.Registry = &good
	if err := c.Validate(); err != nil {
		t.Errorf("a registry with a port: %v", err)
	}
}
