package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/downloader"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/slipway-dev/slipway/internal/sourcedate"
)

// PackageOptions describe one chart build.
type PackageOptions struct {
	// Dir holds the chart (Chart.yaml at its top).
	Dir string
	// Version is the chart version, semver; empty keeps Chart.yaml's.
	Version string
	// AppVersion is the app version; empty keeps Chart.yaml's.
	AppVersion string
	// Image pins the app's image: a reference with a digest,
	// registry/repo@sha256:…, as `slipway build` prints it.
	Image string
	// Created stamps the files in the archive; zero uses SOURCE_DATE_EPOCH
	// or the Unix epoch, so the same chart gives the same archive.
	Created time.Time
	// Progress receives status lines; nil discards them.
	Progress io.Writer
	// Registry is how dependencies from OCI registries are fetched; its
	// user name and password go to RegistryHost only (the registry the
	// chart is pushed to), other registries get the Docker config's.
	Registry     RegistryOptions
	RegistryHost string
}

// Packaged is a checked chart archive, ready to push.
type Packaged struct {
	Name       string
	Version    string
	AppVersion string
	// Image is the pinned image reference, when one was given.
	Image string
	// ImageTag is REPOSITORY:TAG the chart renders beside the digest (a
	// chart with image.tag only, such as one from `helm create`): the
	// pusher makes it name the pinned image, so the tag is a real one.
	ImageTag string
	Archive  []byte
	// Warnings are lint findings that do not stop the push.
	Warnings []string
}

// Problem is one finding, with the file and (where Helm gives it) line.
type Problem struct {
	Severity string
	Path     string
	Message  string
}

// CheckError is a chart that does not load, render or lint. Nothing is
// pushed when it is returned.
type CheckError struct {
	Dir      string
	Problems []Problem
}

func (e *CheckError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chart %s has errors:", e.Dir)
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  [%s] %s: %s", p.Severity, p.Path, p.Message)
	}
	b.WriteString("\nfix these and run again; nothing was pushed")
	return b.String()
}

// Package loads the chart, sets its version, app version and image digest,
// renders and lints the result, and packages it. The chart directory is not
// changed, except that missing dependencies are fetched into charts/ as
// `helm dependency build` does.
func Package(ctx context.Context, opts PackageOptions) (*Packaged, error) {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
		return nil, fmt.Errorf("%s has no Chart.yaml: point at a chart directory, or create one with `slipway chart init`", opts.Dir)
	}
	if opts.Version != "" {
		if _, err := semver.StrictNewVersion(opts.Version); err != nil {
			return nil, fmt.Errorf("version %q is not semver (MAJOR.MINOR.PATCH, with an optional -pre-release): %v", opts.Version, err)
		}
	}
	created := opts.Created
	if created.IsZero() {
		if created, err = sourcedate.Get(); err != nil {
			return nil, err
		}
	}

	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, &CheckError{Dir: opts.Dir, Problems: []Problem{{"ERROR", "Chart.yaml", err.Error()}}}
	}
	if err := fetchMissingDependencies(ch, dir, opts, progress); err != nil {
		return nil, err
	}
	if len(ch.Metadata.Dependencies) > 0 {
		// Load again to pick up what was fetched.
		if ch, err = loader.LoadDir(dir); err != nil {
			return nil, &CheckError{Dir: opts.Dir, Problems: []Problem{{"ERROR", "Chart.yaml", err.Error()}}}
		}
	}

	if opts.Version != "" {
		ch.Metadata.Version = opts.Version
	}
	if opts.AppVersion != "" {
		ch.Metadata.AppVersion = opts.AppVersion
	}
	var imageTag string
	if opts.Image != "" {
		if imageTag, err = pinImage(ch, opts.Image); err != nil {
			return nil, err
		}
		if imageTag != "" && opts.AppVersion == "" {
			// The app version names the build whose image is pinned.
			ch.Metadata.AppVersion = ch.Metadata.Version
		}
	}
	if err := ch.Validate(); err != nil {
		return nil, &CheckError{Dir: opts.Dir, Problems: []Problem{{"ERROR", "Chart.yaml", err.Error()}}}
	}

	// Lint and render what will be pushed, not what is on disk: write the
	// changed chart to a scratch directory first.
	scratch, err := os.MkdirTemp("", "slipway-chart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	if err := chartutil.SaveDir(ch, scratch); err != nil {
		return nil, fmt.Errorf("preparing the chart: %w", err)
	}
	warnings, err := check(ctx, ch, filepath.Join(scratch, ch.Name()), opts.Dir)
	if err != nil {
		return nil, err
	}

	ch.StampModTimes(created)
	out := filepath.Join(scratch, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	archivePath, err := chartutil.Save(ch, out)
	if err != nil {
		return nil, fmt.Errorf("packaging the chart: %w", err)
	}
	archive, err := os.ReadFile(archivePath)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "packaged %s %s (%d bytes)\n", ch.Name(), ch.Metadata.Version, len(archive))
	return &Packaged{
		Name:       ch.Name(),
		Version:    ch.Metadata.Version,
		AppVersion: ch.Metadata.AppVersion,
		Image:      opts.Image,
		ImageTag:   imageTag,
		Archive:    archive,
		Warnings:   warnings,
	}, nil
}

// check renders the chart with its default values and lints it. Errors
// stop the push; warnings are returned.
func check(ctx context.Context, ch *chartv2.Chart, savedDir, userDir string) ([]string, error) {
	var problems []Problem
	values, err := commonutil.ToRenderValues(ch, map[string]any{}, common.ReleaseOptions{
		Name: "release-name", Namespace: "default", Revision: 1, IsInstall: true,
	}, common.DefaultCapabilities)
	if err != nil {
		problems = append(problems, Problem{"ERROR", "values.yaml", err.Error()})
	} else if _, err := (engine.Engine{}).RenderWithContext(ctx, ch, values); err != nil {
		problems = append(problems, Problem{"ERROR", "templates", strings.ReplaceAll(err.Error(), "\n", "\n    ")})
	}

	var warnings []string
	result := lint.RunAll(savedDir, map[string]any{}, "default")
	for _, m := range result.Messages {
		p := Problem{Path: m.Path, Message: m.Err.Error()}
		switch m.Severity {
		case support.ErrorSev:
			p.Severity = "ERROR"
			// Rendering errors are already reported above, with their line.
			if len(problems) > 0 && strings.HasPrefix(m.Path, "templates") {
				continue
			}
			problems = append(problems, p)
		case support.WarningSev:
			warnings = append(warnings, fmt.Sprintf("%s: %s", m.Path, p.Message))
		}
	}
	if len(problems) > 0 {
		return warnings, &CheckError{Dir: userDir, Problems: problems}
	}
	return warnings, nil
}

// fetchMissingDependencies runs what `helm dependency build` does when
// Chart.yaml lists dependencies that charts/ does not hold.
func fetchMissingDependencies(ch *chartv2.Chart, dir string, opts PackageOptions, progress io.Writer) error {
	if len(ch.Metadata.Dependencies) == 0 {
		return nil
	}
	if dependenciesPresent(ch) {
		return nil
	}
	fmt.Fprintf(progress, "fetching the dependencies of %s\n", ch.Name())
	client, err := dependencyClient(ch, opts)
	if err != nil {
		return err
	}
	settings := cli.New()
	man := &downloader.Manager{
		Out:              progress,
		ChartPath:        dir,
		Getters:          getter.All(settings),
		RegistryClient:   client,
		RepositoryConfig: settings.RepositoryConfig,
		RepositoryCache:  settings.RepositoryCache,
		ContentCache:     settings.ContentCache,
		SkipUpdate:       true,
	}
	if err := man.Build(); err != nil {
		return fmt.Errorf("fetching the chart's dependencies: %w (for dependencies from chart repositories, add them with `helm repo add` or vendor them into charts/)", err)
	}
	return nil
}

// dependencyClient is the registry client dependencies from OCI
// registries are fetched with. The push's user name and password are
// used only when every such dependency comes from the registry the chart
// goes to; otherwise the Docker config's credentials answer each registry.
func dependencyClient(ch *chartv2.Chart, opts PackageOptions) (*registry.Client, error) {
	reg := opts.Registry
	host := opts.RegistryHost
	for _, d := range ch.Metadata.Dependencies {
		r, ok := strings.CutPrefix(d.Repository, "oci://")
		if !ok {
			continue
		}
		depHost, _, _ := strings.Cut(r, "/")
		if depHost != opts.RegistryHost {
			reg.Username, reg.Password = "", ""
			host = depHost
		}
	}
	reg.Progress = io.Discard
	return reg.client(host)
}

// CheckImagePath is Slipway's http-check image, which the `helm test` pods
// of its charts run (test.image), without its registry.
const CheckImagePath = "slipway/http-check"

// rehomeCheckImage has the `helm test` pod pull Slipway's http-check from
// the registry the app's image (repo) is on. A chart's values name it on
// one registry (the embedded one's address, in the examples); the same
// chart then runs unchanged where the line pushes to another registry, as
// for an existing cluster. Any other test image is left as written.
func rehomeCheckImage(doc *yaml.Node, repo string) {
	appHost, _, ok := strings.Cut(repo, "/")
	if !ok || !strings.ContainsAny(appHost, ".:") && appHost != "localhost" {
		return // no registry host in the app's image to follow
	}
	test := mappingValue(doc, "test")
	if test == nil || test.Kind != yaml.MappingNode {
		return
	}
	image := mappingValue(test, "image")
	if image == nil || image.Kind != yaml.ScalarNode {
		return
	}
	host, rest, ok := strings.Cut(image.Value, "/")
	if !ok || host == appHost || (rest != CheckImagePath && !strings.HasPrefix(rest, CheckImagePath+":") && !strings.HasPrefix(rest, CheckImagePath+"@")) {
		return
	}
	setScalar(test, "image", appHost+"/"+rest)
}

// dependenciesPresent reports whether charts/ holds every dependency
// Chart.yaml lists.
func dependenciesPresent(ch *chartv2.Chart) bool {
	have := map[string]bool{}
	for _, d := range ch.Dependencies() {
		have[d.Name()] = true
	}
	for _, d := range ch.Metadata.Dependencies {
		if !have[d.Name] {
			return false
		}
	}
	return true
}

// pinImage sets the app's image in values.yaml to ref, which must carry a
// digest. Our scaffold (and any chart with image.digest) gets repository
// and digest; a chart with only image.tag, such as one from `helm create`,
// gets a tag of the form VERSION@DIGEST (VERSION the chart's), which every
// runtime resolves by the digest, and the REPOSITORY:VERSION tag is
// returned for the pusher to create. values.yaml is edited in place,
// keeping its comments.
func pinImage(ch *chartv2.Chart, ref string) (imageTag string, err error) {
	repo, digest, ok := strings.Cut(ref, "@")
	if !ok || !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
		return "", fmt.Errorf("image %q: give the digest-pinned reference that `slipway build` prints (registry/repo@sha256:…)", ref)
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i] // a tag before the digest adds nothing
	}
	var raw *common.File
	for _, f := range ch.Raw {
		if f.Name == chartutil.ValuesfileName {
			raw = f
		}
	}
	if raw == nil {
		return "", errors.New("the chart has no values.yaml to pin the image in: add image.repository and image.digest values")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw.Data, &doc); err != nil {
		return "", fmt.Errorf("values.yaml: %w", err)
	}
	image := mappingValue(&doc, "image")
	if image == nil || image.Kind != yaml.MappingNode {
		return "", errors.New("values.yaml has no image map: add image.repository and image.digest (see `slipway chart init`)")
	}
	if mappingValue(image, "repository") == nil {
		return "", errors.New("values.yaml has no image.repository: add it, with image.digest")
	}
	setScalar(image, "repository", repo)
	switch {
	case mappingValue(image, "digest") != nil:
		setScalar(image, "digest", digest)
	case mappingValue(image, "tag") != nil:
		tag := strings.ReplaceAll(ch.Metadata.Version, "+", "_")
		setScalar(image, "tag", tag+"@"+digest)
		imageTag = repo + ":" + tag
	default:
		return "", errors.New("values.yaml has neither image.digest nor image.tag: add image.digest")
	}
	rehomeCheckImage(&doc, repo)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return "", err
	}
	raw.Data = buf.Bytes()
	values, err := common.ReadValues(raw.Data)
	if err != nil {
		return "", err
	}
	ch.Values = values
	return imageTag, nil
}

// mappingValue finds key in a mapping node (or a document holding one).
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func setScalar(mapping *yaml.Node, key, value string) {
	v := mappingValue(mapping, key)
	v.Kind, v.Tag, v.Value, v.Style = yaml.ScalarNode, "!!str", value, yaml.DoubleQuotedStyle
	v.Content = nil
}
