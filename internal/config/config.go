// Package config holds Slipway's settings and the one place they are layered:
// built-in defaults, then the config file, then SLIPWAY_* environment
// variables. Command-line flags are applied last by the CLI, and Validate is
// called once on the result.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Config is everything Slipway reads from its environment.
type Config struct {
	// Home is the state directory: registry data, users, logs, caches.
	// Deleting it resets Slipway.
	Home string `json:"home,omitempty"`

	// Cache keeps what can be built again (compiled upstream programs,
	// helper binaries, compressed layers); default: slipway/ in the user's
	// cache directory (~/.cache), shared by all state directories.
	Cache string `json:"cache,omitempty"`

	Registry Registry `json:"registry"`

	Git Git `json:"git"`

	Cluster Cluster `json:"cluster"`

	Pipelines Pipelines `json:"pipelines"`

	TLS TLS `json:"tls"`

	Monitoring Monitoring `json:"monitoring"`

	Databases Databases `json:"databases"`
}

// Databases configures the teams' PostgreSQL databases: CloudNativePG's
// operator, the PostgreSQL images and the cluster's volumes.
type Databases struct {
	// Enabled installs them with Flux. Unset means off: the first start
	// with them builds the operator (minutes) and two PostgreSQL images.
	Enabled *bool `json:"enabled,omitempty"`
}

// Monitoring configures Prometheus and Alertmanager, which `up` runs with
// the cluster.
type Monitoring struct {
	// Enabled runs them. Unset means: whenever Flux runs.
	Enabled *bool `json:"enabled,omitempty"`
	// PrometheusAddr and AlertmanagerAddr are the loopback host:port
	// each serves its API on.
	PrometheusAddr   string `json:"prometheusAddr,omitempty"`
	AlertmanagerAddr string `json:"alertmanagerAddr,omitempty"`
}

// TLS configures how the registry and the git server are served. Both
// speak HTTPS with a certificate of the platform's own CA on every
// address (see `slipway ca`).
type TLS struct {
	// PlainHTTPOnLoopback serves plain HTTP on the loopback address
	// instead, for clients that cannot be given the CA. The node address,
	// which pods, containerd and Flux use, keeps HTTPS.
	PlainHTTPOnLoopback bool `json:"plainHTTPOnLoopback,omitempty"`
}

// Pipelines configures the pipeline runner.
type Pipelines struct {
	// Jobs is where jobs of pushed pipelines run: "pods" (each job in a
	// pod of its team's CI namespace, the default with the cluster and
	// Flux) or "host" (on this machine as the user running slipway up,
	// the only choice without the cluster; no isolation between teams).
	Jobs string `json:"jobs,omitempty"`
	// ParallelJobs is how many jobs of one team run at once (default 2).
	ParallelJobs int `json:"parallelJobs,omitempty"`
}

// Git configures the git server.
type Git struct {
	// Addr is the host:port the git server listens on.
	Addr string `json:"addr,omitempty"`
}

// Cluster configures the local Kubernetes cluster.
type Cluster struct {
	// Enabled starts the cluster with the platform. Unset means: when
	// running as root on Linux (the node needs root).
	Enabled *bool `json:"enabled,omitempty"`
	// Flux installs Flux in the cluster and bootstraps the fleet
	// repository. Unset means: whenever the cluster runs.
	Flux *bool `json:"flux,omitempty"`
	// Kubeconfig is where the "slipway" context is merged; empty means
	// $KUBECONFIG's first file, or ~/.kube/config.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// KubernetesVersion is the release a new cluster starts on; empty
	// means the newest pinned one. A cluster that exists keeps its own
	// version until ops upgrades it.
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// Registries are other registries the node pulls from, with their
	// credentials, as an AKS cluster pulls from its attached ACR.
	Registries []NodeRegistry `json:"registries,omitempty"`
	// FluxImages, when set, is where the cluster pulls Flux's own
	// controller images from (ghcr.io/fluxcd, or a registry that mirrors
	// it): PREFIX/source-controller:v1.9.5 and so on. Nothing of Flux is
	// then compiled here. Empty: Slipway builds them from the pinned
	// modules and serves them from its registry.
	FluxImages string `json:"fluxImages,omitempty"`
	// Existing, when set, is a cluster that runs already (AKS, or any
	// conformant cluster): the platform installs Flux there and runs the
	// tenants, job pods and releases on it instead of starting a node of
	// its own.
	Existing *ExistingCluster `json:"existing,omitempty"`
}

// ExistingCluster names a cluster the platform deploys to but does not run.
type ExistingCluster struct {
	// Kubeconfig is the file holding a context with cluster-admin rights
	// on it (an absolute path).
	Kubeconfig string `json:"kubeconfig"`
	// Context is the context to use; empty means the file's current one.
	Context string `json:"context,omitempty"`
	// PlatformHost is the host name or address at which the cluster's
	// nodes and pods reach this platform's registry and git server (and
	// the platform listens there too): what image references, chart
	// sources and the fleet's URL name.
	PlatformHost string `json:"platformHost"`
	// Flux is what the platform does with Flux there: "install" (the
	// default) installs its own pinned Flux, replacing one that is there;
	// "adopt" uses the Flux already there, at its own version and
	// settings, once it passes the check (see FluxAdopt).
	Flux string `json:"flux,omitempty"`
	// JobCacheClass, when set, is the StorageClass of the teams' Go cache
	// claims, asked for ReadWriteMany: one whose volumes every node can
	// mount at once (on AKS, azurefile-csi), so that a team's jobs run on
	// any node. Empty: ReadWriteOnce claims of the default class.
	JobCacheClass string `json:"jobCacheClass,omitempty"`
	// Fleet, when set, is the fleet repository on a git host of its own
	// (Azure Repos, GitHub, any git server over HTTPS) instead of the
	// platform's git server: the platform commits there, and Flux reads
	// it from there.
	Fleet *ExternalFleet `json:"fleet,omitempty"`
	// Registry, when set, is the line's registry on a registry of its own
	// (ACR, or any registry of the distribution spec): the teams' images
	// and charts are pushed there and the cluster reads them from there,
	// instead of from the platform's registry, which keeps only the
	// platform's own images.
	Registry *LineRegistry `json:"registry,omitempty"`
}

// LineRegistry is the registry the teams' images and charts go to when it
// is not the platform's own. Its accounts are made by its owner (on ACR,
// tokens with scope maps): one per team, named ci-TEAM, which may push
// and pull under TEAM/ only, and one that may pull the teams' charts, for
// Flux. A team's account there is its CI account on this platform too
// (git, the platform's API), so the pipelines' variables hold one
// account, as they do with the platform's registry.
type LineRegistry struct {
	// Host is the registry's host[:port], spoken to over HTTPS, as this
	// platform, the jobs and the cluster's nodes reach it.
	Host string `json:"host"`
	// CAFile, when set, is the CA the registry's certificate is signed by,
	// when it is not one the system trusts.
	CAFile string `json:"caFile,omitempty"`
	// ReaderUsername and ReaderPasswordFile are the account Flux pulls
	// the teams' charts with.
	ReaderUsername     string `json:"readerUsername"`
	ReaderPasswordFile string `json:"readerPasswordFile"`
	// PasswordsDir holds one file per team's account, named as the
	// account (ci-TEAM), with its password or token.
	PasswordsDir string `json:"passwordsDir"`
}

// Reader is the account Flux pulls the teams' charts with.
func (r LineRegistry) Reader() (username, password string, err error) {
	password, err = lineRegistryPassword(r.ReaderPasswordFile, "the chart reader's password", "readerPasswordFile")
	return r.ReaderUsername, password, err
}

// TeamPassword is the password of a team's account ci-TEAM.
func (r LineRegistry) TeamPassword(account string) (string, error) {
	path := filepath.Join(r.PasswordsDir, account)
	password, err := lineRegistryPassword(path, "the password of "+account, "passwordsDir")
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("the line's registry %s has no password for %s here: make that account there (it may push and pull under %s/ only; on ACR a token of a scope map on %s/*) and write its password to %s", r.Host, account, strings.TrimPrefix(account, "ci-"), strings.TrimPrefix(account, "ci-"), path)
	}
	return password, err
}

// Accounts are the teams' accounts PasswordsDir holds passwords for
// (ci-TEAM).
func (r LineRegistry) Accounts() ([]string, error) {
	entries, err := os.ReadDir(r.PasswordsDir)
	if err != nil {
		return nil, fmt.Errorf("the line registry's passwords (cluster.existing.registry.passwordsDir): %w", err)
	}
	var out []string
	for _, e := range entries {
		if name := e.Name(); e.Type().IsRegular() && strings.HasPrefix(name, "ci-") {
			out = append(out, name)
		}
	}
	return out, nil
}

// CA is the registry's CA as PEM, or nil when the system trusts it.
func (r LineRegistry) CA() ([]byte, error) {
	if r.CAFile == "" {
		return nil, nil
	}
	ca, err := os.ReadFile(r.CAFile)
	if err != nil {
		return nil, fmt.Errorf("the line registry's CA (cluster.existing.registry.caFile): %w", err)
	}
	return ca, nil
}

func lineRegistryPassword(path, what, setting string) (string, error) {
	return requiredPassword(path, what, "cluster.existing.registry."+setting)
}

// LineRegistry is the line's registry of its own, or nil when the
// teams' images and charts go to the platform's registry.
func (c Config) LineRegistry() *LineRegistry {
	if c.Cluster.Existing == nil {
		return nil
	}
	return c.Cluster.Existing.Registry
}

// ExternalFleet is a fleet repository on another git host.
type ExternalFleet struct {
	// URL is the repository's HTTPS URL, without credentials, as both this
	// platform and the cluster's source-controller reach it.
	URL string `json:"url"`
	// Username and the password in PasswordFile (an absolute path, its
	// first line) may push to it; Flux reads it with them too, unless a
	// reader is named.
	Username     string `json:"username"`
	PasswordFile string `json:"passwordFile"`
	// CAFile, when set, is the CA the host's certificate is signed by,
	// when it is not one the system trusts.
	CAFile string `json:"caFile,omitempty"`
	// ReaderUsername and ReaderPasswordFile, when set, are an account
	// that may only read the repository (a read-only token): the one
	// Flux is given, so the cluster holds no push rights to the fleet.
	ReaderUsername     string `json:"readerUsername,omitempty"`
	ReaderPasswordFile string `json:"readerPasswordFile,omitempty"`
}

// Reader is the account Flux reads the fleet with: the reader when one is
// named, else the account that pushes.
func (f ExternalFleet) Reader() (username, password string, err error) {
	if f.ReaderUsername == "" {
		password, err = f.Password()
		return f.Username, password, err
	}
	password, err = fleetPassword(f.ReaderPasswordFile, "the fleet reader's password", "readerPasswordFile")
	return f.ReaderUsername, password, err
}

// Password is the first line of PasswordFile.
func (f ExternalFleet) Password() (string, error) {
	return fleetPassword(f.PasswordFile, "the fleet repository's password", "passwordFile")
}

// fleetPassword is the first line of one of the fleet's password files,
// which must not be empty; what and setting name it in errors.
func fleetPassword(path, what, setting string) (string, error) {
	return requiredPassword(path, what, "cluster.existing.fleet."+setting)
}

// requiredPassword is the first line of a password file that must not be
// empty; what and setting name it in errors.
func requiredPassword(path, what, setting string) (string, error) {
	line, err := passwordFromFile(path)
	if err != nil {
		return "", fmt.Errorf("%s (%s): %w", what, setting, err)
	}
	if line == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return line, nil
}

// passwordFromFile is the first line of a file holding a password or
// token, trimmed: what `echo TOKEN > FILE` leaves there.
func passwordFromFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line), nil
}

// ExternalFleet is the fleet repository on a git host of its own, or nil
// when the platform's git server holds it.
func (c Config) ExternalFleet() *ExternalFleet {
	if c.Cluster.Existing == nil {
		return nil
	}
	return c.Cluster.Existing.Fleet
}

// Ways cluster.existing.flux can take Flux.
const (
	FluxInstall = "install"
	FluxAdopt   = "adopt"
)

// AdoptsFlux says whether the platform uses the Flux an existing cluster
// has instead of installing its own.
func (c Config) AdoptsFlux() bool {
	return c.ClusterExisting() && c.Cluster.Existing.Flux == FluxAdopt
}

// With is e (nil: none yet) with every field over set, for a later layer
// of settings (environment, flags) that names only some of them.
func (e *ExistingCluster) With(over ExistingCluster) *ExistingCluster {
	out := ExistingCluster{}
	if e != nil {
		out = *e
	}
	if over.Kubeconfig != "" {
		out.Kubeconfig = over.Kubeconfig
	}
	if over.Context != "" {
		out.Context = over.Context
	}
	if over.PlatformHost != "" {
		out.PlatformHost = over.PlatformHost
	}
	if over.Flux != "" {
		out.Flux = over.Flux
	}
	if over.JobCacheClass != "" {
		out.JobCacheClass = over.JobCacheClass
	}
	if over.Fleet != nil {
		fleet := ExternalFleet{}
		if out.Fleet != nil {
			fleet = *out.Fleet
		}
		if over.Fleet.URL != "" {
			fleet.URL = over.Fleet.URL
		}
		if over.Fleet.Username != "" {
			fleet.Username = over.Fleet.Username
		}
		if over.Fleet.PasswordFile != "" {
			fleet.PasswordFile = over.Fleet.PasswordFile
		}
		if over.Fleet.CAFile != "" {
			fleet.CAFile = over.Fleet.CAFile
		}
		if over.Fleet.ReaderUsername != "" {
			fleet.ReaderUsername = over.Fleet.ReaderUsername
		}
		if over.Fleet.ReaderPasswordFile != "" {
			fleet.ReaderPasswordFile = over.Fleet.ReaderPasswordFile
		}
		out.Fleet = &fleet
	}
	if over.Registry != nil {
		reg := LineRegistry{}
		if out.Registry != nil {
			reg = *out.Registry
		}
		for _, f := range []struct {
			to   *string
			from string
		}{
			{&reg.Host, over.Registry.Host}, {&reg.CAFile, over.Registry.CAFile},
			{&reg.ReaderUsername, over.Registry.ReaderUsername}, {&reg.ReaderPasswordFile, over.Registry.ReaderPasswordFile},
			{&reg.PasswordsDir, over.Registry.PasswordsDir},
		} {
			if f.from != "" {
				*f.to = f.from
			}
		}
		out.Registry = &reg
	}
	return &out
}

// NodeRegistry is a registry the cluster's node pulls from.
type NodeRegistry struct {
	// Host is host[:port], as image references name it.
	Host string `json:"host"`
	// PlainHTTP talks HTTP to it (a registry on this machine).
	PlainHTTP bool `json:"plainHTTP,omitempty"`
	// CAFile is the CA its certificate is signed by, when not one the
	// host trusts.
	CAFile string `json:"caFile,omitempty"`
	// Username and Password are sent when it asks for credentials; the
	// password may instead be kept in PasswordFile (an absolute path,
	// its first line), out of the config file.
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
}

// Secret is the registry's password: Password, or PasswordFile's first
// line.
func (r NodeRegistry) Secret() (string, error) {
	if r.PasswordFile == "" {
		return r.Password, nil
	}
	line, err := passwordFromFile(r.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("the password of registry %s: %w", r.Host, err)
	}
	return line, nil
}

// Registry configures the embedded OCI registry.
type Registry struct {
	// Addr is the host:port the registry listens on.
	Addr string `json:"addr,omitempty"`
	// AnonymousPull lets clients without credentials pull. Push always needs
	// credentials.
	AnonymousPull bool `json:"anonymousPull,omitempty"`
	// TokenAuth answers clients without a token with a Bearer challenge
	// sending them to the registry's token endpoint, as ACR does, instead
	// of a Basic one. Basic credentials sent unasked still work.
	TokenAuth bool `json:"tokenAuth,omitempty"`
	// MinFreeBytes is the free space the storage volume must keep; uploads
	// that would go below it are refused with a clear error instead of
	// failing half-way with a full disk.
	MinFreeBytes int64 `json:"minFreeBytes,omitempty"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Home: DefaultHome(),
		Registry: Registry{
			Addr:         "127.0.0.1:5000",
			MinFreeBytes: 256 << 20,
		},
		Git:        Git{Addr: "127.0.0.1:3000"},
		Monitoring: Monitoring{PrometheusAddr: "127.0.0.1:9090", AlertmanagerAddr: "127.0.0.1:9093"},
	}
}

// DefaultHome is /var/lib/slipway for root and ~/.local/share/slipway
// otherwise.
func DefaultHome() string {
	if os.Geteuid() == 0 {
		return "/var/lib/slipway"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "slipway")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "slipway")
	}
	return filepath.Join(os.TempDir(), "slipway")
}

// Load layers defaults, the config file and the environment. configPath may
// be empty: then SLIPWAY_CONFIG, or config.yaml in the home directory, is
// read when it exists. getenv is usually os.Getenv.
func Load(configPath string, getenv func(string) string) (Config, error) {
	c := Default()
	if h := getenv("SLIPWAY_HOME"); h != "" {
		c.Home = h
	}
	explicit := configPath != ""
	if !explicit {
		if p := getenv("SLIPWAY_CONFIG"); p != "" {
			configPath, explicit = p, true
		} else {
			configPath = filepath.Join(c.Home, "config.yaml")
		}
	}
	data, err := os.ReadFile(configPath)
	switch {
	case err == nil:
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			return c, fmt.Errorf("reading config file %s: %w", configPath, err)
		}
	case errors.Is(err, os.ErrNotExist) && !explicit:
	default:
		return c, fmt.Errorf("reading config file: %w", err)
	}
	if err := applyEnv(&c, getenv); err != nil {
		return c, err
	}
	return c, nil
}

// applyEnv overrides settings from SLIPWAY_* variables. The list is explicit
// so that a typo in a variable name cannot silently change something else.
func applyEnv(c *Config, getenv func(string) string) error {
	if v := getenv("SLIPWAY_HOME"); v != "" {
		c.Home = v
	}
	if v := getenv("SLIPWAY_CACHE_DIR"); v != "" {
		c.Cache = v
	}
	if v := getenv("SLIPWAY_GIT_ADDR"); v != "" {
		c.Git.Addr = v
	}
	if v := getenv("SLIPWAY_REGISTRY_ADDR"); v != "" {
		c.Registry.Addr = v
	}
	if v := getenv("SLIPWAY_REGISTRY_TOKEN_AUTH"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_REGISTRY_TOKEN_AUTH=%q: want true or false", v)
		}
		c.Registry.TokenAuth = b
	}
	if v := getenv("SLIPWAY_REGISTRY_ANONYMOUS_PULL"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_REGISTRY_ANONYMOUS_PULL=%q: want true or false", v)
		}
		c.Registry.AnonymousPull = b
	}
	if v := getenv("SLIPWAY_CLUSTER"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_CLUSTER=%q: want true or false", v)
		}
		c.Cluster.Enabled = &b
	}
	if v := getenv("SLIPWAY_KUBERNETES_VERSION"); v != "" {
		c.Cluster.KubernetesVersion = v
	}
	if v := getenv("SLIPWAY_FLUX_IMAGES"); v != "" {
		c.Cluster.FluxImages = v
	}
	e := ExistingCluster{Kubeconfig: getenv("SLIPWAY_TARGET_KUBECONFIG"), Context: getenv("SLIPWAY_TARGET_CONTEXT"),
		PlatformHost: getenv("SLIPWAY_PLATFORM_HOST"), Flux: getenv("SLIPWAY_TARGET_FLUX"),
		JobCacheClass: getenv("SLIPWAY_JOB_CACHE_CLASS")}
	if f := (ExternalFleet{URL: getenv("SLIPWAY_FLEET_URL"), Username: getenv("SLIPWAY_FLEET_USERNAME"),
		PasswordFile: getenv("SLIPWAY_FLEET_PASSWORD_FILE"), CAFile: getenv("SLIPWAY_FLEET_CA_FILE"),
		ReaderUsername: getenv("SLIPWAY_FLEET_READER_USERNAME"), ReaderPasswordFile: getenv("SLIPWAY_FLEET_READER_PASSWORD_FILE")}); f != (ExternalFleet{}) {
		e.Fleet = &f
	}
	if r := (LineRegistry{Host: getenv("SLIPWAY_LINE_REGISTRY"), CAFile: getenv("SLIPWAY_LINE_REGISTRY_CA_FILE"),
		ReaderUsername: getenv("SLIPWAY_LINE_REGISTRY_READER_USERNAME"), ReaderPasswordFile: getenv("SLIPWAY_LINE_REGISTRY_READER_PASSWORD_FILE"),
		PasswordsDir: getenv("SLIPWAY_LINE_REGISTRY_PASSWORDS_DIR")}); r != (LineRegistry{}) {
		e.Registry = &r
	}
	if e != (ExistingCluster{}) {
		c.Cluster.Existing = c.Cluster.Existing.With(e)
	}
	if v := getenv("SLIPWAY_FLUX"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_FLUX=%q: want true or false", v)
		}
		c.Cluster.Flux = &b
	}
	if v := getenv("SLIPWAY_MONITORING"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_MONITORING=%q: want true or false", v)
		}
		c.Monitoring.Enabled = &b
	}
	if v := getenv("SLIPWAY_DATABASES"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_DATABASES=%q: want true or false", v)
		}
		c.Databases.Enabled = &b
	}
	if v := getenv("SLIPWAY_PROMETHEUS_ADDR"); v != "" {
		c.Monitoring.PrometheusAddr = v
	}
	if v := getenv("SLIPWAY_ALERTMANAGER_ADDR"); v != "" {
		c.Monitoring.AlertmanagerAddr = v
	}
	if v := getenv("SLIPWAY_PLAIN_HTTP_ON_LOOPBACK"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_PLAIN_HTTP_ON_LOOPBACK=%q: want true or false", v)
		}
		c.TLS.PlainHTTPOnLoopback = b
	}
	if v := getenv("SLIPWAY_JOBS"); v != "" {
		c.Pipelines.Jobs = v
	}
	if v := getenv("SLIPWAY_REGISTRY_MIN_FREE_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("SLIPWAY_REGISTRY_MIN_FREE_BYTES=%q: want a number of bytes", v)
		}
		c.Registry.MinFreeBytes = n
	}
	return nil
}

// ClusterEnabled says whether `up` starts the cluster. It never does when
// the platform targets an existing one.
func (c Config) ClusterEnabled() bool {
	if c.ClusterExisting() {
		return false
	}
	if c.Cluster.Enabled != nil {
		return *c.Cluster.Enabled
	}
	return os.Geteuid() == 0 && runtime.GOOS == "linux"
}

// ClusterExisting says whether the platform targets an existing cluster
// (cluster.existing) rather than running its own.
func (c Config) ClusterExisting() bool { return c.Cluster.Existing != nil }

// FluxEnabled says whether `up` installs Flux (it needs a cluster: its own
// or an existing one).
func (c Config) FluxEnabled() bool {
	return (c.ClusterEnabled() || c.ClusterExisting()) && (c.Cluster.Flux == nil || *c.Cluster.Flux)
}

// MonitoringEnabled says whether `up` runs Prometheus and Alertmanager
// (they watch the cluster and Flux): on this host, beside the platform's
// own cluster or reading an existing one through its API server.
func (c Config) MonitoringEnabled() bool {
	return c.FluxEnabled() && (c.Monitoring.Enabled == nil || *c.Monitoring.Enabled)
}

// DatabasesEnabled says whether `up` installs CloudNativePG and its
// images (Flux applies the operator): on the platform's own cluster,
// whose volumes are the node's directories, or on an existing one, whose
// default StorageClass gives them.
func (c Config) DatabasesEnabled() bool {
	return c.FluxEnabled() && c.Databases.Enabled != nil && *c.Databases.Enabled
}

// JobsInPods says whether pushed pipelines' jobs run in pods.
func (c Config) JobsInPods() bool {
	return c.FluxEnabled() && c.Pipelines.Jobs != "host"
}

// Validate checks the final configuration once, after flags are applied.
func (c Config) Validate() error {
	switch c.Pipelines.Jobs {
	case "", "pods", "host":
	default:
		return fmt.Errorf("pipelines.jobs (SLIPWAY_JOBS) %q: want pods or host", c.Pipelines.Jobs)
	}
	if c.Pipelines.ParallelJobs < 0 || c.Pipelines.ParallelJobs > 64 {
		return fmt.Errorf("pipelines.parallelJobs %d: want 1 to 64 (0 means the default, 2)", c.Pipelines.ParallelJobs)
	}
	if c.Home == "" {
		return errors.New("home directory is empty: set SLIPWAY_HOME or --home")
	}
	if !filepath.IsAbs(c.Home) {
		return fmt.Errorf("home directory %q must be an absolute path", c.Home)
	}
	host, port, err := net.SplitHostPort(c.Registry.Addr)
	if err != nil {
		return fmt.Errorf("registry address %q: want host:port (for example 127.0.0.1:5000)", c.Registry.Addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("registry address %q: port %q is not a number", c.Registry.Addr, port)
	}
	if strings.TrimSpace(host) == "" {
		return fmt.Errorf("registry address %q: name a host, for example 127.0.0.1:%s", c.Registry.Addr, port)
	}
	if _, _, err := net.SplitHostPort(c.Git.Addr); err != nil {
		return fmt.Errorf("git address %q: want host:port (for example 127.0.0.1:3000)", c.Git.Addr)
	}
	if c.Registry.MinFreeBytes < 0 {
		return errors.New("registry.minFreeBytes must not be negative")
	}
	for i, r := range c.Cluster.Registries {
		if r.Host == "" || strings.ContainsAny(r.Host, "/ \t") {
			return fmt.Errorf("cluster.registries[%d].host %q: want host[:port], such as myacr.azurecr.io", i, r.Host)
		}
		if r.Host == c.Registry.Addr {
			return fmt.Errorf("cluster.registries[%d].host %q is the embedded registry, which the node pulls from already", i, r.Host)
		}
		if r.CAFile != "" && !filepath.IsAbs(r.CAFile) {
			return fmt.Errorf("cluster.registries[%d].caFile %q must be an absolute path", i, r.CAFile)
		}
		if r.PasswordFile != "" {
			if r.Password != "" {
				return fmt.Errorf("cluster.registries[%d]: give password or passwordFile, not both", i)
			}
			if !filepath.IsAbs(r.PasswordFile) {
				return fmt.Errorf("cluster.registries[%d].passwordFile %q must be an absolute path", i, r.PasswordFile)
			}
			if _, err := r.Secret(); err != nil {
				return fmt.Errorf("cluster.registries[%d]: %w", i, err)
			}
		}
	}
	if e := c.Cluster.Existing; e != nil {
		if err := e.validate(c); err != nil {
			return err
		}
	}
	if f := c.Cluster.FluxImages; f != "" && !validImagePrefix(f) {
		return fmt.Errorf("cluster.fluxImages (SLIPWAY_FLUX_IMAGES) %q: want a registry and path, without a scheme or tag, such as ghcr.io/fluxcd", f)
	}
	return nil
}

func (e ExistingCluster) validate(c Config) error {
	if e.Kubeconfig == "" || !filepath.IsAbs(e.Kubeconfig) {
		return fmt.Errorf("cluster.existing.kubeconfig (SLIPWAY_TARGET_KUBECONFIG) %q: want the absolute path of a kubeconfig file", e.Kubeconfig)
	}
	if _, err := os.Stat(e.Kubeconfig); err != nil {
		return fmt.Errorf("cluster.existing.kubeconfig: %w", err)
	}
	h := e.PlatformHost
	if h == "" {
		return errors.New("cluster.existing.platformHost (SLIPWAY_PLATFORM_HOST) is empty: name the host or address at which the cluster reaches this platform (its pods pull images from the registry and read the fleet there)")
	}
	ip := net.ParseIP(h)
	malformed := ip == nil && strings.ContainsAny(h, ":/ \t@") // a port, a scheme, credentials
	if malformed || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return fmt.Errorf("cluster.existing.platformHost %q: want a host name or an address the cluster's pods can reach, without port or scheme (not loopback)", h)
	}
	switch e.Flux {
	case "", FluxInstall, FluxAdopt:
	default:
		return fmt.Errorf("cluster.existing.flux (SLIPWAY_TARGET_FLUX) %q: want install (Slipway's own Flux) or adopt (the Flux already there)", e.Flux)
	}
	if cl := e.JobCacheClass; cl != "" && (strings.ContainsAny(cl, "/: \t") || strings.ToLower(cl) != cl) {
		return fmt.Errorf("cluster.existing.jobCacheClass (SLIPWAY_JOB_CACHE_CLASS) %q: want the name of one of the cluster's StorageClasses, such as azurefile-csi", cl)
	}
	if f := e.Fleet; f != nil {
		if err := f.validate(); err != nil {
			return err
		}
	}
	if r := e.Registry; r != nil {
		if err := r.validate(); err != nil {
			return err
		}
	}
	if e.Flux == FluxAdopt && c.Cluster.FluxImages != "" {
		return errors.New("cluster.existing.flux is adopt, and cluster.fluxImages names images to install Flux from: an adopted Flux keeps its own; drop one of the two")
	}
	if c.Cluster.Enabled != nil && *c.Cluster.Enabled {
		return errors.New("cluster.existing and cluster.enabled: the platform targets an existing cluster or runs its own, not both")
	}
	return nil
}

func (f ExternalFleet) validate() error {
	u, err := url.Parse(f.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("cluster.existing.fleet.url (SLIPWAY_FLEET_URL) %q: want the repository's https:// URL, without credentials (they go in username and passwordFile)", f.URL)
	}
	if f.Username == "" {
		return errors.New("cluster.existing.fleet.username (SLIPWAY_FLEET_USERNAME) is empty: name the account that may push to the fleet repository")
	}
	if !filepath.IsAbs(f.PasswordFile) {
		return fmt.Errorf("cluster.existing.fleet.passwordFile (SLIPWAY_FLEET_PASSWORD_FILE) %q: want the absolute path of a file holding the password or token", f.PasswordFile)
	}
	if _, err := f.Password(); err != nil {
		return err
	}
	if f.CAFile != "" && !filepath.IsAbs(f.CAFile) {
		return fmt.Errorf("cluster.existing.fleet.caFile (SLIPWAY_FLEET_CA_FILE) %q must be an absolute path", f.CAFile)
	}
	switch {
	case f.ReaderUsername == "" && f.ReaderPasswordFile == "":
		return nil
	case f.ReaderUsername == "":
		return errors.New("cluster.existing.fleet.readerPasswordFile is set without readerUsername (SLIPWAY_FLEET_READER_USERNAME): name the read-only account it belongs to")
	case !filepath.IsAbs(f.ReaderPasswordFile):
		return fmt.Errorf("cluster.existing.fleet.readerPasswordFile (SLIPWAY_FLEET_READER_PASSWORD_FILE) %q: want the absolute path of a file holding the read-only account's password or token", f.ReaderPasswordFile)
	}
	_, _, err = f.Reader()
	return err
}

func (r LineRegistry) validate() error {
	if !validRegistryHost(r.Host) {
		return fmt.Errorf("cluster.existing.registry.host (SLIPWAY_LINE_REGISTRY) %q: want the registry's host[:port], such as myacr.azurecr.io, without scheme or path", r.Host)
	}
	if r.CAFile != "" && !filepath.IsAbs(r.CAFile) {
		return fmt.Errorf("cluster.existing.registry.caFile (SLIPWAY_LINE_REGISTRY_CA_FILE) %q must be an absolute path", r.CAFile)
	}
	if r.ReaderUsername == "" || !filepath.IsAbs(r.ReaderPasswordFile) {
		return errors.New("cluster.existing.registry.readerUsername and readerPasswordFile (SLIPWAY_LINE_REGISTRY_READER_USERNAME, _PASSWORD_FILE): name the account that may pull the teams' charts, which Flux is given, and the absolute path of a file holding its password or token")
	}
	if _, _, err := r.Reader(); err != nil {
		return err
	}
	if !filepath.IsAbs(r.PasswordsDir) {
		return fmt.Errorf("cluster.existing.registry.passwordsDir (SLIPWAY_LINE_REGISTRY_PASSWORDS_DIR) %q: want the absolute path of a directory holding a file per team, named as its account there (ci-TEAM), with its password or token", r.PasswordsDir)
	}
	_, err := r.Accounts()
	return err
}

// validRegistryHost accepts HOST or HOST:PORT, as image references name
// a registry.
func validRegistryHost(h string) bool {
	if h == "" || strings.ContainsAny(h, "/@?# \t") {
		return false
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		_, perr := strconv.Atoi(port)
		return host != "" && perr == nil
	}
	return !strings.Contains(h, ":")
}

// validImagePrefix accepts REGISTRY[:PORT][/PATH...]: what an image name
// starts with, before its own name and tag.
func validImagePrefix(p string) bool {
	if strings.Contains(p, "://") || strings.ContainsAny(p, "@ \t") || strings.HasSuffix(p, "/") {
		return false
	}
	parts := strings.Split(p, "/")
	for _, seg := range parts[1:] {
		if seg == "" || strings.Contains(seg, ":") {
			return false
		}
	}
	return parts[0] != ""
}

// Paths under the home directory. Every piece of state has one place.
func (c Config) RegistryDir() string { return filepath.Join(c.Home, "registry") }
func (c Config) UsersFile() string   { return filepath.Join(c.Home, "users.yaml") }
func (c Config) GitDir() string      { return filepath.Join(c.Home, "git") }

// TLSDir holds the platform's CA, serving certificate and trust bundle.
func (c Config) TLSDir() string { return filepath.Join(c.Home, "tls") }
func (c Config) RunDir() string { return filepath.Join(c.Home, "run") }
func (c Config) LogDir() string { return filepath.Join(c.Home, "logs") }
func (c Config) CacheDir() string {
	if c.Cache != "" {
		return c.Cache
	}
	// The user's cache, shared by every state directory: deleting a home
	// (a reset) does not mean compiling Kubernetes again.
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "slipway")
	}
	return filepath.Join(c.Home, "cache")
}
func (c Config) ClusterDir() string { return filepath.Join(c.Home, "cluster") }

// AdminPasswordFile holds the password generated for the admin user on the
// first start.
func (c Config) AdminPasswordFile() string { return filepath.Join(c.Home, "admin-password") }
