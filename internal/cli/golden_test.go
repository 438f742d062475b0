package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/golden"
)

// run runs the CLI in a fresh state directory and returns its exit code
// and streams.
func run(t *testing.T, home string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("SLIPWAY_HOME", home)
	t.Setenv("SLIPWAY_CONFIG", "")
	for _, k := range []string{"SLIPWAY_REGISTRY_ADDR", "SLIPWAY_GIT_ADDR", "SLIPWAY_CLUSTER", "SLIPWAY_FLUX"} {
		t.Setenv(k, "")
	}
	var out, errb strings.Builder
	code := Execute(context.Background(), args, Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// Every --dry-run and structured output, against files under testdata/
// (go test ./internal/cli -update writes them anew).
func TestGoldenOutput(t *testing.T) {
	for _, tc := range []struct {
		golden string
		setup  [][]string
		args   []string
	}{
		{golden: "tenant_create/dry-run.yaml", args: []string{"tenant", "create", "dev1", "--dry-run"}},
		{golden: "source_create/dry-run.yaml", args: []string{"source", "create", "dev1", "shared", "--url", "oci://10.244.0.1:5000/dev1/shared", "--dry-run"}},
		{golden: "release_create/dry-run.yaml", args: []string{"release", "create", "dev1/hello", "--dry-run"}},
		{golden: "release_create/range-chart-source.yaml", args: []string{"release", "create", "dev2/quotes", "--range", ">=1.0.0-0 <2.0.0-0", "--chart", "quotes-chart", "--source", "shared", "--dry-run"}},
		{golden: "user_list/users.json", setup: [][]string{{"user", "set", "dev1", "--push", "dev1/"}, {"user", "set", "ops", "--admin"}}, args: []string{"user", "list", "-o", "json"}},
		{golden: "user_list/users.yaml", setup: [][]string{{"user", "set", "dev1", "--push", "dev1/"}, {"user", "set", "ops", "--admin"}}, args: []string{"user", "list", "-o", "yaml"}},
		{golden: "pipeline_list/empty.json", args: []string{"pipeline", "list", "-o", "json"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			home := t.TempDir()
			for _, s := range tc.setup {
				if code, _, errs := run(t, home, "", s...); code != 0 {
					t.Fatalf("%v: exit %d: %s", s, code, errs)
				}
			}
			code, out, errs := run(t, home, "", tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden.Check(t, filepath.Join("testdata", tc.golden), []byte(out))
		})
	}
}

// Commands that need the platform say so, with exit code 3, and a user's
// mistake is a usage error (2) that says what to do.
func TestErrorsSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tenant", "create", "dev1"}, ExitNotRunning, "slipway up"},
		{[]string{"tenant", "create", "Dev_1", "--dry-run"}, ExitUsage, "lower-case letters"},
		{[]string{"release", "create", "hello"}, ExitUsage, "TEAM/APP"},
		{[]string{"source", "create", "dev1", "shared"}, ExitUsage, "--url"},
		{[]string{"get", "all"}, ExitNotRunning, "slipway up"},
		{[]string{"status"}, ExitNotRunning, "not running"},
		{[]string{"get", "nonsense"}, ExitUsage, "unknown kind"},
		{[]string{"build", "--platform", "plan9/mips"}, ExitUsage, "plan9"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errs := run(t, t.TempDir(), "", tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errs, tc.want)
			}
			if n := strings.Count(errs, "error:"); n != 1 {
				t.Errorf("the error is printed %d times:\n%s", n, errs)
			}
		})
	}
}
