package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/database"
	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/gitserver"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/supervisor"
	"github.com/slipway-dev/slipway/internal/trust"
)

// FleetRepo is the fleet repository's name on the git server. Only ops
// (admin) may push to it; Flux reads it with its own account.
const FleetRepo = "ops/fleet"

// fluxReadUser is the account source-controller reads the fleet
// repository and the teams' charts with: it may read, never write.
const fluxReadUser = "flux-reader"

// fluxPasswordFile keeps its password, in the cluster directory.
const fluxPasswordFile = "flux-password"

// fleetRemote is the fleet repository as `slipway up` itself reaches it,
// with the admin's credentials. Other commands use Platform.FleetRemote.
func fleetRemote(cfg config.Config) (gitrepo.Remote, error) {
	if f := cfg.ExternalFleet(); f != nil {
		return externalFleetRemote(*f)
	}
	password, err := AdminPassword(cfg)
	if err != nil {
		return gitrepo.Remote{}, err
	}
	return gitrepo.Remote{URL: loopbackScheme(cfg) + "://" + cfg.Git.Addr + "/" + FleetRepo + ".git", Username: "admin", Password: password}, nil
}

// fleetSyncName names the fleet's sync objects in flux-system (see
// Platform.FleetSync).
func fleetSyncName(cfg config.Config) string { return flux.SyncNameFor(cfg.AdoptsFlux()) }

// externalFleetRemote is the fleet repository on a git host of its own
// (cluster.existing.fleet), with the account configured for it.
func externalFleetRemote(f config.ExternalFleet) (gitrepo.Remote, error) {
	password, err := f.Password()
	if err != nil {
		return gitrepo.Remote{}, err
	}
	return gitrepo.Remote{URL: f.URL, Username: f.Username, Password: password, CAFile: f.CAFile}, nil
}

// gitNodeURL is the git server's base URL as the cluster reaches it.
func gitNodeURL(cfg config.Config) string {
	_, gitPort, _ := net.SplitHostPort(cfg.Git.Addr)
	return "https://" + nodeAddr(cfg, gitPort)
}

// fleetNodeURL is the fleet repository's URL as the cluster's
// source-controller reads it: the fleet sync's GitRepository holds it.
func fleetNodeURL(cfg config.Config) string {
	if f := cfg.ExternalFleet(); f != nil {
		return f.URL
	}
	return gitNodeURL(cfg) + "/" + FleetRepo + ".git"
}

// prepareFlux builds Flux's controllers and images (or takes them from the
// cache) before anything starts.
func prepareFlux(ctx context.Context, cfg config.Config, progress io.Writer) (*fluxService, []imageToPush, error) {
	if _, port, _ := net.SplitHostPort(cfg.Git.Addr); port == "0" {
		return nil, nil, errors.New("Flux reads the fleet repository by a fixed address: give the git server a port (--git-addr host:port), or start without Flux (SLIPWAY_FLUX=false)")
	}
	if cfg.AdoptsFlux() {
		// The Flux there is its owner's, at its own version (checked
		// by openExistingCluster): nothing of Flux's is built or pushed.
		fmt.Fprintf(progress, "Flux's controllers: the ones on the existing cluster (cluster.existing.flux: adopt), not built here\n")
		return &fluxService{cfg: cfg, adopted: true, chartPushes: make(chan registry.Push, 64)}, nil, nil
	}
	opts := components.Options{CacheDir: cfg.CacheDir(), Progress: progress}
	var manifests []byte
	var push []imageToPush
	if prefix := cfg.Cluster.FluxImages; prefix != "" {
		// Flux's own images, which the cluster pulls from where the
		// setting says: only the CRDs come from the pinned modules.
		crds, err := flux.CRDs(ctx, opts)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(progress, "Flux's controllers: the images under %s (cluster.fluxImages), not built here\n", prefix)
		if manifests, err = flux.Components(crds, flux.UpstreamImages(prefix)); err != nil {
			return nil, nil, err
		}
	} else {
		programs, err := flux.Build(ctx, opts)
		if err != nil {
			return nil, nil, err
		}
		image, err := flux.ControllersImage(ctx, programs, cfg.CacheDir(), imageRegistry(cfg), v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
		if err != nil {
			return nil, nil, err
		}
		push = []imageToPush{{image.Image, image.Repository, image.Tag()}}
		if manifests, err = flux.Components(programs.CRDFiles, image.ForControllers); err != nil {
			return nil, nil, err
		}
	}
	return &fluxService{cfg: cfg, components: manifests, chartPushes: make(chan registry.Push, 64)}, push, nil
}

// fluxService installs Flux, bootstraps the fleet repository, and is
// ready when every controller runs and Flux has applied the fleet
// repository's latest commit.
type fluxService struct {
	cfg   config.Config
	users *auth.Store
	// node is the cluster this process runs, whose Services and DNS this
	// host reaches; nil on an existing cluster (cluster.existing), whose
	// Services are out of reach. Either way the admin kubeconfig is at
	// ClusterOptions' path.
	node *cluster.Cluster
	// components is the rendered install (gotk-components.yaml); none
	// when adopted.
	components []byte
	// adopted says the cluster's Flux is its owner's (cluster.existing.flux:
	// adopt): the platform adds its fleet's sync and installs nothing.
	adopted bool
	// chartPushes are the registry's pushes, for Flux to look at the
	// charts they concern at once (see heardPush).
	chartPushes chan registry.Push
	// timeline hears of chart pushes.
	timeline *events.Log
	// databases, when set, is CloudNativePG's operator, which the fleet
	// then holds.
	databases *database.Operator
	// installed, when set, is closed once the fleet repository holds what
	// this start put there (the default alert rules among it).
	installed chan struct{}
}

func (s *fluxService) Name() string { return "flux" }

// fluxStartTimeout bounds the wait for Flux; past it, the reason is
// reported from the controllers' pods.
const fluxStartTimeout = 5 * time.Minute

func (s *fluxService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	start := time.Now()
	head, err := s.install(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if s.installed != nil {
		close(s.installed)
	}
	if err := s.waitReady(ctx, head); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	remote, _ := fleetRemote(s.cfg)
	which := "Flux " + flux.Version
	if s.adopted {
		which = "the cluster's own Flux (adopted)"
	}
	ready(supervisor.Endpoint{URL: remote.URL, Notes: []string{
		fmt.Sprintf("%s: source, kustomize, helm and notification controllers, fleet at %.12s (%s)", which, head, time.Since(start).Round(100*time.Millisecond)),
		"see:     slipway get all -A",
	}})
	s.followChartPushes(ctx)
	s.holdFleet()
	return nil
}

// holdFleet suspends the fleet's Kustomization as the platform stops (the
// API server stops after this service), so that on the next start
// kustomize-controller, whose pod the kubelet restarts before this service
// has applied anything, waits for the platform to resume it instead of
// failing its first fetch. After a kill the next start goes without.
func (s *fluxService) holdFleet() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rest, err := cluster.RESTConfig(ClusterOptions(s.cfg).AdminKubeconfig())
	if err != nil {
		return
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return
	}
	// An error here costs the next start a few seconds, nothing else.
	_ = flux.SetSuspended(ctx, dyn, flux.Kustomization, flux.Namespace, fleetSyncName(s.cfg), true)
}

// heardPush is the registry's OnPush: a chart push goes to the flux
// service's queue. A full queue drops it; Flux then finds the version at
// the chart's interval.
func (s *fluxService) heardPush(p registry.Push) {
	// A chart pushed by digest alone is no new version (a tag is); the
	// tag's push follows.
	if p.ArtifactType != helmregistry.ConfigMediaType || strings.Contains(p.Reference, ":") {
		return
	}
	select {
	case s.chartPushes <- p:
	default:
	}
}

// followChartPushes tells Flux of every chart pushed to the registry, so
// that a new version starts to roll out while the pipeline is still
// between jobs, rather than when a `slipway wait` asks or the chart's
// interval comes. It calls the Receiver of each namespace whose HelmCharts
// read the chart, with the body ACR's webhook would send on AKS, and
// notification-controller does the rest; where the Receiver is not ready
// yet (a tenant just made) it asks for the reconcile itself. It runs until
// ctx ends, puts each push on the timeline and writes what it did to the
// log directory.
func (s *fluxService) followChartPushes(ctx context.Context) {
	dyn, logFile, err := s.chartPushClients()
	if err != nil {
		<-ctx.Done() // Flux still finds new versions at the charts' interval
		return
	}
	defer logFile.Close()
	hosts := []string{s.cfg.Registry.Addr, RegistryNodeAddr(s.cfg)}
	for {
		var p registry.Push
		select {
		case <-ctx.Done():
			return
		case p = <-s.chartPushes:
		}
		say := func(what string) {
			fmt.Fprintf(logFile, "%s %s:%s pushed by %s: %s\n", time.Now().UTC().Format(time.RFC3339), p.Repository, p.Reference, p.User, what)
		}
		if s.timeline != nil {
			team, _, _ := strings.Cut(p.Repository, "/")
			_ = s.timeline.Append(events.Event{Source: events.SourceRegistry, Team: teamOf(team), Kind: "Chart", Name: p.Repository,
				Severity: "info", Reason: "ChartPushed", Message: fmt.Sprintf("%s pushed %s:%s", p.User, p.Repository, p.Reference),
				Revision: p.Reference, By: p.User})
		}
		charts, err := flux.ChartsReading(ctx, dyn, hosts, p.Repository)
		if err != nil {
			say("finding the HelmCharts that read it: " + err.Error())
			continue
		}
		byNamespace := map[string][]flux.ChartRef{}
		for _, c := range charts {
			byNamespace[c.Namespace] = append(byNamespace[c.Namespace], c)
		}
		for ns, charts := range byNamespace {
			err := s.callReceiver(ctx, dyn, ns, p)
			if err == nil {
				say(fmt.Sprintf("Receiver %s/%s called", ns, flux.ChartReceiverName))
				continue
			}
			for _, c := range charts {
				result := "asked Flux to reconcile"
				if _, err := flux.RequestReconcile(ctx, dyn, flux.HelmChart, c.Namespace, c.Name); err != nil {
					result = err.Error()
				}
				say(fmt.Sprintf("%v; HelmChart %s/%s: %s", err, c.Namespace, c.Name, result))
			}
		}
	}
}

// receiverTimeout bounds one call of a Receiver's webhook.
const receiverTimeout = 10 * time.Second

// callReceiver posts an ACR push event to the namespace's chart Receiver.
func (s *fluxService) callReceiver(ctx context.Context, dyn dynamic.Interface, ns string, p registry.Push) error {
	if s.node == nil {
		// Asked for through the API instead (see followChartPushes).
		return errors.New("the cluster's Receiver is out of this host's reach")
	}
	ctx, cancel := context.WithTimeout(ctx, receiverTimeout)
	defer cancel()
	hook, err := flux.ReceiverHook(ctx, dyn, ns, flux.ChartReceiverName)
	if err != nil {
		return err
	}
	base, err := flux.WebhookReceiverURL(ctx, dyn)
	if err != nil {
		return err
	}
	body := flux.ACRPush(RegistryNodeAddr(s.cfg), p.Repository, p.Reference, p.Digest, "application/vnd.oci.image.manifest.v1+json", time.Now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+hook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("calling Receiver %s/%s: %w", ns, flux.ChartReceiverName, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("Receiver %s/%s answered %s", ns, flux.ChartReceiverName, res.Status)
	}
	return nil
}

// chartPushClients are the admin's client and the log followChartPushes
// uses.
func (s *fluxService) chartPushClients() (dynamic.Interface, *os.File, error) {
	rest, err := cluster.RESTConfig(ClusterOptions(s.cfg).AdminKubeconfig())
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return nil, nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(s.cfg.LogDir(), "chart-pushes.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return dyn, logFile, err
}

// install commits Flux's manifests to the fleet repository (a no-op when
// they are there already) and applies them, so Flux runs at once and then
// keeps itself as the repository says.
func (s *fluxService) install(ctx context.Context) (string, error) {
	if _, err := servicePassword(s.cfg, s.users, fluxReadUser, fluxPasswordFile); err != nil {
		return "", err
	}
	if s.cfg.ExternalFleet() == nil {
		git, err := gitserver.New(s.cfg.GitDir(), s.users)
		if err != nil {
			return "", err
		}
		if _, err := git.Ensure(FleetRepo); err != nil {
			return "", err
		}
	}
	components := s.components
	gitNode := gitNodeURL(s.cfg)
	fleet := flux.Fleet{Cluster: "slipway", URL: fleetNodeURL(s.cfg), EventsURL: FluxEventsURL(gitNode, ""), Adopted: s.adopted}
	install := "flux: install Flux " + flux.Version + " in " + fleet.SystemDir()
	if s.adopted {
		install = "flux: sync the fleet with the cluster's own Flux (adopted), in " + fleet.SystemDir()
	}
	remote, err := fleetRemote(s.cfg)
	if err != nil {
		return "", err
	}
	// One clone of the fleet for everything a start checks there; each
	// edit that changes something is its own commit.
	var teams []string
	edits := []gitrepo.Edit{
		{Message: install, Apply: func(dir string) error {
			return fleet.WriteTree(dir, components)
		}},
		// A fleet from before the registry spoke HTTPS has chart sources
		// that say insecure: true; they now verify it with the platform's CA.
		{Message: "tenants: verify the registry's certificate with the platform's CA", Apply: func(dir string) error {
			var err error
			if teams, err = flux.Tenants(dir); err != nil {
				return err
			}
			_, err = flux.TrustPlatformCA(dir)
			return err
		}},
		// A fleet from before Flux's notifications gets each tenant's
		// Alert, Provider and Receiver.
		{Message: "tenants: send Flux's events to the platform, take chart pushes by Receiver", Apply: func(dir string) error {
			_, err := flux.EnsureNotifications(dir, func(team string) string { return FluxEventsURL(gitNode, team) })
			return err
		}},
	}
	// The default alert rules go in now, before the platform says it is
	// ready: a later commit would race a user's first push to the fleet.
	if s.cfg.MonitoringEnabled() {
		edits = append(edits, defaultRulesEdit())
	}
	if s.databases != nil {
		edits = append(edits, operatorEdit(*s.databases, fleet.Dir()))
	}
	head, _, err := remote.ChangeEach(ctx, gitrepo.Platform, edits...)
	if err != nil {
		return "", fmt.Errorf("bringing the fleet repository up to date: %w", err)
	}

	rest, err := cluster.RESTConfig(ClusterOptions(s.cfg).AdminKubeconfig())
	if err != nil {
		return "", err
	}
	secret, err := fleetReaderSecret(s.cfg, fleet.SyncName())
	if err != nil {
		return "", err
	}
	eventsSecret, err := fleetEventsSecret(s.cfg)
	if err != nil {
		return "", err
	}
	manifests := string(components) + string(secret) + string(eventsSecret) + fleet.SyncHeld()
	if err := cluster.Apply(ctx, rest, []byte(manifests)); err != nil {
		return "", fmt.Errorf("installing Flux: %w", err)
	}
	// Every tenant's Secrets carry the CA of this start and its
	// notification keys (made by tenant create; a state directory from
	// before HTTPS or notifications lacks them).
	for _, team := range teams {
		for _, env := range flux.Environments {
			ns := flux.TenantNamespace(team, env)
			secrets, err := TenantFluxSecrets(s.cfg, team, ns)
			if err != nil {
				return "", err
			}
			if err := cluster.Apply(ctx, rest, secrets); err != nil && !apierrors.IsNotFound(err) {
				return "", fmt.Errorf("giving Flux its Secrets in %s: %w", ns, err)
			}
		}
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return "", err
	}
	// Fetch the fleet now rather than at the next interval.
	if _, err := flux.RequestReconcile(ctx, dyn, flux.GitRepository, flux.Namespace, fleet.SyncName()); err != nil {
		return "", err
	}
	return head, nil
}

// waitReady waits for the controllers and for the fleet's Kustomization
// to have applied head.
func (s *fluxService) waitReady(ctx context.Context, head string) error {
	client, dyn, err := adminClients(s.cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(fluxStartTimeout)
	poll := func(ready func() error) error {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			err := ready()
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("Flux did not become ready in %s: %v%s", fluxStartTimeout, err, cluster.PodTrouble(ctx, client, flux.Namespace))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}
	// install applied the fleet's Kustomization suspended; it is resumed
	// once kustomize-controller's first fetch will work.
	var atHeadSince time.Time
	err = poll(func() error {
		artifact, err := s.artifactAtHead(ctx, client, dyn, head)
		if err != nil {
			return fmt.Errorf("waiting for source-controller to serve the fleet's artifact: %w", err)
		}
		if atHeadSince.IsZero() {
			atHeadSince = time.Now()
		}
		if time.Since(atHeadSince) > releaseAfter {
			return nil
		}
		if err := s.artifactFetchable(ctx, artifact); err != nil {
			return fmt.Errorf("waiting for source-controller to serve the fleet's artifact: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// On a start that keeps the fleet's head, the status kept from the
	// previous run already says it is applied (see check): the platform
	// is ready as soon as the controllers are, without waiting on the
	// reconcile the resumption starts.
	appliedBefore := s.check(ctx, client, dyn, head) == nil
	if err := flux.SetSuspended(ctx, dyn, flux.Kustomization, flux.Namespace, fleetSyncName(s.cfg), false); err != nil {
		return err
	}
	if appliedBefore {
		return nil
	}
	return poll(func() error { return s.check(ctx, client, dyn, head) })
}

// releaseAfter bounds how long the fleet's Kustomization stays suspended
// once source-controller has the head's artifact, for a host that cannot
// reach the cluster's Services to try the fetch itself: past it, a failed
// first fetch costs kustomize-controller's retry wait, nothing more.
const releaseAfter = 15 * time.Second

// clusterHTTP talks to the cluster's Services directly: never through a
// proxy from the environment, which could not reach them.
var clusterHTTP = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// artifactAtHead returns the URL of the fleet's artifact once
// source-controller is available and its GitRepository has the head.
func (s *fluxService) artifactAtHead(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, head string) (string, error) {
	d, err := client.AppsV1().Deployments(flux.Namespace).Get(ctx, "source-controller", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if !available(d) {
		return "", errors.New("source-controller is not available yet")
	}
	repo, u, err := flux.Get(ctx, dyn, flux.GitRepository, flux.Namespace, fleetSyncName(s.cfg))
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(repo.Revision, head) {
		return "", fmt.Errorf("the GitRepository has %q, not the head yet", repo.Revision)
	}
	artifactURL, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "url")
	return artifactURL, nil
}

// artifactFetchable fetches the artifact the way kustomize-controller
// will: its host name resolved through the cluster's DNS, then the
// Service at that address.
func (s *fluxService) artifactFetchable(ctx context.Context, artifactURL string) error {
	target, err := url.Parse(artifactURL)
	if err != nil {
		return err
	}
	if s.node == nil {
		// An existing cluster's Services are out of reach: a failed
		// first fetch costs kustomize-controller a retry, nothing more.
		return nil
	}
	addrs, err := s.node.LookupHost(ctx, target.Hostname())
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%s has no address in the cluster's DNS", target.Hostname())
	}
	port := target.Port()
	if port == "" {
		port = "80"
	}
	target.Host = net.JoinHostPort(addrs[0], port)
	reqCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodHead, target.String(), nil)
	if err != nil {
		return err
	}
	resp, err := clusterHTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the artifact answered %s", resp.Status)
	}
	return nil
}

func (s *fluxService) check(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, head string) error {
	for _, c := range flux.Controllers {
		d, err := client.AppsV1().Deployments(flux.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !available(d) {
			return fmt.Errorf("%s is not available yet", c.Name)
		}
	}
	ks, _, err := flux.Get(ctx, dyn, flux.Kustomization, flux.Namespace, fleetSyncName(s.cfg))
	if err != nil {
		return err
	}
	// A status kept in etcd from the previous run counts: Ready at head
	// means the cluster holds what head says, and nothing changed it
	// while the platform was down. (Resuming changes the spec, so the
	// status is not "current"; a new head still needs a new apply.)
	if ks.Ready != "True" || !strings.HasSuffix(ks.Revision, head) {
		return fmt.Errorf("the fleet is not applied yet (ready=%s, revision %q, %s)", ks.Ready, ks.Revision, ks.Message)
	}
	return nil
}

// adminClients are the typed and dynamic clients of the cluster's admin
// kubeconfig (the platform's own cluster's, or the existing cluster's copy).
func adminClients(cfg config.Config) (kubernetes.Interface, dynamic.Interface, error) {
	rest, err := cluster.RESTConfig(ClusterOptions(cfg).AdminKubeconfig())
	if err != nil {
		return nil, nil, err
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(rest)
	return client, dyn, err
}

func available(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas < 1 {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// servicePassword makes a read-only account for one of the platform's
// own clients once, and keeps its password in the cluster directory.
func servicePassword(cfg config.Config, users *auth.Store, user, file string) (string, error) {
	return accountPassword(users, user, filepath.Join(cfg.ClusterDir(), file), nil)
}

// accountPassword makes an account once, with the given push prefixes,
// and keeps its password in a file only root reads; later calls return the
// kept password while it still authenticates.
func accountPassword(users *auth.Store, user, path string, push []string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		if _, err := users.Authenticate(user, strings.TrimSpace(string(data))); err == nil {
			return strings.TrimSpace(string(data)), nil
		}
	}
	password := auth.RandomPassword()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := fsutil.WriteFileAtomic(path, []byte(password+"\n"), 0o600); err != nil {
		return "", err
	}
	return password, users.Set(user, password, false, push)
}

// fleetReaderSecret is the Secret source-controller reads the fleet
// repository with: the platform's read-only account, or on a git host of
// its own the reader configured for it (else the account that pushes),
// with its host's CA when one is named.
func fleetReaderSecret(cfg config.Config, name string) ([]byte, error) {
	f := cfg.ExternalFleet()
	if f == nil {
		return FluxReaderSecret(cfg, name, flux.Namespace)
	}
	user, password, err := f.Reader()
	if err != nil {
		return nil, err
	}
	var ca []byte
	if f.CAFile != "" {
		if ca, err = os.ReadFile(f.CAFile); err != nil {
			return nil, fmt.Errorf("the fleet host's CA (cluster.existing.fleet.caFile): %w", err)
		}
	}
	return flux.Marshal(flux.ReaderSecret(name, flux.Namespace, user, password, ca))
}

// FluxReaderSecret is a Secret holding the read-only account Flux reads
// git and the registry with (made by slipway up). It is applied to the
// cluster directly, never committed.
func FluxReaderSecret(cfg config.Config, name, namespace string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(cfg.ClusterDir(), fluxPasswordFile))
	if err != nil {
		return nil, fmt.Errorf("reading Flux's password (is the platform set up? slipway up): %w", err)
	}
	ca, err := os.ReadFile(trust.Files{Dir: cfg.TLSDir()}.CA())
	if err != nil {
		return nil, fmt.Errorf("reading the platform's CA (is the platform set up? slipway up): %w", err)
	}
	return flux.Marshal(flux.ReaderSecret(name, namespace, fluxReadUser, strings.TrimSpace(string(data)), ca))
}
