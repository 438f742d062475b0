package platform

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/dashboard"
	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/gitserver"
	"github.com/slipway-dev/slipway/internal/goproxy"
	"github.com/slipway-dev/slipway/internal/lineview"
	"github.com/slipway-dev/slipway/internal/metrics"
	"github.com/slipway-dev/slipway/internal/opsview"
	"github.com/slipway-dev/slipway/internal/release"
	"github.com/slipway-dev/slipway/internal/supervisor"
	"github.com/slipway-dev/slipway/internal/syncio"
)

// Up runs the platform until ctx ends or a service fails. onReady is called
// once every service is ready, with what `slipway status` will show.
func Up(ctx context.Context, cfg config.Config, progress io.Writer, onReady func(State)) error {
	if progress == nil {
		progress = io.Discard
	}
	// Preparations run at once (prepare.go) and share it.
	progress = &syncio.Writer{W: progress}
	if err := os.MkdirAll(cfg.Home, 0o755); err != nil {
		return fmt.Errorf("creating home directory: %w", err)
	}
	lock, err := AcquireLock(cfg.RunDir())
	if err != nil {
		return err
	}
	defer lock.Release()
	// Say who we are at once, so `down` can stop a start that hangs or
	// takes long (the first build of the cluster's programs).
	startedAt := time.Now().UTC()
	if err := lock.Publish(State{PID: os.Getpid(), StartedAt: startedAt}); err != nil {
		return err
	}

	// TLS first: it makes this process trust the platform's CA before
	// anything in it opens a TLS connection (Go reads the trust store once).
	tlsFiles, err := ensureTLS(cfg)
	if err != nil {
		return err
	}
	users := auth.Open(cfg.UsersFile())
	if created, err := EnsureAdmin(cfg, users); err != nil {
		return err
	} else if created {
		fmt.Fprintf(progress, "created user admin; its password is in %s\n", cfg.AdminPasswordFile())
	}

	m := metrics.New()
	var fluxObjects []prometheus.Collector
	registry := &RegistryService{Config: cfg, Users: users, TLS: tlsFiles, Instrument: m.InstrumentRegistry}
	pipelines := NewPipelineService(cfg, users)
	timeline := events.Open(TimelinePath(cfg), 0)
	pipelines.Ended = func(run *runner.Run) {
		m.RunEnded(run.Pipeline, run.Ref, run.Status, run.FinishedAt.Sub(run.StartedAt))
		_ = timeline.Append(runEvent(run))
	}
	var monitor *monitoringService
	onPush := func(ev gitserver.Event) {
		m.Pushed(ev.Repo)
		_ = timeline.Append(pushEvent(ev))
		if ev.Repo == FleetRepo && monitor != nil {
			monitor.FleetPushed() // the alert rules may have changed
		}
		pipelines.OnPush(ev)
	}
	api := &API{Config: cfg, Users: users}
	// Sessions of the dashboard last while this platform runs.
	sessionKey := make([]byte, 32)
	if _, err := rand.Read(sessionKey); err != nil {
		return err
	}
	// The dashboard's pages read the releases where Flux runs, through
	// one set of clients.
	var clients func() (*release.Clients, error)
	if cfg.FluxEnabled() {
		clients = LazyClients(ClusterOptions(cfg).AdminKubeconfig())
	}
	lineSources, opsSources := LineSources(cfg, clients), OpsSources(cfg, clients)
	ui := &dashboard.Server{Users: users, Timeline: timeline, TeamOf: ownTeam, Secret: sessionKey,
		Line: func(ctx context.Context) ([]lineview.App, error) { return lineview.Gather(ctx, lineSources, nil) },
		Ops:  func(ctx context.Context) *opsview.View { return opsview.Read(ctx, opsSources) },
		Runs: PipelineStore(cfg), Rerun: pipelines.Rerun}
	if clients != nil {
		ui.Release = func(ctx context.Context, team, app string) ([]release.Detail, error) {
			c, err := clients()
			if err != nil {
				return nil, err
			}
			return release.Describe(ctx, c, team, app)
		}
	}
	git := &GitService{Config: cfg, Users: users, OnPush: onPush, API: api, TLS: tlsFiles, Dashboard: ui.Handler(),
		FluxEvents: &FluxEvents{Config: cfg, Timeline: timeline}, Alerts: &AlertsWebhook{Config: cfg, Timeline: timeline}}
	pipelines.GitURL = git.URL
	services := []supervisor.Service{registry, git, pipelines}
	// cl is the cluster this process runs; nil without one, or on an
	// existing cluster (cluster.existing). Either way the admin kubeconfig
	// is at kubeconfig, and the cluster reaches the git server at gitNode.
	var cl *cluster.Cluster
	kubeconfig := ClusterOptions(cfg).AdminKubeconfig()
	var gitNode string
	deploys := cfg.ClusterEnabled() || cfg.ClusterExisting()
	if deploys {
		prepStart := time.Now()
		// The host's packages first: the CI image needs mmdebstrap, and
		// NewCluster relies on this check.
		if cfg.ClusterEnabled() {
			if err := checkClusterHost(cfg, progress); err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
		} else {
			if err := checkExistingClusterHost(cfg, progress); err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
			// Nothing is built for, or written to, an existing cluster
			// before it has passed its check.
			if err := openExistingCluster(ctx, cfg, progress); err != nil {
				return err
			}
		}
		// Flux's controllers, the CI image and the monitoring programs
		// build while the node's programs do (see prepare.go).
		prep := startPreparing(ctx)
		defer prep.stop()
		type fluxPrepared struct {
			svc    *fluxService
			images []imageToPush
		}
		var fluxReady *pending[fluxPrepared]
		if cfg.FluxEnabled() {
			fluxReady = prepare(prep, func(ctx context.Context) (fluxPrepared, error) {
				svc, images, err := prepareFlux(ctx, cfg, progress)
				return fluxPrepared{svc, images}, err
			})
		}
		var ciReady *pending[*jobImages]
		if cfg.JobsInPods() {
			ciReady = prepare(prep, func(ctx context.Context) (*jobImages, error) { return prepareCIImage(ctx, cfg, progress) })
		}
		var databasesReady *pending[*databasesPrepared]
		if cfg.DatabasesEnabled() {
			databasesReady = prepare(prep, func(ctx context.Context) (*databasesPrepared, error) { return prepareDatabases(ctx, cfg, progress) })
		}
		var monitoringReady *pending[monitoringPrograms]
		if cfg.MonitoringEnabled() {
			// Only the programs: the rest of the monitoring's preparation
			// needs the cluster's.
			monitoringReady = prepare(prep, func(ctx context.Context) (monitoringPrograms, error) {
				return buildMonitoringPrograms(ctx, cfg, progress)
			})
		}
		var images []imageToPush
		if cfg.ClusterEnabled() {
			c, own, err := NewCluster(ctx, cfg, users, progress)
			if err != nil {
				if ctx.Err() != nil {
					return nil // interrupted while preparing: nothing runs yet
				}
				return fmt.Errorf("cluster: %w", err)
			}
			cl, images = c, own
			api.Node = c
		} else if images, err = existingClusterImages(ctx, cfg); err != nil {
			return err
		}
		keychain, err := adminKeychain(cfg)
		if err != nil {
			return err
		}
		// The registry and the git server answer where the cluster
		// reaches them too (for the node this process runs, once its
		// network is up: that service comes first).
		if addr := alsoServe(cfg, cfg.Registry.Addr); addr != "" {
			registry.AlsoAddrs = []string{addr}
		}
		if addr := alsoServe(cfg, cfg.Git.Addr); addr != "" {
			git.AlsoAddrs = []string{addr}
		}
		_, gitPort, _ := net.SplitHostPort(cfg.Git.Addr)
		if gitPort != "0" {
			gitNode = tlsFiles.nodeScheme() + "://" + nodeAddr(cfg, gitPort)
		}
		var fluxSvc *fluxService
		if cfg.FluxEnabled() {
			fluxObjects = append(fluxObjects, &flux.ResourceCollector{Connect: func() (dynamic.Interface, error) {
				rc, err := cluster.RESTConfig(kubeconfig)
				if err != nil {
					return nil, err
				}
				return dynamic.NewForConfig(rc)
			}})
			prepared, err := fluxReady.wait()
			svc, fluxImages := prepared.svc, prepared.images
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("flux: %w", err)
			}
			svc.users, svc.node, svc.timeline = users, cl, timeline
			registry.OnPush = svc.heardPush
			fluxSvc, images = svc, append(images, fluxImages...)
		}
		var volumes *storageService
		if cl != nil {
			volumes = &storageService{cfg: cfg, cluster: cl}
		}
		if cfg.DatabasesEnabled() {
			dbs, err := databasesReady.wait()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("databases: %w", err)
			}
			images = append(images, dbs.images...)
			fluxSvc.databases = &dbs.operator
		}
		imagesSvc := &imagesService{keychain: keychain, transport: tlsFiles.httpClient().Transport}
		if cfg.JobsInPods() {
			ci, err := ciReady.wait()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("pipeline jobs: %w", err)
			}
			images = append(images, imageToPush{ci.img, imageRegistry(cfg) + "/" + build.CIImageRepository, "latest"})
			imagesSvc.pushed = ci.markPushed
			if git.GoProxy, err = goproxy.Default(); err != nil {
				return fmt.Errorf("pipeline jobs: %w", err)
			}
			ca, err := os.ReadFile(tlsFiles.files.CA())
			if err != nil {
				return err
			}
			// The jobs push to the line's registry of its own, when there
			// is one: they trust its CA too.
			if r := cfg.LineRegistry(); r != nil {
				lineCA, err := r.CA()
				if err != nil {
					return err
				}
				ca = append(append(ca, '\n'), lineCA...)
			}
			if pipelines.Pods, err = newJobPods(ctx, cfg, users, ci, ca, progress); err != nil {
				return fmt.Errorf("pipeline jobs: %w", err)
			}
			pipelines.GitNodeURL = gitNode
		}
		imagesSvc.images = images
		services = []supervisor.Service{registry, git, pipelines, imagesSvc}
		if cl != nil {
			services = append(append([]supervisor.Service{cl.NetworkService()}, services...), cl.Services()...)
		}
		if volumes != nil {
			services = append(services, volumes)
		}
		// Kubernetes's pods and the certificates, under the names alert
		// rules expect.
		fluxObjects = append(fluxObjects, &metrics.Pods{Connect: func() (kubernetes.Interface, error) {
			rc, err := cluster.RESTConfig(kubeconfig)
			if err != nil {
				return nil, err
			}
			return kubernetes.NewForConfig(rc)
		}})
		if cl != nil {
			fluxObjects = append(fluxObjects, &metrics.Certificates{Files: certificateFiles(cfg, cl)})
		}
		if cfg.MonitoringEnabled() && gitPort != "0" {
			programs, err := monitoringReady.wait()
			var svc *monitoringService
			var monServices []supervisor.Service
			if err == nil {
				svc, monServices, err = prepareMonitoring(ctx, cfg, users, cl, nodeAddr(cfg, gitPort), timeline, programs)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("monitoring: %w", err)
			}
			if fluxSvc != nil {
				fluxSvc.installed = make(chan struct{})
				svc.fleetInstalled = fluxSvc.installed
			}
			monitor = svc
			services = append(services, monServices...)
		}
		// Flux last: its start is the longest (its controllers' pods),
		// and everything before it that starts alongside overlaps it.
		if fluxSvc != nil {
			services = append(services, fluxSvc)
		}
		fmt.Fprintf(progress, "prepared the cluster's programs, images and configuration in %s\n", time.Since(prepStart).Round(time.Millisecond))
	}
	git.Metrics = m.Handler(fluxObjects...)
	sup := &supervisor.Supervisor{Progress: progress}
	var publishErr error
	err = sup.Run(ctx, services, func(endpoints []supervisor.Endpoint) {
		st := State{PID: os.Getpid(), Ready: true, StartedAt: startedAt, Endpoints: endpoints,
			Addresses: Addresses{Registry: registry.Addr(), RegistryURL: registry.URL(), Git: git.URL(), CA: tlsFiles.files.CA()},
			Existing:  cfg.Cluster.Existing}
		if deploys {
			st.Addresses.RegistryNode, st.Addresses.GitNode, st.Addresses.AdminKubeconfig = RegistryNodeAddr(cfg), gitNode, kubeconfig
		}
		if cl != nil {
			target := cfg.Cluster.Kubeconfig
			if target == "" {
				target = cluster.DefaultKubeconfig()
			}
			if err := cl.MergeKubeconfig(target); err != nil {
				fmt.Fprintf(progress, "warning: %v\n", err)
			} else {
				st.Kubeconfig = target
			}
		}
		if publishErr = lock.Publish(st); publishErr != nil {
			fmt.Fprintf(progress, "warning: %v (status and down will not find this run)\n", publishErr)
		}
		if onReady != nil {
			onReady(st)
		}
		settleHeap()
	})
	return err
}

// settleHeap readies this process for its long idle life once the start
// is done. The start allocates in bursts (images, manifests, clones of the
// fleet); the heap it leaves behind is returned to the kernel now rather
// than as the scavenger gets to it, and from now on the heap may grow by
// half before a collection rather than double (the cluster's programs,
// whose memory is more of it heap, collect at a quarter: see cluster's
// heapQuarterGrowth). A GOGC the user set is left alone.
func settleHeap() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	debug.FreeOSMemory()
}

// EnsureAdmin creates the user "admin" with a random password, kept in the
// home directory, when no admin user exists yet.
func EnsureAdmin(cfg config.Config, users *auth.Store) (bool, error) {
	list, err := users.List()
	if err != nil {
		return false, err
	}
	for _, u := range list {
		if u.Admin {
			return false, nil
		}
	}
	password := auth.RandomPassword()
	if err := fsutil.WriteFileAtomic(cfg.AdminPasswordFile(), []byte(password+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("saving the admin password: %w", err)
	}
	if err := users.Set("admin", password, true, nil); err != nil {
		return false, err
	}
	return true, nil
}
