package cli

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// On an agent elsewhere kubectl gets a kubeconfig of the platform's
// pass-through as the team's CI account: it must load as that account,
// start in the team's staging namespace, be readable by this user alone
// (it holds the password), and be gone after.
func TestTheTeamKubeconfigIsTheCIAccountsAndPrivate(t *testing.T) {
	rc := &rest.Config{Host: "https://10.244.0.1:3000/-/api/v1/kube", Username: "ci-dev1", Password: "s3cret"}
	rc.TLSClientConfig.CAFile = filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(rc.CAFile, []byte("the platform's CA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path, cleanup, err := writeTeamKubeconfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup) // on a failure before the cleanup tried below
	loaded, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Host != rc.Host || loaded.Username != "ci-dev1" || loaded.Password != "s3cret" || loaded.CAFile != rc.CAFile || loaded.BearerToken != "" {
		t.Errorf("loaded %s as %q with CA %q", loaded.Host, loaded.Username, loaded.CAFile)
	}
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ns := raw.Contexts[raw.CurrentContext].Namespace; ns != "dev1-staging" {
		t.Errorf("the kubeconfig starts in %q", ns)
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v: others may read the password", p, fi.Mode().Perm())
		}
	}
	cleanup()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after cleanup: %v", err)
	}
}
