package platform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
		MinFreeBytes:  s.Config.Registry.MinFreeBytes,
		AlsoAddrs:     s.AlsoAddrs,
		Log:           logFile,
	})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx) }()
	if err := waitHTTP(ctx, "http://"+srv.Addr()+"/healthz", errc); err != nil {
		return err
	}
	ready(supervisor.Endpoint{
		URL:    "http://" + srv.Addr(),
		Health: "http://" + srv.Addr() + "/healthz",
		Notes: append([]string{
			fmt.Sprintf("log in:  slipway login %s -u admin --password-stdin < %s", srv.Addr(), s.Config.AdminPasswordFile()),
		}, alsoNotes(s.AlsoAddrs)...),
	})
	return <-errc
}

func alsoNotes(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, "also at http://"+a+" (the name pods and in-cluster controllers use)")
	}
	return out
}
