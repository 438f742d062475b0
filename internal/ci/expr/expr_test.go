package expr

import (
	"strings"
	"testing"
)

func ctx(status string) *Context {
	return &Context{Status: status, Values: map[string]any{
		"variables": map[string]any{
			"Build.SourceBranch": "refs/heads/main",
			"Build.Reason":       "IndividualCI",
			"isMain":             "true",
			"count":              "3",
		},
		"parameters": map[string]any{
			"env":     "staging",
			"deploy":  true,
			"regions": []any{"west", "north"},
			"image":   map[string]any{"name": "hello", "tag": "1.0"},
		},
	}}
}

func TestEval(t *testing.T) {
	for src, want := range map[string]string{
		`eq(variables['Build.SourceBranch'], 'refs/heads/main')`:                  "True",
		`eq(variables['build.sourcebranch'], 'REFS/HEADS/MAIN')`:                  "True", // names and strings ignore case
		`ne(variables.isMain, true)`:                                              "False",
		`eq(variables.isMain, true)`:                                              "True",
		`and(succeeded(), eq(parameters.env, 'staging'))`:                         "True",
		`or(failed(), startsWith(variables['Build.SourceBranch'], 'refs/tags/'))`: "False",
		`not(contains(variables['Build.SourceBranch'], 'feature'))`:               "True",
		`in(parameters.env, 'dev', 'staging', 'prod')`:                            "True",
		`notIn(parameters.env, 'dev', 'prod')`:                                    "True",
		`contains(parameters.regions, 'north')`:                                   "True",
		`gt(variables.count, 2)`:                                                  "True",
		`le(variables.count, 2)`:                                                  "False",
		`format('{0}:{1}', parameters.image.name, parameters.image.tag)`:          "hello:1.0",
		`join(';', parameters.regions)`:                                           "west;north",
		`coalesce(variables.missing, '', 'fallback')`:                             "fallback",
		`length(parameters.regions)`:                                              "2",
		`upper(replace('a-b', '-', '_'))`:                                         "A_B",
		`iif(parameters.deploy, 'yes', 'no')`:                                     "yes",
		`eq(1, '1.0')`:                                                            "True",
		`'it''s'`:                                                                 "it's",
		`always()`:                                                                "True",
		`endsWith('chart.tgz', '.TGZ')`:                                           "True",
		`split('a,b', ',')[1]`:                                                    "b",
	} {
		v, err := Eval(src, ctx("Succeeded"))
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if got := String(v); got != want {
			t.Errorf("%s = %q, want %q", src, got, want)
		}
	}
}

func TestStatusFunctions(t *testing.T) {
	for _, tc := range []struct {
		status string
		src    string
		want   bool
	}{
		{"Succeeded", "succeeded()", true},
		{"Failed", "succeeded()", false},
		{"Failed", "failed()", true},
		{"Failed", "always()", true},
		{"Canceled", "succeededOrFailed()", false},
		{"Canceled", "canceled()", true},
		{"SucceededWithIssues", "succeeded()", true},
	} {
		got, err := EvalBool(tc.src, ctx(tc.status))
		if err != nil || got != tc.want {
			t.Errorf("%s with %s: %v %v", tc.src, tc.status, got, err)
		}
	}
	if _, err := Eval("succeeded()", ctx("")); err == nil {
		t.Error("succeeded() outside a condition must be an error")
	}
}

func TestErrors(t *testing.T) {
	for src, want := range map[string]string{
		`eq('a')`:            "takes 2 arguments",
		`frobnicate(1)`:      "unknown function",
		`eq('a', 'b'`:        "expected ','",
		`'open`:              "unterminated",
		`eq('a', 'b') extra`: "unexpected",
		`secrets.token`:      "unrecognized value",
		`format('{3}', 'a')`: "no argument",
	} {
		_, err := Eval(src, ctx("Succeeded"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", src, err, want)
		}
	}
}

// FuzzEval: any input parses or fails with an error; it never panics.
func FuzzEval(f *testing.F) {
	for _, s := range []string{`eq(variables['a'], 'b')`, `and(succeeded(), in(parameters.x, 1, 2))`, `format('{0}', split('a,b', ',')[0])`, `'x''y'`, `((1))`, `a.b[c]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = Eval(src, ctx("Succeeded"))
	})
}

func TestCounterNeedsARun(t *testing.T) {
	if _, err := Eval("counter('1', 100)", &Context{}); err == nil || !strings.Contains(err.Error(), "only in a variable's $[ ]") {
		t.Fatalf("counter() without a run: %v", err)
	}
	next := 7
	c := &Context{Counter: func(prefix string, seed int) (int, error) {
		if prefix != "1" || seed != 100 {
			t.Fatalf("counter(%q, %d)", prefix, seed)
		}
		return next, nil
	}}
	if v, err := Eval("counter('1', 100)", c); err != nil || String(v) != "7" {
		t.Fatalf("counter(): %v %v", v, err)
	}
	if _, err := Eval("counter('1', 1.5)", c); err == nil || !strings.Contains(err.Error(), "whole number") {
		t.Fatalf("counter() with a fractional seed: %v", err)
	}
}
