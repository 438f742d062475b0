package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	// The filesystem storage driver registers itself with distribution.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/trust"
)

// Options configure a Server.
type Options struct {
	// Addr is the host:port to listen on; port 0 picks a free port.
	Addr string
	// AlsoAddrs are further addresses to serve on, such as the cluster
	// node's, which pods reach and the host does too.
	AlsoAddrs []string
	// StorageDir holds blobs and manifests.
	StorageDir string
	// Users authenticates clients.
	Users *auth.Store
	// AnonymousPull lets clients without credentials read.
	AnonymousPull bool
	// MinFreeBytes is the free space to keep on the storage volume.
	MinFreeBytes int64
	// Log receives the registry's own log lines; nil discards them.
	Log io.Writer
	// TLS, when set, serves HTTPS on every address, or on all but the
	// loopback ones with PlainHTTPOnLoopback.
	TLS                 *tls.Config
	PlainHTTPOnLoopback bool
	// Instrument, when set, wraps the registry's handler (metrics).
	Instrument func(http.Handler) http.Handler
	// TokenAuth challenges clients for a token from the registry's token
	// endpoint (TokenPath), the flow ACR uses, instead of Basic
	// credentials (see token.go).
	TokenAuth bool
	// OnPush, when set, hears of every manifest the registry stored, after
	// it answered the client. It runs on the request's goroutine: it must
	// not block (hand the push to a worker).
	OnPush func(Push)
}

// Push is a manifest the registry stored.
type Push struct {
	// Repository is the repository's name, such as dev1/charts/hello.
	Repository string
	// Reference is the tag or digest the client pushed it by.
	Reference string
	Digest    string
	// ArtifactType is the manifest's artifactType, else its config's media
	// type: application/vnd.cncf.helm.config.v1+json for a Helm chart.
	ArtifactType string
	// User pushed it.
	User string
}

// Server is a running registry.
type Server struct {
	opts     Options
	listener net.Listener
	// scheme is the main listener's: "https", or "http" without TLS.
	scheme string
	// more are the listeners of AlsoAddrs.
	more []net.Listener
	http *http.Server
	app  *handlers.App
	// tokenKey signs the tokens of TokenAuth.
	tokenKey []byte
	// now is the clock tokens are issued and checked by.
	now func() time.Time

	// gcLock is held shared by every write and exclusively by garbage
	// collection, which must not see a half-pushed image.
	gcLock sync.RWMutex
}

// logrusOnce guards the process-wide logrus settings that distribution logs
// through; they are set once, by the first registry started.
var logrusOnce sync.Once

// Listen binds the address and prepares the registry, without serving yet.
// A port that is taken is reported here, before anything else starts.
func Listen(opts Options) (*Server, error) {
	if opts.Users == nil {
		return nil, errors.New("registry needs a user store")
	}
	if err := os.MkdirAll(opts.StorageDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating registry storage: %w", err)
	}
	logrusOnce.Do(func() {
		logrus.SetOutput(logOut(opts.Log))
		logrus.SetLevel(logrus.WarnLevel)
	})
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("registry cannot listen on %s: %w (is another registry or `slipway up` running? pick another address with --registry-addr)", opts.Addr, err)
	}
	var more []net.Listener
	closeAll := func() {
		ln.Close()
		for _, l := range more {
			l.Close()
		}
	}
	for _, a := range opts.AlsoAddrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("registry cannot listen on %s: %w", a, err)
		}
		more = append(more, l)
	}
	app, err := newApp(opts.StorageDir)
	if err != nil {
		closeAll()
		return nil, err
	}
	s := &Server{opts: opts, app: app, tokenKey: newTokenKey(), now: time.Now}
	s.listener, s.scheme = trust.Serve(ln, opts.TLS, opts.PlainHTTPOnLoopback)
	for _, l := range more {
		l, _ = trust.Serve(l, opts.TLS, opts.PlainHTTPOnLoopback)
		s.more = append(s.more, l)
	}
	handler := s.routes()
	if opts.Instrument != nil {
		handler = opts.Instrument(handler)
	}
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		// Failed handshakes (a client that does not trust the CA, a
		// plain-HTTP request) belong in the registry's log, not on the
		// terminal of `slipway up`.
		ErrorLog: log.New(logOut(opts.Log), "registry: ", log.LstdFlags),
	}
	return s, nil
}

// newApp builds distribution's handler. NewApp panics on bad configuration,
// so that is turned into an error here.
func newApp(storageDir string) (app *handlers.App, err error) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg := &configuration.Configuration{}
	cfg.Log.Level = "warn"
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	// distribution's default when read from its YAML; the zero value of a
	// configuration built in code refuses every catalog request.
	cfg.Catalog.MaxEntries = 1000
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": storageDir},
		"delete":     configuration.Parameters{"enabled": true},
		"maintenance": configuration.Parameters{
			"uploadpurging": map[any]any{"enabled": true, "age": "24h", "interval": "1h", "dryrun": false},
		},
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting registry storage in %s: %v", storageDir, r)
		}
	}()
	return handlers.NewApp(context.Background(), cfg), nil
}

// Addr is the address the server listens on, with the real port.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the registry's base URL on its main address: https://HOST:PORT,
// or http:// where it serves plain HTTP.
func (s *Server) URL() string { return s.scheme + "://" + s.Addr() }

func logOut(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Serve answers requests until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	listeners := append([]net.Listener{s.listener}, s.more...)
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- s.http.Serve(l) }()
	}
	select {
	case err := <-errc:
		_ = s.http.Close()
		return fmt.Errorf("registry stopped serving: %w", err)
	case <-ctx.Done():
	}
	// Requests in flight get a moment to finish; connections that stay
	// open after that (clients holding a connection they never use) are
	// closed rather than waited for.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.http.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.http.Close()
	}
	for range listeners {
		<-errc
	}
	_ = s.app.Shutdown() // ends distribution's background upload purger
	if err != nil {
		return fmt.Errorf("stopping registry: %w", err)
	}
	return nil
}

// Close releases the listener of a server that never served.
func (s *Server) Close() error {
	_ = s.app.Shutdown()
	for _, l := range s.more {
		l.Close()
	}
	return s.listener.Close()
}
