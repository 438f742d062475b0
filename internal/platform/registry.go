package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/supervisor"
)

// RegistryService runs the embedded OCI registry.
type RegistryService struct {
	Config config.Config
	Users  *auth.Store
	// AlsoAddrs are further addresses to serve on.
	AlsoAddrs []string
	// OnPush hears of every stored manifest; it must not block.
	OnPush func(registry.Push)
	// TLS is the platform's TLS (see platformTLS).
	TLS *platformTLS
	// Instrument, when set, wraps the registry's handler (metrics).
	Instrument func(http.Handler) http.Handler

	addr, url atomic.Pointer[string]
}

// Addr is the host:port the registry answers on once it listens, else "".
func (s *RegistryService) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// URL is the registry's base URL once it listens, else "".
func (s *RegistryService) URL() string {
	if u := s.url.Load(); u != nil {
		return *u
	}
	return ""
}

func (s *RegistryService) Name() string { return "registry" }

func (s *RegistryService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	if err := os.MkdirAll(s.Config.LogDir(), 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(s.Config.LogDir(), "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening registry log: %w", err)
	}
	defer logFile.Close()
	srv, err := registry.Listen(registry.Options{
		Addr:          s.Config.Registry.Addr,
		StorageDir:    s.Config.RegistryDir(),
		Users:         s.Users,
		AnonymousPull: s.Config.Registry.AnonymousPull,
		TokenAuth:     s.Config.Registry.TokenAuth,
		MinFreeBytes:  s.Config.Registry.MinFreeBytes,
		AlsoAddrs:     s.AlsoAddrs,
		Log:           logFile,
		OnPush:        s.OnPush,
		Instrument:    s.Instrument,

		TLS:                 s.TLS.serverConfig(),
		PlainHTTPOnLoopback: s.Config.TLS.PlainHTTPOnLoopback,
	})
	if err != nil {
		return err
	}
	addr, url := srv.Addr(), srv.URL()
	s.addr.Store(&addr)
	s.url.Store(&url)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx) }()
	if err := waitHTTP(ctx, s.TLS.httpClient(), srv.URL()+"/healthz", errc); err != nil {
		return err
	}
	ready(supervisor.Endpoint{
		URL:    srv.URL(),
		Health: srv.URL() + "/healthz",
		Notes: append(append([]string{
			fmt.Sprintf("log in:  slipway login %s -u admin --password-stdin < %s", srv.Addr(), s.Config.AdminPasswordFile()),
		}, s.TLS.caNote()...), alsoNotes(s.TLS.nodeScheme(), s.AlsoAddrs)...),
	})
	return <-errc
}

func alsoNotes(scheme string, addrs []string) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, "also at "+scheme+"://"+a+" (the name pods and in-cluster controllers use)")
	}
	return out
}

// CollectGarbage removes the registry's unreferenced blobs: the running
// registry does it, as the admin, holding pushes back meanwhile; when
// nothing runs, the storage is collected directly.
func CollectGarbage(ctx context.Context, cfg config.Config, opts registry.GCOptions) (registry.GCResult, error) {
	p, err := Attach(cfg)
	if errors.Is(err, ErrNotRunning) {
		return registry.GarbageCollect(ctx, cfg.RegistryDir(), opts)
	}
	if err != nil {
		return registry.GCResult{}, err
	}
	password, err := p.AdminPassword()
	if err != nil {
		return registry.GCResult{}, err
	}
	return registry.RequestGC(ctx, p.RegistryURL(), "admin", password, opts)
}
