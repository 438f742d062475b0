package platform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/storage"
	"github.com/slipway-dev/slipway/internal/supervisor"
)

// volumesDir holds the cluster's dynamic volumes.
func volumesDir(cfg config.Config) string { return filepath.Join(cfg.Home, "volumes") }

// storageService gives the platform's own cluster its default
// StorageClass and makes a directory for each claim of it, as kind and k3s
// give theirs: databases claim volumes, a team's chart may, and a platform
// that deploys to this cluster from elsewhere keeps its jobs' Go caches on
// claims of the default class.
type storageService struct {
	cfg     config.Config
	cluster *cluster.Cluster
}

func (s *storageService) Name() string { return "volumes" }

func (s *storageService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	rest, err := cluster.RESTConfig(s.cluster.Options().AdminKubeconfig())
	if err != nil {
		return err
	}
	class, err := flux.Marshal(storage.Class())
	if err != nil {
		return err
	}
	if err := cluster.Apply(ctx, rest, class); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("the StorageClass %s: %w", storage.ClassName, err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return err
	}
	// The provisioning library logs every claim it serves: to the log
	// directory, not the terminal of `slipway up`.
	logFile, err := os.OpenFile(filepath.Join(s.cfg.LogDir(), "volumes.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	ctx = klog.NewContext(ctx, funcr.New(func(prefix, args string) {
		fmt.Fprintln(logFile, time.Now().UTC().Format(time.RFC3339), prefix, args)
	}, funcr.Options{}))
	p := &storage.Provisioner{Root: volumesDir(s.cfg), Node: s.cluster.Options().NodeName}
	ready(supervisor.Endpoint{URL: "StorageClass " + storage.ClassName + " (default): volumes under " + p.Root})
	p.Run(ctx, client)
	return nil
}
