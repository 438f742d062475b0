package monitoring

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// RulesDir is where the fleet repository keeps the alert rules, one
// Prometheus rule file per *.yaml.
const RulesDir = "monitoring/rules"

// DefaultRulesFile is the rule file `up` seeds the fleet with.
const DefaultRulesFile = RulesDir + "/slipway.yaml"

// teamOf adds the team and namespace labels to an expression whose
// series name a namespace in label from (TEAM-staging or TEAM-prod).
func teamOf(expr, from string) string {
	out := expr
	if from != "namespace" {
		out = fmt.Sprintf(`label_replace(%s, "namespace", "$1", %q, "(.+)")`, out, from)
	}
	return fmt.Sprintf(`label_replace(%s, "team", "$1", "namespace", "(.+)-(staging|prod)")`, out)
}

// DefaultRules are the alerts the line starts with. Every alert has a
// severity (critical or warning) and, when it concerns a team's
// namespace, the team and namespace labels the platform files it by.
// A critical alert of an app in staging holds back its promotion.
func DefaultRules() []byte {
	type rule struct {
		Alert       string            `json:"alert"`
		Expr        string            `json:"expr"`
		For         string            `json:"for,omitempty"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	type group struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	}
	warning := map[string]string{"severity": "warning"}
	critical := map[string]string{"severity": "critical"}
	groups := []group{
		{Name: "slipway-releases", Rules: []rule{
			{Alert: "SlipwayReleaseNotReady", For: "2m", Labels: critical,
				Expr: teamOf(`label_replace(max by (exported_namespace, name) (gotk_resource_info{customresource_kind="HelmRelease", ready!="True", suspended="false", exported_namespace=~".+-prod"}), "app", "$1", "name", "(.+)")`, "exported_namespace"),
				Annotations: map[string]string{
					"summary":     "HelmRelease {{ $labels.namespace }}/{{ $labels.name }} has not been Ready for 2 minutes",
					"description": "Flux cannot bring the release to its wanted version; slipway get hr {{ $labels.name }} -n {{ $labels.namespace }} says why.",
				}},
			{Alert: "SlipwayPodCrashLooping", For: "1m", Labels: warning,
				// Either sign: the waiting reason over 5 minutes (between
				// its restarts a crash-looping container is Running for a
				// moment, which must not end the alert), or three restarts
				// in 10 minutes, which a scrape cannot miss: one every 30 s
				// may land only while the container runs.
				Expr: teamOf(`max by (namespace, pod, container) (max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"}[5m])) >= 1`+
					` or max by (namespace, pod, container) (increase(kube_pod_container_status_restarts_total[10m])) >= 3`, "namespace"),
				Annotations: map[string]string{
					"summary":     "Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} is crash-looping",
					"description": "The container keeps exiting and Kubernetes waits longer before each restart; its logs say why.",
				}},
			{Alert: "SlipwayHighErrorRatio", For: "5m", Labels: critical,
				Expr: `(sum by (team, env, namespace, app) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (team, env, namespace, app) (rate(http_requests_total[5m]))) > 0.05`,
				Annotations: map[string]string{
					"summary":     "{{ $labels.app }} in {{ $labels.namespace }} answers {{ $value | humanizePercentage }} of requests with 5xx",
					"description": "More than 5 % of the app's requests failed over 5 minutes.",
				}},
		}},
		{Name: "slipway-platform", Rules: []rule{
			{Alert: "SlipwayTargetDown", For: "1m", Labels: warning,
				Expr: `up == 0`,
				Annotations: map[string]string{
					"summary":     "Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}",
					"description": "The target did not answer its last scrapes.",
				}},
			{Alert: "SlipwayPipelineFailingOnMain", Labels: warning,
				Expr: `slipway_pipeline_last_run_succeeded{branch="main"} == 0`,
				Annotations: map[string]string{
					"summary":     "The last run of pipeline {{ $labels.pipeline }} on main failed",
					"description": "slipway pipeline list {{ $labels.pipeline }} shows the run and its log.",
				}},
			{Alert: "SlipwayCertificateExpiresSoon", Labels: warning,
				Expr: `slipway_certificate_expiry_timestamp_seconds - time() < 14 * 86400`,
				Annotations: map[string]string{
					"summary":     "Certificate {{ $labels.certificate }} expires in less than 14 days",
					"description": "slipway up issues the platform's serving certificate again near its expiry; a CA needs ops.",
				}},
		}},
	}
	data, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		panic(err)
	}
	return append([]byte("# Alert rules, as Prometheus reads them. Ops changes them by commit;\n# the platform loads every *.yaml of monitoring/rules/ when the fleet changes.\n"), data...)
}

// RuleFiles reads the rule files of a fleet work tree: every *.yaml
// directly under monitoring/rules, by name.
func RuleFiles(fleetDir string) (map[string][]byte, error) {
	return ReadRuleDir(filepath.Join(fleetDir, filepath.FromSlash(RulesDir)))
}

// ReadRuleDir reads the *.yaml files of a directory, by name (regular
// files only, each bounded).
func ReadRuleDir(dir string) (map[string][]byte, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, p := range matches {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue // a symlink could point anywhere on the host
		}
		if fi.Size() > maxRuleFileBytes {
			return nil, fmt.Errorf("%s/%s is %d bytes; a rule file is at most %d", RulesDir, filepath.Base(p), fi.Size(), maxRuleFileBytes)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files[filepath.Base(p)] = data
	}
	return files, nil
}

// maxRuleFileBytes bounds one rule file.
const maxRuleFileBytes = 1 << 20

// WriteRules makes dir hold exactly files, and says whether anything
// changed.
func WriteRules(dir string, files map[string][]byte) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return false, err
	}
	changed := false
	for _, p := range old {
		if _, keep := files[filepath.Base(p)]; !keep {
			if err := os.Remove(p); err != nil {
				return false, err
			}
			changed = true
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, files[n]) {
			continue
		}
		if strings.ContainsAny(n, `/\`) {
			return false, fmt.Errorf("rule file name %q", n)
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}
