package platform

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/trust"
)

// platformTLS is what the registry and the git server of one `slipway up`
// serve, and how the platform's own checks trust them.
type platformTLS struct {
	files  trust.Files
	server *tls.Config
	client *http.Client
}

// ensureTLS makes (or reuses) the platform's CA and a serving certificate
// for every name clients use: loopback, this host's name, the configured
// addresses, the cluster node's address and the host the cluster reaches
// the platform at. It then makes this process, and every program it
// starts, trust the platform (trust.Adopt).
func ensureTLS(cfg config.Config) (*platformTLS, error) {
	hosts := []string{"127.0.0.1", "::1", "localhost", ClusterOptions(cfg).NodeIP, NodeHost(cfg)}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	for _, addr := range []string{cfg.Registry.Addr, cfg.Git.Addr} {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
				hosts = append(hosts, host)
			}
		}
	}
	files, err := trust.Ensure(cfg.TLSDir(), hosts)
	if err != nil {
		return nil, err
	}
	// Adopt before anything reads the system's CAs (files.Client does):
	// Go reads them once per process.
	if err := trust.Adopt(files); err != nil {
		return nil, fmt.Errorf("trusting the platform's CA: %w", err)
	}
	server, err := files.ServerConfig()
	if err != nil {
		return nil, err
	}
	client, err := files.Client(2 * time.Second)
	if err != nil {
		return nil, err
	}
	return &platformTLS{files: files, server: server, client: client}, nil
}

func (t *platformTLS) serverConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return t.server
}

func (t *platformTLS) httpClient() *http.Client {
	if t == nil {
		return &http.Client{Timeout: 2 * time.Second}
	}
	return t.client
}

// nodeScheme is the scheme of the node address: loopback may be plain
// HTTP when asked, the node address never is.
func (t *platformTLS) nodeScheme() string {
	if t == nil {
		return "http"
	}
	return "https"
}

// loopbackScheme is the scheme of the registry and git server on their
// configured (loopback) addresses.
func loopbackScheme(cfg config.Config) string {
	if cfg.TLS.PlainHTTPOnLoopback {
		return "http"
	}
	return "https"
}

// caNote tells where the CA is, for clients other than slipway's.
func (t *platformTLS) caNote() []string {
	if t == nil {
		return nil
	}
	return []string{"CA:      " + t.files.CA() + " (for other clients; `slipway ca --help`)"}
}
