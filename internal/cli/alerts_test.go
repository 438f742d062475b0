package cli

import (
	"testing"

	"github.com/slipway-dev/slipway/internal/monitoring"
)

func TestParseMatcher(t *testing.T) {
	for in, want := range map[string]monitoring.Matcher{
		"alertname=SlipwayTargetDown": {Name: "alertname", Value: "SlipwayTargetDown", IsEqual: true},
		"app!=hello":                  {Name: "app", Value: "hello"},
		"namespace=~dev1-.*":          {Name: "namespace", Value: "dev1-.*", IsRegex: true, IsEqual: true},
		"pod!~crash.*":                {Name: "pod", Value: "crash.*", IsRegex: true},
		"summary=a=b":                 {Name: "summary", Value: "a=b", IsEqual: true},
	} {
		got, err := parseMatcher(in)
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "alertname", "=x", "!=x"} {
		if _, err := parseMatcher(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
