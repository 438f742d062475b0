package platform

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
)

// With a line registry of its own, a team's pipelines get that registry
// and the team's account there, whose password becomes its CI account's
// on the platform (and follows it when its owner renews it); Flux's
// registry Secret holds the registry's reader and CA. A team with no
// password there gets no run, and no random account of the platform's.
func TestTheLineRegistrysAccountIsTheTeamsCIAccount(t *testing.T) {
	home := t.TempDir()
	passwords, readerFile, caFile := filepath.Join(home, "teams"), filepath.Join(home, "reader"), filepath.Join(home, "acr-ca.crt")
	os.Mkdir(passwords, 0o700)
	os.WriteFile(filepath.Join(passwords, "ci-dev1"), []byte("acr-token-1\n"), 0o600)
	os.WriteFile(readerFile, []byte("acr-read\n"), 0o600)
	os.WriteFile(caFile, []byte("-----BEGIN CERTIFICATE-----\nACR\n-----END CERTIFICATE-----\n"), 0o600)
	cfg := config.Default()
	cfg.Home = home
	cfg.Cluster.Existing = &config.ExistingCluster{PlatformHost: "10.0.0.4", Registry: &config.LineRegistry{
		Host: "myacr.azurecr.io", CAFile: caFile, ReaderUsername: "flux-pull", ReaderPasswordFile: readerFile, PasswordsDir: passwords}}
	users := auth.Open(filepath.Join(home, "users.yaml"))

	team, in, err := ciInputs(cfg, users, "dev1/hello", "10.0.0.4:5000", "https://10.0.0.4:3000")
	if err != nil {
		t.Fatal(err)
	}
	if team != "dev1" || in.Variables["slipway.registry.addr"] != "myacr.azurecr.io" || in.Variables["slipway.registry.username"] != "ci-dev1" ||
		in.Secrets["slipway.registry.password"] != "acr-token-1" || in.Secrets["slipway.git.password"] != "acr-token-1" {
		t.Fatalf("dev1's inputs: %s %+v", team, in)
	}
	if u, err := users.Authenticate("ci-dev1", "acr-token-1"); err != nil || !slices.Equal(u.Push, []string{"dev1/"}) {
		t.Fatalf("dev1's CI account on the platform: %+v %v", u, err)
	}
	os.WriteFile(filepath.Join(passwords, "ci-dev1"), []byte("acr-token-2\n"), 0o600)
	if _, in, err = ciInputs(cfg, users, "dev1/hello", "", ""); err != nil || in.Secrets["slipway.registry.password"] != "acr-token-2" {
		t.Fatalf("after the token's renewal: %+v %v", in.Secrets, err)
	}
	if _, err := users.Authenticate("ci-dev1", "acr-token-1"); err == nil {
		t.Error("the renewed token's old password still works on the platform")
	}
	if _, _, err := ciInputs(cfg, users, "dev2/quotes", "", ""); err == nil || !strings.Contains(err.Error(), "has no password for ci-dev2") {
		t.Errorf("a team without an account there: %v", err)
	}
	if _, ok, _ := users.Get("ci-dev2"); ok {
		t.Error("the platform made an account for a team the registry has none for")
	}

	p := &Platform{Config: cfg, State: State{Addresses: Addresses{RegistryNode: "10.0.0.4:5000"}}}
	if url, err := p.ChartsURL("dev1"); err != nil || url != "oci://myacr.azurecr.io/dev1/charts" {
		t.Errorf("dev1's charts: %q %v", url, err)
	}
	if !p.ChartsCA() {
		t.Error("Flux is not given the line registry's CA")
	}
	secret, err := chartsReaderSecret(cfg, "dev1-staging")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"username: flux-pull", "password: acr-read", "ACR", "namespace: dev1-staging"} {
		if !strings.Contains(string(secret), want) {
			t.Errorf("the registry Secret lacks %q:\n%s", want, secret)
		}
	}
	cfg.Cluster.Existing.Registry.CAFile = ""
	if (&Platform{Config: cfg}).ChartsCA() {
		t.Error("a CA is given for a registry the system trusts")
	}
}

// Settings given to up alone (flags) reach every other command: they read
// the existing cluster, its fleet and its line registry as the running
// platform took them, not from their own environment.
func TestCommandsTakeTheExistingClusterFromTheRunningPlatform(t *testing.T) {
	cfg := config.Default()
	cfg.Home = t.TempDir()
	lock, err := AcquireLock(cfg.RunDir())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	existing := &config.ExistingCluster{Kubeconfig: "/root/.kube/aks", PlatformHost: "10.0.0.4",
		Registry: &config.LineRegistry{Host: "myacr.azurecr.io", ReaderUsername: "flux-pull", PasswordsDir: "/root/acr"}}
	if err := lock.Publish(State{PID: 1, Ready: true, Addresses: Addresses{Registry: "127.0.0.1:5000", RegistryNode: "10.0.0.4:5000"}, Existing: existing}); err != nil {
		t.Fatal(err)
	}
	p, err := Attach(cfg) // this command was given none of it
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Config.LineRegistry(); r == nil || r.Host != "myacr.azurecr.io" || !p.Config.ClusterExisting() {
		t.Fatalf("the command's view of the platform: %+v", p.Config.Cluster.Existing)
	}
	if url, _ := p.ChartsURL("dev1"); url != "oci://myacr.azurecr.io/dev1/charts" {
		t.Errorf("dev1's charts: %s", url)
	}
}
