package pipeline

import "testing"

func TestTriggers(t *testing.T) {
	full := &Pipeline{Trigger: &Trigger{
		Branches: Filter{Include: []string{"main", "releases/*"}, Exclude: []string{"releases/old*"}},
		Paths:    Filter{Include: []string{"src", "chart/*"}, Exclude: []string{"src/docs"}},
		Tags:     Filter{Include: []string{"v*"}},
	}}
	for _, tc := range []struct {
		p       *Pipeline
		ref     string
		changed []string
		want    bool
	}{
		{&Pipeline{}, "refs/heads/feature/x", []string{"a"}, true},
		{&Pipeline{}, "refs/tags/v1", nil, false},
		{&Pipeline{Trigger: &Trigger{None: true}}, "refs/heads/main", nil, false},
		{full, "refs/heads/main", []string{"src/main.go"}, true},
		{full, "refs/heads/main", []string{"README.md"}, false},
		{full, "refs/heads/main", []string{"src/docs/intro.md"}, false},
		{full, "refs/heads/main", []string{"README.md", "chart/values.yaml"}, true},
		{full, "refs/heads/main", nil, true},
		{full, "refs/heads/releases/1.2", []string{"src/a.go"}, true},
		{full, "refs/heads/releases/old-1", []string{"src/a.go"}, false},
		{full, "refs/heads/feature", []string{"src/a.go"}, false},
		{full, "refs/tags/v1.0.0", nil, true},
		{full, "refs/tags/x1", nil, false},
		{&Pipeline{Trigger: &Trigger{Tags: Filter{Include: []string{"v*"}}}}, "refs/heads/main", nil, false},
		{&Pipeline{Trigger: &Trigger{Branches: Filter{Include: []string{"refs/heads/main"}}}}, "refs/heads/main", nil, true},
	} {
		if got := tc.p.Triggers(tc.ref, tc.changed); got != tc.want {
			t.Errorf("%+v %s %v: %v, want %v", tc.p.Trigger, tc.ref, tc.changed, got, tc.want)
		}
	}
}
