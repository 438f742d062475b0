package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
)

// agentElsewhereShips plays an agent that is not the platform's runner
// (Azure DevOps's own, say): it has the slipway program, Go, the
// platform's CA, and the variables ops printed for dev1's variable group,
// and nothing of the platform's state. It runs the commands of the line's
// templates (build and publish, wait, test, promote) on a copy of hello,
// and the new version reaches prod. Then it tries, with those variables,
// what the team's CI account must not do through the platform. cluster
// is the env whose kubectl reaches the cluster the platform deploys to.
func agentElsewhereShips(t *testing.T, e, cluster *env, dev1Password string) {
	t.Helper()
	// Without --show-secrets, no password is printed.
	if text := e.mustRun("", "pipeline", "variables", "dev1").stdout; !strings.Contains(text, "slipway.registry.password=(secret") ||
		!strings.Contains(text, "slipway.platform.url=https://") {
		t.Fatalf("pipeline variables dev1:\n%s", text)
	}
	var group struct{ Variables, Secrets map[string]string }
	out := e.mustRun("", "pipeline", "variables", "dev1", "--show-secrets", "-o", "json").stdout
	if err := json.Unmarshal([]byte(out), &group); err != nil || group.Secrets["slipway.registry.password"] == "" {
		t.Fatalf("pipeline variables dev1 -o json: %v\n%s", err, out)
	}
	if r := e.run("", "pipeline", "variables", "nobody"); r.code == 0 || !strings.Contains(r.stderr, "tenant create nobody") {
		t.Errorf("variables of a team that was never onboarded: exit %d %s", r.code, r.stderr)
	}

	// The agent's environment: what Azure DevOps makes of the variable
	// group (each variable in upper case, dots as underscores), the
	// secret mapped in as the templates map it, its own home and Go.
	bin := t.TempDir()
	if err := os.Symlink(slipwayBin, filepath.Join(bin, "slipway")); err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + bin + ":" + filepath.Dir(goBin) + ":/usr/bin:/bin",
		"HOME=" + t.TempDir(),
		// No state directory: nothing of the platform's is on the agent.
		"SLIPWAY_HOME=" + filepath.Join(t.TempDir(), "none"),
		"SSL_CERT_FILE=" + e.caFile(),
		"BUILD_BUILDID=900",
		"SLIPWAY_REGISTRY_PASSWORD=" + group.Secrets["slipway.registry.password"],
	}
	for _, name := range []string{"GOCACHE", "GOMODCACHE", "GOPROXY", "GOFLAGS", "GOSUMDB"} {
		if v, err := exec.Command(goBin, "env", name).Output(); err == nil && len(bytes.TrimSpace(v)) > 0 {
			env = append(env, name+"="+string(bytes.TrimSpace(v)))
		}
	}
	for name, value := range group.Variables {
		env = append(env, strings.ToUpper(strings.ReplaceAll(name, ".", "_"))+"="+value)
	}
	// kubectl, as the agent's image has it (on Azure, KubectlInstaller@0).
	kube, err := components.KubernetesFamily(components.KubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := components.Ensure(context.Background(), kube, components.Options{CacheDir: config.Default().CacheDir(), Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tools["kubectl"], filepath.Join(bin, "kubectl")); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(t.TempDir(), "hello")
	copyDir(t, "../../examples/hello", app)
	agent := func(script string) (string, error) {
		cmd := exec.Command("bash", "-ec", script)
		cmd.Dir, cmd.Env = app, env
		b, err := cmd.CombinedOutput()
		return string(b), err
	}

	// The templates' steps, as build-publish.yml and release.yml run them.
	log, err := agent(`image=$(slipway build . --image dev1/hello)
version=$(slipway chart version chart)
slipway chart push chart --repository dev1/charts --version "$version" --image "$image"
slipway wait hello --env staging --version "$version"
slipway test hello --env staging
slipway promote hello --from staging --to prod --version "$version" --wait`)
	if err != nil {
		t.Fatalf("the line's steps on an agent elsewhere: %v\n%s", err, log)
	}
	version := "0.1.0-build.900"
	if got := cluster.mustKubectl("-n", "dev1-prod", "get", "helmrelease", "hello", "-o", "jsonpath={.status.history[0].chartVersion}"); got != version {
		t.Fatalf("after the agent's run prod runs hello %q, want %s\n%s", got, version, log)
	}
	if got := cluster.mustKubectl("-n", "dev1-prod", "get", "helmrelease", "hello", "-o", "jsonpath={.metadata.annotations.slipway\\.dev/promoted-by}"); !strings.HasPrefix(got, "ci-dev1") {
		t.Errorf("the agent's promotion names %q, want the team's CI account", got)
	}

	// slipway kubectl on the agent: the team's CI account, through the
	// platform, starting in the team's staging namespace.
	if log, err := agent(`slipway kubectl get helmrelease hello -o jsonpath='{.status.history[0].chartVersion}'`); err != nil || log != version {
		t.Errorf("slipway kubectl on the agent read dev1-staging's hello as %q: %v", log, err)
	}
	// With the same variables the agent reaches nothing of dev2's, nor
	// prod's secrets.
	if log, err := agent(`slipway wait quotes --team dev2 --env staging --version 0.1.0 --timeout 20s`); err == nil || !strings.Contains(log, "forbidden") {
		t.Errorf("dev1's agent waited on dev2's quotes: %v\n%s", err, log)
	}
	for _, args := range []string{"-n dev2-staging get pods", "-n dev1-prod get secrets"} {
		if log, err := agent("slipway kubectl " + args); err == nil || !strings.Contains(log, `User "system:serviceaccount:dev1-ci:ci" cannot list`) {
			t.Errorf("slipway kubectl %s on dev1's agent: %v\n%s", args, err, log)
		}
	}
	// Through the platform's pass-through to the cluster: only a team's CI
	// account, as that team's ServiceAccount, whatever the request says.
	platformURL := group.Variables["slipway.platform.url"]
	client := e.client()
	ask := func(user, password, path string, header map[string]string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, platformURL+"/-/api/v1/kube"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, password)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return res.StatusCode, string(body)
	}
	ci := group.Secrets["slipway.registry.password"]
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	for _, tc := range []struct {
		what, user, password, path string
		header                     map[string]string
		want                       int
	}{
		{"its own pods", "ci-dev1", ci, "/api/v1/namespaces/dev1-staging/pods", nil, http.StatusOK},
		{"a wrong password", "ci-dev1", "not-the-password", "/api/v1/namespaces/dev1-staging/pods", nil, http.StatusUnauthorized},
		{"the team's person, not its CI account", "dev1", dev1Password, "/api/v1/namespaces/dev1-staging/pods", nil, http.StatusForbidden},
		{"ops's admin account", "admin", admin, "/api/v1/namespaces", nil, http.StatusForbidden},
		{"dev2's pods", "ci-dev1", ci, "/api/v1/namespaces/dev2-staging/pods", nil, http.StatusForbidden},
		{"secrets in prod", "ci-dev1", ci, "/api/v1/namespaces/dev1-prod/secrets", nil, http.StatusForbidden},
		{"kube-system's secrets as system:masters", "ci-dev1", ci, "/api/v1/namespaces/kube-system/secrets",
			map[string]string{"Impersonate-User": "system:admin", "Impersonate-Group": "system:masters"}, http.StatusForbidden},
		{"kube-system's secrets as a front proxy's user", "ci-dev1", ci, "/api/v1/namespaces/kube-system/secrets",
			map[string]string{"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"}, http.StatusForbidden},
	} {
		got, body := ask(tc.user, tc.password, tc.path, tc.header)
		if got != tc.want {
			t.Errorf("through the platform, %s (%s %s): %d, want %d\n%s", tc.what, tc.user, tc.path, got, tc.want, body)
		}
		// The API server heard the CI account's token and nothing of
		// the caller's headers: it refused the request as that account,
		// not an impersonation.
		if tc.header != nil && (strings.Contains(body, "impersonate") || !strings.Contains(body, "system:serviceaccount:dev1-ci:ci") || !strings.Contains(body, "cannot list resource")) {
			t.Errorf("through the platform, %s: the API server's answer is not about the CI account's own rights:\n%s", tc.what, body)
		}
	}
	t.Logf("an agent elsewhere shipped hello %s to prod with dev1's variable group alone", version)
}
