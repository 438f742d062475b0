package monitoring

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/golden"
)

// The configuration the platform gives Prometheus and Alertmanager, and
// the rules it seeds the fleet with, as files a reviewer reads.
func TestConfigurationFiles(t *testing.T) {
	golden.Check(t, filepath.Join("testdata", "prometheus.yml"), PrometheusConfig(PrometheusOptions{
		Self: "127.0.0.1:9090", Alertmanager: "127.0.0.1:9093",
		Platform: "10.244.0.1:3000", PlatformCA: "/state/tls/ca.crt", PlatformUser: "prometheus", PlatformPasswordFile: "/state/monitoring/secrets/scrape-password",
		Cluster:  &ClusterAccess{Kubeconfig: "/state/cluster/kubeconfig/prometheus.kubeconfig", CA: "/state/cluster/pki/ca.crt", Cert: "/state/cluster/pki/prometheus.crt", Key: "/state/cluster/pki/prometheus.key"},
		RulesDir: "/state/monitoring/rules", ScrapeInterval: 30 * time.Second, Retention: 48 * time.Hour,
		AppScrapeInterval: 10 * time.Second, EvaluationInterval: 15 * time.Second,
	}))
	// On an existing cluster, every cluster target is read through the
	// API server's proxy, with the bearer token of Prometheus' account.
	golden.Check(t, filepath.Join("testdata", "prometheus-existing-cluster.yml"), PrometheusConfig(PrometheusOptions{
		Self: "127.0.0.1:9090", Alertmanager: "127.0.0.1:9093",
		Platform: "slipway.example.com:3000", PlatformCA: "/state/tls/ca.crt", PlatformUser: "prometheus", PlatformPasswordFile: "/state/monitoring/secrets/scrape-password",
		Cluster:  &ClusterAccess{APIServer: "aks-1234.hcp.westeurope.azmk8s.io:443", CA: "/state/monitoring/secrets/cluster-ca.crt", TokenFile: "/state/monitoring/secrets/cluster-token"},
		RulesDir: "/state/monitoring/rules", ScrapeInterval: 30 * time.Second, Retention: 48 * time.Hour,
		AppScrapeInterval: 10 * time.Second, EvaluationInterval: 15 * time.Second,
	}))
	golden.Check(t, filepath.Join("testdata", "alertmanager.yml"), AlertmanagerConfig(AlertmanagerOptions{
		WebhookURL: "https://10.244.0.1:3000/-/api/v1/alerts/webhook", CA: "/state/tls/ca.crt", TokenFile: "/state/monitoring/secrets/alerts-token", GroupWait: 5 * time.Second,
	}))
	golden.Check(t, filepath.Join("testdata", "rules.yaml"), DefaultRules())
}

// The platform's copy of the rules follows the fleet's exactly, and a
// rule file that is a symlink (it could point anywhere on the host) is
// not read.
func TestRulesFollowTheFleet(t *testing.T) {
	fleet, dir := t.TempDir(), t.TempDir()
	rules := filepath.Join(fleet, RulesDir)
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(rules, "a.yaml"), []byte("groups: []\n"), 0o644)
	os.WriteFile(filepath.Join(rules, "notes.txt"), []byte("not a rule file"), 0o644)
	os.Symlink("/etc/shadow", filepath.Join(rules, "b.yaml"))
	files, err := RuleFiles(fleet)
	if err != nil || len(files) != 1 || string(files["a.yaml"]) != "groups: []\n" {
		t.Fatalf("read %v, %v", files, err)
	}
	if changed, err := WriteRules(dir, files); err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	if changed, _ := WriteRules(dir, files); changed {
		t.Fatal("writing the same rules again changed something")
	}
	os.WriteFile(filepath.Join(dir, "old.yaml"), []byte("groups: []\n"), 0o644)
	if changed, _ := WriteRules(dir, map[string][]byte{"c.yaml": []byte("groups: []\n")}); !changed {
		t.Fatal("new rules did not change the directory")
	}
	got, _ := ReadRuleDir(dir)
	if len(got) != 1 || got["c.yaml"] == nil {
		t.Fatalf("the directory holds %v, want only c.yaml", got)
	}
}
