package chart

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
)

// The scaffold is our own chart template, with placeholders for the chart
// name and images.
//
//go:embed all:scaffold
var scaffold embed.FS

// InitOptions describe a new chart.
type InitOptions struct {
	// Dir is where the chart is written; it must not exist or be empty.
	Dir string
	// Name is the chart name; empty uses Dir's base name.
	Name string
	// Image is the app's image repository (registry/path, no tag).
	Image string
	// CheckImage is the image of the `helm test` pod: Slipway's http-check.
	CheckImage string
	// Force writes into a directory that is not empty, replacing the
	// scaffold's files.
	Force bool
}

// Init writes a chart for one app: Deployment, Service, ServiceAccount,
// probes, resource requests and limits, the restricted security context,
// a `helm test` pod, and values for the image repository and digest.
func Init(opts InitOptions) (string, error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return "", err
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(dir)
	}
	if err := chartutil.ValidateMetadataName(name); err != nil {
		return "", fmt.Errorf("chart name %q: %w (use lower-case letters, digits and '-')", name, err)
	}
	if strings.ToLower(name) != name {
		return "", fmt.Errorf("chart name %q: use lower-case letters, digits and '-'", name)
	}
	if opts.Image == "" {
		return "", errors.New("name the app's image repository (for example 127.0.0.1:5000/dev1/hello)")
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 && !opts.Force {
		return "", fmt.Errorf("%s is not empty: pick another directory, or pass --force to write the chart's files into it", dir)
	}
	replacer := strings.NewReplacer("<CHARTNAME>", name, "<IMAGE>", opts.Image, "<CHECKIMAGE>", opts.CheckImage)
	err = fs.WalkDir(scaffold, "scaffold", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(path, "scaffold"), "/")
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := scaffold.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, []byte(replacer.Replace(string(data))), 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("writing the chart: %w", err)
	}
	return dir, nil
}
