package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/dashboard"
	"github.com/slipway-dev/slipway/internal/gitserver"
	"github.com/slipway-dev/slipway/internal/supervisor"
	"github.com/slipway-dev/slipway/internal/trust"
)

// GitService runs the git server. Push events are appended, one JSON
// object a line, to logs/push-events.log, until the pipeline runner takes
// them.
type GitService struct {
	Config    config.Config
	Users     *auth.Store
	AlsoAddrs []string
	// OnPush, when set, also receives every push (the pipeline runner).
	OnPush func(gitserver.Event)
	// API, when set, answers under APIPath on the same addresses.
	API http.Handler
	// GoProxy, when set, answers under GoProxyPath: the Go module proxy
	// of pipeline jobs.
	GoProxy http.Handler
	// TLS is the platform's TLS (see platformTLS).
	TLS *platformTLS
	// Metrics, when set, answers GET /metrics, to admins only.
	Metrics http.Handler
	// FluxEvents, when set, takes Flux's signed events at FluxEventsPath.
	FluxEvents http.Handler
	// Alerts, when set, takes Alertmanager's notifications at
	// AlertsWebhookPath.
	Alerts http.Handler
	// Dashboard, when set, serves the web dashboard under dashboard.Path.
	Dashboard http.Handler

	url atomic.Pointer[string]
}

// URL is the server's base URL (https://HOST:PORT, or http:// where it
// serves plain HTTP) once it listens, else "".
func (s *GitService) URL() string {
	if u := s.url.Load(); u != nil {
		return *u
	}
	return ""
}

func (s *GitService) Name() string { return "git" }

func (s *GitService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	srv, err := gitserver.New(s.Config.GitDir(), s.Users)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Config.LogDir(), 0o755); err != nil {
		return err
	}
	events, err := os.OpenFile(filepath.Join(s.Config.LogDir(), "push-events.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer events.Close()
	var mu sync.Mutex
	srv.OnPush = func(ev gitserver.Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(events).Encode(ev)
		if s.OnPush != nil {
			s.OnPush(ev)
		}
	}
	// Pushes a crash cut off between git's ref update and the runner's
	// intake are told now (and logged above), before anyone can push again.
	if _, err := srv.Replay(); err != nil {
		return err
	}
	// Mirrored repositories follow their hosts: by webhook, by polling,
	// and once at each start (see gitserver/mirror.go).
	mirrorLog, err := os.OpenFile(filepath.Join(s.Config.LogDir(), "mirrors.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer mirrorLog.Close()
	syncer := &gitserver.Syncer{Server: srv, Failed: func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(mirrorLog, "%s %s: %v\n", time.Now().UTC().Format(time.RFC3339), name, err)
	}}
	syncCtx, stopSyncs := context.WithCancel(ctx)
	defer func() { stopSyncs(); syncer.Wait() }()

	var listeners []net.Listener
	var schemes []string
	for _, addr := range append([]string{s.Config.Git.Addr}, s.AlsoAddrs...) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("git server cannot listen on %s: %w (pick another address with --git-addr)", addr, err)
		}
		ln, scheme := trust.Serve(ln, s.TLS.serverConfig(), s.Config.TLS.PlainHTTPOnLoopback)
		listeners, schemes = append(listeners, ln), append(schemes, scheme)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	if s.API != nil {
		mux.Handle(APIPath, s.API)
	}
	if s.GoProxy != nil {
		mux.Handle("GET "+GoProxyPath, http.StripPrefix(strings.TrimSuffix(GoProxyPath, "/"), s.GoProxy))
	}
	if s.Metrics != nil {
		mux.Handle("GET /metrics", metricsReaders(s.Users, s.Metrics))
	}
	if s.FluxEvents != nil {
		mux.Handle("POST "+FluxEventsPath, s.FluxEvents)
	}
	if s.Alerts != nil {
		mux.Handle("POST "+AlertsWebhookPath, s.Alerts)
	}
	if s.Dashboard != nil {
		mux.Handle(dashboard.Path, s.Dashboard)
	}
	mux.Handle(gitserver.WebhookPath, &gitserver.Webhooks{Server: srv, Queue: func(name, pusher string) { syncer.Queue(syncCtx, name, pusher) }})
	mux.Handle("/", srv)
	errLog, err := os.OpenFile(filepath.Join(s.Config.LogDir(), "git.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer errLog.Close()
	// Failed handshakes (a client that does not trust the CA, plain HTTP
	// to the TLS port) go to the log, not the terminal of `slipway up`.
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(errLog, "git: ", log.LstdFlags)}
	errc := make(chan error, len(listeners))
	for _, ln := range listeners {
		go func() { errc <- hs.Serve(ln) }()
	}
	base := schemes[0] + "://" + listeners[0].Addr().String()
	s.url.Store(&base)
	if err := waitHTTP(ctx, s.TLS.httpClient(), base+"/healthz", errc); err != nil {
		hs.Close()
		return err
	}
	var notes []string
	for i, ln := range listeners[1:] {
		notes = append(notes, "also at "+schemes[i+1]+"://"+ln.Addr().String()+" (the name pods and Flux use)")
	}
	clone := "git clone "
	if schemes[0] == "https" {
		clone += "-c http.sslCAInfo=" + s.TLS.files.CA() + " "
	}
	first := []string{"clone:   " + clone + base + "/TEAM/APP.git (after `slipway repo create TEAM/APP`)"}
	if s.Dashboard != nil {
		first = append(first, "dashboard: "+base+dashboard.Path+" (sign in with a platform user)")
	}
	ready(supervisor.Endpoint{URL: base, Health: base + "/healthz", Notes: append(first, notes...)})
	polling := make(chan struct{})
	go func() { defer close(polling); syncer.Poll(syncCtx) }()
	defer func() { stopSyncs(); <-polling }()
	select {
	case err := <-errc:
		hs.Close()
		return fmt.Errorf("git server stopped serving: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	hs.Close()
	return nil
}

// metricsReaders serves h to the platform's admins and its Prometheus,
// who authenticate with Basic auth (what Prometheus's basic_auth sends);
// it names the pipelines and repositories of every team, so no team may
// read it.
func metricsReaders(users *auth.Store, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, status, err := users.RequestUser(w, r, "slipway")
		switch {
		case err != nil:
			http.Error(w, auth.Refusal(err, "log in as an admin"), status)
		case !user.Admin && user.Name != prometheusUser:
			http.Error(w, fmt.Sprintf("user %q is not an admin: the platform's metrics are for ops", user.Name), http.StatusForbidden)
		default:
			h.ServeHTTP(w, r)
		}
	})
}
