package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"sigs.k8s.io/yaml"

	"github.com/slipway-dev/slipway/internal/credentials"
)

// RegistryOptions say how to reach a chart registry.
type RegistryOptions struct {
	// Username and Password, when set, are used instead of the Docker
	// config file.
	Username, Password string
	// CredentialsFile is a Docker-format config file; empty uses the
	// Docker config (DOCKER_CONFIG or ~/.docker/config.json).
	CredentialsFile string
	// PlainHTTP talks HTTP; a loopback registry gets what it serves
	// (credentials.Scheme).
	PlainHTTP bool
	Progress  io.Writer
}

func (o RegistryOptions) client(host string) (*registry.Client, error) {
	out := o.Progress
	if out == nil {
		out = io.Discard
	}
	opts := []registry.ClientOption{registry.ClientOptWriter(out)}
	if credentials.Scheme(context.Background(), host, o.PlainHTTP) == "http" {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	switch {
	case o.Username != "":
		opts = append(opts, registry.ClientOptBasicAuth(o.Username, o.Password))
	case o.CredentialsFile != "":
		opts = append(opts, registry.ClientOptCredentialsFile(o.CredentialsFile))
	default:
		path, err := credentials.ConfigPath()
		if err != nil {
			return nil, err
		}
		opts = append(opts, registry.ClientOptCredentialsFile(path))
	}
	return registry.NewClient(opts...)
}

// Repository is where a chart lives: oci://registry/path/name, as Helm and
// Flux write it, or the same without the scheme.
type Repository struct {
	Host string
	Path string // path/name, without a tag
}

// ParseRepository reads oci://host/path/name.
func ParseRepository(s string) (Repository, error) {
	s = strings.TrimPrefix(s, "oci://")
	host, path, ok := strings.Cut(s, "/")
	if !ok || path == "" || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return Repository{}, fmt.Errorf("chart repository %q: write it as oci://REGISTRY/PATH/NAME, for example oci://127.0.0.1:5000/dev1/charts/hello", s)
	}
	if strings.ContainsAny(path, ":@") {
		return Repository{}, fmt.Errorf("chart repository %q: leave out the version; it comes from the chart", s)
	}
	return Repository{Host: host, Path: path}, nil
}

func (r Repository) String() string { return "oci://" + r.Host + "/" + r.Path }

// ref is host/path:tag; OCI tags cannot hold '+', which Helm writes as '_'.
func (r Repository) ref(version string) string {
	return r.Host + "/" + r.Path + ":" + strings.ReplaceAll(version, "+", "_")
}

// PushResult is what `slipway chart push` prints.
type PushResult struct {
	// Chart is the reference Flux and helm use: oci://…/name:version.
	Chart      string `json:"chart"`
	Repository string `json:"repository"`
	Name       string `json:"name"`
	Version    string `json:"version"`
	AppVersion string `json:"appVersion,omitempty"`
	// Digest is the chart manifest's digest.
	Digest string `json:"digest"`
	// Image is the app image the chart pins.
	Image    string   `json:"image,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// ErrVersionExists is returned when the version is already in the registry.
var ErrVersionExists = errors.New("this chart version is already in the registry")

// Push publishes a packaged chart under parent (oci://registry/dev1/charts),
// as parent/NAME:VERSION. A version that exists is refused unless force.
func Push(p *Packaged, parent string, force bool, opts RegistryOptions) (*PushResult, error) {
	base, err := ParseRepository(strings.TrimSuffix(parent, "/") + "/" + p.Name)
	if err != nil {
		return nil, err
	}
	client, err := opts.client(base.Host)
	if err != nil {
		return nil, err
	}
	ref := base.ref(p.Version)
	if _, err := client.Resolve(ref); err == nil && !force {
		return nil, fmt.Errorf("%s:%s: %w; build a new version (or pass --force to replace it)", base, p.Version, ErrVersionExists)
	} else if err != nil && !isNotFound(err) {
		return nil, registryError(base.Host, err)
	}
	res, err := client.Push(p.Archive, ref, registry.PushOptStrictMode(true))
	if err != nil {
		return nil, registryError(base.Host, fmt.Errorf("pushing %s: %w", ref, err))
	}
	return &PushResult{
		Chart:      base.String() + ":" + p.Version,
		Repository: base.String(),
		Name:       p.Name,
		Version:    p.Version,
		AppVersion: p.AppVersion,
		Digest:     res.Manifest.Digest,
		Image:      p.Image,
		Warnings:   p.Warnings,
	}, nil
}

func isNotFound(err error) bool {
	return httpStatus(err) == http.StatusNotFound || strings.Contains(err.Error(), "not found")
}

// statusCodeText finds the status in the registry client's message when the
// error chain does not carry it typed.
var statusCodeText = regexp.MustCompile(`status code (\d{3})\b`)

// httpStatus is the HTTP status a registry answered with, or 0. It is read
// from the status itself, never from digits anywhere in the message: the
// registry's address has a port, and port 40183 is not a 401.
func httpStatus(err error) int {
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		return resp.StatusCode
	}
	if m := statusCodeText.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.Atoi(m[1])
		return code
	}
	return 0
}

// registryError adds what to do to a registry failure.
func registryError(host string, err error) error {
	msg := err.Error()
	status := httpStatus(err)
	switch {
	case status == http.StatusUnauthorized || status == 0 && strings.Contains(strings.ToLower(msg), "unauthorized"):
		return fmt.Errorf("%w\nregistry %s did not accept the credentials: log in with `slipway login %s -u <user>`", err, host, host)
	case status == http.StatusForbidden || status == 0 && strings.Contains(strings.ToLower(msg), "denied"):
		return fmt.Errorf("%w\npush charts under your team's prefix (for example oci://%s/dev1/charts), or ask an admin for push rights", err, host)
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host"):
		return fmt.Errorf("%w\ncannot reach registry %s: start it with `slipway up`, or check the address", err, host)
	}
	return err
}

// Versions lists the chart's versions in the registry, newest first.
func Versions(repo string, opts RegistryOptions) ([]string, error) {
	r, err := ParseRepository(repo)
	if err != nil {
		return nil, err
	}
	client, err := opts.client(r.Host)
	if err != nil {
		return nil, err
	}
	tags, err := client.Tags(r.Host + "/" + r.Path)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("no chart at %s", r)
		}
		return nil, registryError(r.Host, err)
	}
	versions := make([]*semver.Version, 0, len(tags))
	for _, t := range tags {
		if v, err := semver.NewVersion(strings.ReplaceAll(t, "_", "+")); err == nil {
			versions = append(versions, v)
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].GreaterThan(versions[j]) })
	out := make([]string, len(versions))
	for i, v := range versions {
		out[i] = v.Original()
	}
	return out, nil
}

// Shown is one chart version as stored.
type Shown struct {
	Chart       string         `json:"chart"`
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	AppVersion  string         `json:"appVersion,omitempty"`
	Description string         `json:"description,omitempty"`
	Digest      string         `json:"digest"`
	Image       string         `json:"image,omitempty"`
	Values      map[string]any `json:"values"`
	// Loaded is the chart as Helm loads it, for callers in Go.
	Loaded *chartv2.Chart `json:"-"`
}

// Show pulls one version (or the newest, when version is empty) and reads
// its metadata, values and pinned image.
func Show(repo, version string, opts RegistryOptions) (*Shown, error) {
	r, err := ParseRepository(repo)
	if err != nil {
		return nil, err
	}
	if version == "" {
		versions, err := Versions(repo, opts)
		if err != nil {
			return nil, err
		}
		if len(versions) == 0 {
			return nil, fmt.Errorf("no versions of %s", r)
		}
		version = versions[0]
	}
	client, err := opts.client(r.Host)
	if err != nil {
		return nil, err
	}
	res, err := client.Pull(r.ref(version), registry.PullOptWithChart(true))
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%s has no version %s (see `slipway chart list %s`)", r, version, r)
		}
		return nil, registryError(r.Host, err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(res.Chart.Data))
	if err != nil {
		return nil, fmt.Errorf("loading %s:%s: %w", r, version, err)
	}
	return &Shown{
		Chart:       r.String() + ":" + version,
		Name:        ch.Name(),
		Version:     ch.Metadata.Version,
		AppVersion:  ch.Metadata.AppVersion,
		Description: ch.Metadata.Description,
		Digest:      res.Manifest.Digest,
		Image:       imageOf(ch.Values),
		Values:      ch.Values,
		Loaded:      ch,
	}, nil
}

// imageOf reads the image reference a chart's values name.
func imageOf(values map[string]any) string {
	image, ok := values["image"].(map[string]any)
	if !ok {
		return ""
	}
	repo, _ := image["repository"].(string)
	if repo == "" {
		return ""
	}
	if d, _ := image["digest"].(string); d != "" {
		return repo + "@" + d
	}
	if t, _ := image["tag"].(string); t != "" {
		return repo + ":" + t
	}
	return repo
}

// ValuesYAML renders values for display.
func ValuesYAML(values map[string]any) string {
	out, err := yaml.Marshal(values)
	if err != nil {
		return fmt.Sprint(values)
	}
	return string(out)
}
