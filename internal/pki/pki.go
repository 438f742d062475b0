// Package pki makes and keeps the certificate authorities Slipway runs
// on: the cluster's (API server, etcd, kubelet, components) and the
// platform's (the registry and the git server). A CA is made once and
// kept beside the certificates it signed, so a restart keeps every
// client's trust valid.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/slipway-dev/slipway/internal/fsutil"
)

// Validity is how long a certificate made here stays valid.
const Validity = 10 * 365 * 24 * time.Hour

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is the certificate as written to BASE.crt.
	PEM []byte
}

// Spec describes a certificate to issue.
type Spec struct {
	// Name is the file base name: NAME.crt and NAME.key.
	Name   string
	CN     string
	Orgs   []string
	DNS    []string
	IPs    []net.IP
	Server bool
	Client bool
}

// LoadOrCreateCA reads BASE.crt and BASE.key, or makes a new CA named cn
// and writes them (the key readable by the owner only).
func LoadOrCreateCA(base, cn string) (*CA, error) {
	if certPEM, err := os.ReadFile(base + ".crt"); err == nil {
		keyPEM, err := os.ReadFile(base + ".key")
		if err != nil {
			return nil, err
		}
		cert, err := ParseCert(certPEM)
		if err != nil {
			return nil, fmt.Errorf("%s.crt is damaged: %w", base, err)
		}
		kb, _ := pem.Decode(keyPEM)
		if kb == nil {
			return nil, fmt.Errorf("%s.key is damaged: no PEM block", base)
		}
		key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s.key is damaged: %w", base, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s.key holds no signing key", base)
		}
		return &CA{Cert: cert, Key: signer, PEM: certPEM}, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	// The key first: a crash between the two writes leaves no certificate
	// without its key, so the next start makes both again.
	if err := WriteKey(base+".key", key); err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := fsutil.WriteFileAtomic(base+".crt", certPEM, 0o644); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: certPEM}, nil
}

// Issue writes DIR/NAME.crt and DIR/NAME.key, signed by the CA.
func (ca *CA) Issue(dir string, s Spec) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.CN, Organization: s.Orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     s.DNS,
		IPAddresses:  s.IPs,
	}
	if s.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return err
	}
	if err := WriteKey(filepath.Join(dir, s.Name+".key"), key); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, s.Name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// Covers reports whether DIR/NAME.crt exists, was signed by the CA, is
// valid for a while yet, and names every host and address of s.
func (ca *CA) Covers(dir string, s Spec) bool {
	data, err := os.ReadFile(filepath.Join(dir, s.Name+".crt"))
	if err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, s.Name+".key")); err != nil {
		return false
	}
	cert, err := ParseCert(data)
	if err != nil || cert.CheckSignatureFrom(ca.Cert) != nil || time.Until(cert.NotAfter) < 30*24*time.Hour {
		return false
	}
	for _, name := range s.DNS {
		if cert.VerifyHostname(name) != nil {
			return false
		}
	}
	for _, ip := range s.IPs {
		if cert.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	return true
}

// ParseCert reads the first certificate of PEM data.
func ParseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// WriteKey writes a private key as PKCS #8 PEM, readable by the owner only.
func WriteKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
