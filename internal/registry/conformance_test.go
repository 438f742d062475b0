package registry_test

import (
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

// TestConformance runs the OCI distribution-spec conformance suite, built
// from the version pinned in components/conformance, against the embedded
// registry over HTTP with Basic authentication.
//
// Turned off, each for a stated reason:
//   - sha512 content: the distribution library stores sha256 only (the
//     spec makes other algorithms optional);
//   - non-distributable layers: deprecated in image-spec 1.1, and the
//     library refuses manifests that reference them without URLs.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the conformance suite")
	}
	bin := filepath.Join(t.TempDir(), "oci-conformance")
	build := exec.Command("go", "build", "-o", bin, "github.com/opencontainers/distribution-spec/conformance")
	build.Dir = filepath.Join("..", "..", "components", "conformance")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the conformance suite: %v\n%s", err, out)
	}

	reg := registrytest.Start(t)
	results := t.TempDir()
	cmd := exec.CommandContext(context.Background(), bin)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+reg.Addr,
		"OCI_TLS=disabled",
		"OCI_USERNAME=admin",
		"OCI_PASSWORD="+registrytest.AdminPassword,
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_RESULTS_DIR="+results,
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_DATA_SHA512=false",
		"OCI_DATA_NONDISTRIBUTABLE=false",
		"OCI_LOG=warn",
	)
	out, runErr := cmd.CombinedOutput()

	junitData, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("the suite wrote no results (%v):\n%s", runErr, out)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Skipped  int `xml:"skipped,attr"`
		Disabled int `xml:"disabled,attr"`
	}
	if err := xml.Unmarshal(junitData, &suites); err != nil {
		t.Fatalf("reading junit.xml: %v", err)
	}
	t.Logf("OCI conformance: %d tests, %d failures, %d errors, %d skipped, %d disabled",
		suites.Tests, suites.Failures, suites.Errors, suites.Skipped, suites.Disabled)

	resultsData, err := os.ReadFile(filepath.Join(results, "results.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var summary struct {
		APIs map[string]string `json:"apis"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(resultsData, &summary); err != nil {
		t.Fatalf("reading results.yaml: %v", err)
	}
	// The four workflows the distribution spec names, by the API tests that
	// make them up; each must pass, not merely be skipped.
	workflows := map[string][]string{
		"pull":               {"Blob get", "Blob head", "Manifest get by digest", "Manifest get by tag", "Manifest head by digest", "Manifest head by tag"},
		"push":               {"Blob push", "Blob post put", "Blob chunked", "Blob streaming", "Blob mount", "Manifest put by digest", "Manifest put by tag", "Manifest put with subject"},
		"content discovery":  {"Tag listing", "Referrers"},
		"content management": {"Manifest delete", "Blob delete", "Blob upload cancel"},
	}
	for workflow, apis := range workflows {
		for _, api := range apis {
			if got := summary.APIs[api]; got != "Pass" {
				t.Errorf("%s: %q is %q, want Pass", workflow, api, got)
			}
		}
		t.Logf("%s: %s pass", workflow, strings.Join(apis, ", "))
	}
	for name, status := range summary.APIs {
		if status == "FAIL" {
			t.Errorf("API %q failed", name)
		}
	}
	for name, status := range summary.Data {
		if status == "FAIL" {
			t.Errorf("data %q failed", name)
		}
	}
	if suites.Failures != 0 || suites.Errors != 0 || runErr != nil {
		t.Fatalf("conformance failures (%v); suite output:\n%s", runErr, out)
	}
}
