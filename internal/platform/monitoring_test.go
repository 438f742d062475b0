package platform

import (
	"os"
	"path/filepath"
	"testing"
)

// A rule file Prometheus refuses is reported with Prometheus's own reason
// and the file as the fleet names it.
func TestRuleLoadErrorReadsPrometheusLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "prometheus.log")
	os.WriteFile(log, []byte(`time=2026-11-27T22:36:08.935Z level=ERROR source=manager.go:286 msg="loading groups failed" component="rule manager" err="/state/monitoring/rules/broken.yaml: 5:11: group \"broken\", rule 1, \"Broken\": could not parse expression: 1:10: parse error: unclosed left parenthesis"
time=2026-11-27T22:36:08.936Z level=ERROR source=main.go:1772 msg="Failed to apply configuration" err="error loading rules, previous rule set restored"
`), 0o644)
	got := ruleLoadError(log, "/state/monitoring/rules")
	want := `monitoring/rules/broken.yaml: 5:11: group "broken", rule 1, "Broken": could not parse expression: 1:10: parse error: unclosed left parenthesis`
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if ruleLoadError(filepath.Join(t.TempDir(), "none.log"), "/x") != "" {
		t.Fatal("a missing log gave a reason")
	}
}
