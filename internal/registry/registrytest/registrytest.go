// Package registrytest starts the real embedded registry on a loopback port
// for tests, with an admin and two team users.
package registrytest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/registry"
)

// Registry is a running test registry.
type Registry struct {
	Addr       string
	StorageDir string
	Users      *auth.Store
	Server     *registry.Server
}

// Passwords of the users every test registry has.
const (
	AdminPassword = "admin-secret"
	Dev1Password  = "dev1-secret"
	Dev2Password  = "dev2-secret"
)

// Start runs a registry until the test ends. modify may change the options
// before it starts.
func Start(t testing.TB, modify ...func(*registry.Options)) *Registry {
	t.Helper()
	dir := t.TempDir()
	users := auth.Open(filepath.Join(dir, "users.yaml"))
	for _, u := range []struct {
		name, pw string
		admin    bool
		push     []string
	}{
		{"admin", AdminPassword, true, nil},
		{"dev1", Dev1Password, false, []string{"dev1/"}},
		{"dev2", Dev2Password, false, []string{"dev2/"}},
	} {
		if err := users.Set(u.name, u.pw, u.admin, u.push); err != nil {
			t.Fatal(err)
		}
	}
	opts := registry.Options{
		Addr:       "127.0.0.1:0",
		StorageDir: filepath.Join(dir, "storage"),
		Users:      users,
	}
	for _, m := range modify {
		m(&opts)
	}
	srv, err := registry.Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry: %v", err)
		}
	})
	return &Registry{Addr: srv.Addr(), StorageDir: opts.StorageDir, Users: users, Server: srv}
}

// Keychain returns credentials for one user.
func Keychain(user, password string) authn.Keychain {
	return credentials.Static(user, password)
}
