package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipway-dev/slipway/internal/fsutil"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultKubeconfig is the first file of $KUBECONFIG, else ~/.kube/config.
func DefaultKubeconfig() string {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)[0]
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".kube", "config")
}

// MergeKubeconfig adds the cluster to the kubeconfig at target as context
// "slipway" (cluster and user "slipway" too), keeping everything else in
// the file. The current context is set only when the file had none.
func (c *Cluster) MergeKubeconfig(target string) error {
	admin, err := clientcmd.LoadFromFile(c.opts.AdminKubeconfig())
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	if _, err := os.Stat(target); err == nil {
		if cfg, err = clientcmd.LoadFromFile(target); err != nil {
			return fmt.Errorf("reading %s: %w (fix it, or write elsewhere with --kubeconfig)", target, err)
		}
	}
	cfg.Clusters["slipway"] = admin.Clusters["slipway"]
	cfg.AuthInfos["slipway"] = admin.AuthInfos["admin"]
	cfg.Contexts["slipway"] = &clientcmdapi.Context{Cluster: "slipway", AuthInfo: "slipway"}
	if cfg.CurrentContext == "" {
		cfg.CurrentContext = "slipway"
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	// Written whole or not at all: the file holds the user's other
	// clusters' credentials too.
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(target); err == nil {
		mode = st.Mode().Perm()
	}
	return fsutil.WriteFileAtomic(target, data, mode)
}
