package metrics

import (
	"crypto/x509"
	"encoding/pem"
	"os"

	"github.com/prometheus/client_golang/prometheus"
)

// Certificates exports when each of the platform's certificates expires,
// read from its file at every scrape (a certificate issued again is seen
// at once): slipway_certificate_expiry_timestamp_seconds{certificate}.
type Certificates struct {
	// Files maps a certificate's name to its PEM file.
	Files map[string]string
}

var certExpiry = prometheus.NewDesc("slipway_certificate_expiry_timestamp_seconds",
	"When a certificate of the platform or its cluster stops being valid, in seconds since 1970.", []string{"certificate"}, nil)

func (c *Certificates) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiry }

func (c *Certificates) Collect(ch chan<- prometheus.Metric) {
	for name, path := range c.Files {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // not made yet (no cluster)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(certExpiry, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), name)
	}
}
