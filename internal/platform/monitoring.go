package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/monitoring"
	"github.com/slipway-dev/slipway/internal/supervisor"
	"github.com/slipway-dev/slipway/internal/trust"
)

// prometheusUser is the platform account Prometheus reads /metrics with.
const prometheusUser = "prometheus"

// AlertsWebhookPath is where Alertmanager sends alerts to the platform.
const AlertsWebhookPath = APIPath + "alerts/webhook"

// monitoringDir holds Prometheus's and Alertmanager's configuration,
// data and the platform's copy of the fleet's rules.
func monitoringDir(cfg config.Config) string { return filepath.Join(cfg.Home, "monitoring") }

// alertsTokenFile is the bearer token Alertmanager calls the platform with.
func alertsTokenFile(cfg config.Config) string {
	return filepath.Join(monitoringDir(cfg), "secrets", "alerts-token")
}

// monitoringService syncs the fleet's alert rules into Prometheus: once
// at start, then after every push to the fleet. Prometheus and
// Alertmanager themselves are supervised processes beside it.
type monitoringService struct {
	cfg        config.Config
	prometheus string // host:port
	// adminKubeconfig applies the cluster role Prometheus reads with.
	adminKubeconfig string
	// rbac is that cluster role and its binding to the embedded
	// cluster's Prometheus user, applied by Run once the cluster answers;
	// empty on an existing cluster, where preparing applied Prometheus'
	// account and role to ask for its token.
	rbac string
	// token, on an existing cluster, is Prometheus' account's token,
	// valid for tokenValid when the service starts; Run renews it.
	token      *prometheusToken
	tokenValid time.Duration
	timeline   *events.Log
	// fleetPushed hears of pushes to the fleet repository.
	fleetPushed chan struct{}
	// fleetInstalled, when set, is closed once Flux's start has brought
	// the fleet up to date: the first sync waits for it, or it would read
	// a fleet that may not exist yet.
	fleetInstalled <-chan struct{}
}

func (s *monitoringService) Name() string { return "alert-rules" }

// FleetPushed tells the service the fleet changed; it never blocks.
func (s *monitoringService) FleetPushed() {
	select {
	case s.fleetPushed <- struct{}{}:
	default: // a sync is due already
	}
}

// StartsAlongside: Prometheus, Alertmanager and Flux start while it
// applies Prometheus's cluster role (Prometheus's discovery retries until
// it is allowed).
func (s *monitoringService) StartsAlongside() bool { return true }

// Run syncs the rules once Prometheus is ready and Flux's start has
// seeded the default rules in the fleet, then after each push to it.
func (s *monitoringService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	rc, err := cluster.RESTConfig(s.adminKubeconfig)
	if err != nil {
		return err
	}
	if s.rbac != "" {
		if err := cluster.Apply(ctx, rc, []byte(s.rbac)); err != nil {
			return fmt.Errorf("letting Prometheus read the cluster: %w", err)
		}
	}
	if s.token != nil {
		go s.token.keep(ctx, s.tokenValid, func(msg string) { s.say("error", "PrometheusTokenNotRenewed", msg) })
	}
	ready(supervisor.Endpoint{URL: "http://" + s.prometheus + "/api/v1/rules"})
	for {
		err := supervisor.CheckHTTP(ctx, http.DefaultClient, "http://"+s.prometheus+"/-/ready")
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	if s.fleetInstalled != nil {
		select {
		case <-ctx.Done():
			return nil
		case <-s.fleetInstalled:
		}
	}
	// A fleet on a git host of its own tells the platform of no push:
	// its head is asked for instead, and a new one synced.
	var poll <-chan time.Time
	var lastHead string
	if s.cfg.ExternalFleet() != nil {
		ticker := time.NewTicker(externalFleetPoll)
		defer ticker.Stop()
		poll = ticker.C
		lastHead = s.fleetHead(ctx) // before the first sync: a change after it is synced again
	}
	if err := s.sync(ctx); err != nil && ctx.Err() == nil {
		s.say("error", "RulesRefused", err.Error())
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.fleetPushed:
		case <-poll:
			head := s.fleetHead(ctx)
			if head == "" || head == lastHead {
				continue
			}
			lastHead = head
		}
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			s.say("error", "RulesRefused", err.Error())
		}
	}
}

// externalFleetPoll is how often the head of a fleet on a git host of its
// own is asked for: one ls-remote, so that ops' rule changes there reach
// Prometheus within seconds, as a push to the platform's fleet does.
const externalFleetPoll = 10 * time.Second

// fleetHead is the fleet's head commit, or "" when it cannot be read (the
// next poll tries again).
func (s *monitoringService) fleetHead(ctx context.Context) string {
	remote, err := fleetRemote(s.cfg)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, externalFleetPoll)
	defer cancel()
	head, _ := remote.Head(ctx)
	return head
}

func (s *monitoringService) say(severity, reason, msg string) {
	if s.timeline != nil {
		_ = s.timeline.Append(events.Event{Source: events.SourceAlert, Kind: "Rules", Name: monitoring.RulesDir, Severity: severity, Reason: reason, Message: msg})
	}
}

// sync copies the fleet's rule files to Prometheus's rule directory and
// reloads it. Prometheus checks them: when it refuses them, the rules it
// had are put back (and loaded again), so a broken commit loses nothing.
func (s *monitoringService) sync(ctx context.Context) error {
	remote, err := fleetRemote(s.cfg)
	if err != nil {
		return err
	}
	var files map[string][]byte
	if err := remote.Read(ctx, func(dir string) error {
		files, err = monitoring.RuleFiles(dir)
		return err
	}); err != nil {
		return fmt.Errorf("reading the fleet's alert rules: %w", err)
	}
	head, _ := remote.Head(ctx)
	dir := filepath.Join(monitoringDir(s.cfg), "rules")
	before, err := monitoring.ReadRuleDir(dir)
	if err != nil {
		return err
	}
	changed, err := monitoring.WriteRules(dir, files)
	if err != nil || !changed {
		return err
	}
	if err := reloadPrometheus(ctx, s.prometheus); err != nil {
		// Prometheus answers a reload with its configuration file's name;
		// the rule's own error is in its log.
		if why := ruleLoadError(filepath.Join(s.cfg.LogDir(), "monitoring", "prometheus.log"), dir); why != "" {
			err = errors.New(why)
		}
		if _, rerr := monitoring.WriteRules(dir, before); rerr != nil {
			return errors.Join(err, rerr)
		}
		_ = reloadPrometheus(ctx, s.prometheus)
		return fmt.Errorf("Prometheus refused the alert rules of fleet commit %.12s, and keeps the ones it had: %w", head, err)
	}
	s.say("info", "RulesLoaded", fmt.Sprintf("Prometheus loaded the alert rules of fleet commit %.12s (%d files)", head, len(files)))
	return nil
}

// reloadPrometheus asks Prometheus to read its configuration and rules
// again; it answers with the reason when it cannot.
func reloadPrometheus(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/-/reload", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return errors.New(strings.TrimSpace(string(body)))
	}
	return nil
}

// monitoringPrograms are the built Prometheus and Alertmanager, by
// program name.
type monitoringPrograms struct {
	prometheus, alertmanager map[string]string
}

// buildMonitoringPrograms builds Prometheus and Alertmanager (or finds
// them in the cache); it needs nothing of the cluster, so a start runs it
// beside the node's build.
func buildMonitoringPrograms(ctx context.Context, cfg config.Config, progress io.Writer) (monitoringPrograms, error) {
	copts := components.Options{CacheDir: cfg.CacheDir(), Progress: progress}
	prom, err := components.Ensure(ctx, components.Prometheus, copts)
	if err != nil {
		return monitoringPrograms{}, err
	}
	am, err := components.Ensure(ctx, components.Alertmanager, copts)
	return monitoringPrograms{prometheus: prom, alertmanager: am}, err
}

// prepareMonitoring writes the configuration of the built Prometheus and
// Alertmanager, and returns the services that run them and keep their
// rules.
func prepareMonitoring(ctx context.Context, cfg config.Config, users *auth.Store, cl *cluster.Cluster, gitAddr string, timeline *events.Log, programs monitoringPrograms) (*monitoringService, []supervisor.Service, error) {
	prom, am := programs.prometheus, programs.alertmanager
	dir := monitoringDir(cfg)
	for _, d := range []string{"prometheus", "alertmanager", "rules", "secrets"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, nil, err
		}
	}
	password, err := accountPassword(users, prometheusUser, filepath.Join(cfg.ClusterDir(), "prometheus-password"), nil)
	if err != nil {
		return nil, nil, err
	}
	passwordFile := filepath.Join(dir, "secrets", "scrape-password")
	if err := fsutil.WriteFileAtomic(passwordFile, []byte(password), 0o600); err != nil {
		return nil, nil, err
	}
	token, err := notifyKey(cfg, "alerts", "")
	if err != nil {
		return nil, nil, err
	}
	if err := fsutil.WriteFileAtomic(alertsTokenFile(cfg), []byte(token), 0o600); err != nil {
		return nil, nil, err
	}
	ca := trust.Files{Dir: cfg.TLSDir()}.CA()
	svc := &monitoringService{cfg: cfg, adminKubeconfig: ClusterOptions(cfg).AdminKubeconfig(), rbac: cluster.MonitoringRBAC,
		timeline: timeline, fleetPushed: make(chan struct{}, 1)}
	var access monitoring.ClusterAccess
	if cl != nil {
		a := cl.PrometheusAccess()
		access = monitoring.ClusterAccess{Kubeconfig: a.Kubeconfig, CA: a.CA, Cert: a.Cert, Key: a.Key}
	} else {
		var token prometheusToken
		if access, token, err = existingClusterAccess(ctx, cfg); err != nil {
			return nil, nil, err
		}
		if svc.tokenValid, err = token.renew(ctx); err != nil {
			return nil, nil, err
		}
		svc.token, svc.rbac = &token, "" // existingClusterAccess applied it
	}
	promAddr, amAddr := cfg.Monitoring.PrometheusAddr, cfg.Monitoring.AlertmanagerAddr
	promConfig := monitoring.PrometheusConfig(monitoring.PrometheusOptions{
		Self: promAddr, Alertmanager: amAddr,
		Platform: gitAddr, PlatformCA: ca, PlatformUser: prometheusUser, PlatformPasswordFile: passwordFile,
		Cluster: &access,
		// Every 30 s: enough for alerts counted in minutes, and light on
		// a two-core machine that also builds and runs the line.
		RulesDir: filepath.Join(dir, "rules"), ScrapeInterval: 30 * time.Second, Retention: 48 * time.Hour,
		AppScrapeInterval: 10 * time.Second, EvaluationInterval: 10 * time.Second,
	})
	amConfig := monitoring.AlertmanagerConfig(monitoring.AlertmanagerOptions{
		WebhookURL: "https://" + gitAddr + AlertsWebhookPath, CA: ca, TokenFile: alertsTokenFile(cfg), GroupWait: 5 * time.Second,
	})
	for name, data := range map[string][]byte{"prometheus.yml": promConfig, "alertmanager.yml": amConfig} {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, nil, err
		}
	}
	logs := filepath.Join(cfg.LogDir(), "monitoring")
	ready := func(addr string) func(context.Context) error {
		return func(ctx context.Context) error {
			return supervisor.CheckHTTP(ctx, http.DefaultClient, "http://"+addr+"/-/ready")
		}
	}
	svc.prometheus = promAddr
	return svc, []supervisor.Service{
		svc,
		&supervisor.Process{
			ServiceName: "alertmanager", Path: am["alertmanager"],
			Args: []string{
				"--config.file=" + filepath.Join(dir, "alertmanager.yml"),
				"--storage.path=" + filepath.Join(dir, "alertmanager"),
				"--web.listen-address=" + amAddr,
				"--cluster.listen-address=", // one instance: no gossip port
			},
			LogFile: filepath.Join(logs, "alertmanager.log"), Ready: ready(amAddr), Alongside: true,
			Endpoint: supervisor.Endpoint{URL: "http://" + amAddr, Health: "http://" + amAddr + "/-/healthy"},
		},
		&supervisor.Process{
			ServiceName: "prometheus", Path: prom["prometheus"],
			Args: []string{
				"--config.file=" + filepath.Join(dir, "prometheus.yml"),
				"--storage.tsdb.path=" + filepath.Join(dir, "prometheus"),
				"--web.listen-address=" + promAddr,
				"--web.enable-lifecycle",
			},
			// Its heap is mostly the head's series, which churn with
			// every pod; collecting at a quarter's growth rather than
			// Prometheus' own 75% keeps less garbage resident between
			// scrapes (idle after the demo: 120 MiB against 133 at
			// GOGC=50, side by side).
			Env:     []string{"GOGC=25"},
			LogFile: filepath.Join(logs, "prometheus.log"), Ready: ready(promAddr), Alongside: true,
			Endpoint: supervisor.Endpoint{URL: "http://" + promAddr, Health: "http://" + promAddr + "/-/healthy",
				Notes: []string{"slipway alerts; slipway silence; Prometheus's API at http://" + promAddr + "/api/v1/"}},
		},
	}, nil
}

// defaultRulesEdit puts the default alert rules into a fleet that has none.
func defaultRulesEdit() gitrepo.Edit {
	return gitrepo.Edit{Message: "monitoring: the line's default alert rules", Apply: func(dir string) error {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(monitoring.RulesDir))); err == nil {
			return nil // ops keeps its own
		}
		path := filepath.Join(dir, filepath.FromSlash(monitoring.DefaultRulesFile))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(path, monitoring.DefaultRules(), 0o644)
	}}
}

// certificateFiles are the certificates whose expiry the platform
// exports: its own CA and serving certificate, and the cluster's CA, API
// server and kubelet serving certificates.
func certificateFiles(cfg config.Config, c *cluster.Cluster) map[string]string {
	files := trust.Files{Dir: cfg.TLSDir()}
	out := map[string]string{"platform-ca": files.CA(), "platform-serving": files.Cert()}
	for name, path := range c.CertificateFiles() {
		out["cluster-"+name] = path
	}
	return out
}

// ruleLoadError is the reason Prometheus last gave, in its log, for not
// loading a rule file, with the file named as the fleet names it.
func ruleLoadError(logFile, rulesDir string) string {
	f, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		_, _ = f.Seek(fi.Size()-tail, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		if !strings.Contains(line, `msg="loading groups failed"`) {
			continue
		}
		_, quoted, ok := strings.Cut(line, " err=")
		if !ok {
			return ""
		}
		why, err := strconv.Unquote(quoted)
		if err != nil {
			why = quoted
		}
		return strings.ReplaceAll(why, rulesDir+"/", monitoring.RulesDir+"/")
	}
	return ""
}
