// Package apilifecycle finds the objects an upgrade would break or
// warn about: it reads a Kubernetes release's own lifecycle data for its
// built-in APIs (printed by the api-lifecycle program built from that
// release's pins) and matches the apiVersion and kind of every object
// found in manifests (the fleet repository, Helm releases' manifests).
package apilifecycle

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Kind is one built-in API kind's lifecycle in a release.
type Kind struct {
	Group       string `json:"group"`
	Version     string `json:"version"`
	Kind        string `json:"kind"`
	Deprecated  string `json:"deprecated,omitempty"`
	Removed     string `json:"removed,omitempty"`
	Replacement string `json:"replacement,omitempty"`
}

// APIVersion is "apps/v1", or "v1" for the core group.
func (k Kind) APIVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// Data is a release's lifecycle data, by apiVersion and kind.
type Data struct {
	kinds  map[string]Kind
	groups map[string]bool
}

// Load runs a release's api-lifecycle program and reads what it prints.
func Load(ctx context.Context, program string) (*Data, error) {
	out, err := exec.CommandContext(ctx, program).Output()
	if err != nil {
		return nil, fmt.Errorf("reading the API lifecycle data (%s): %w", program, err)
	}
	return Parse(out)
}

// Parse reads the api-lifecycle program's output.
func Parse(data []byte) (*Data, error) {
	var kinds []Kind
	if err := json.Unmarshal(data, &kinds); err != nil {
		return nil, fmt.Errorf("reading the API lifecycle data: %w", err)
	}
	d := &Data{kinds: map[string]Kind{}, groups: map[string]bool{}}
	for _, k := range kinds {
		d.kinds[k.APIVersion()+" "+k.Kind] = k
		d.groups[k.Group] = true
	}
	return d, nil
}

// Object is an object found in a manifest.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Source says where it was found: a fleet file, a Helm release.
	Source string `json:"source"`
}

// Finding is an object whose API the target release deprecates or no
// longer serves.
type Finding struct {
	Object
	Deprecated  string `json:"deprecated,omitempty"`
	Removed     string `json:"removed,omitempty"`
	Replacement string `json:"replacement,omitempty"`
	// Blocks is set when the target no longer serves the API: applying
	// the object would fail after the upgrade.
	Blocks bool `json:"blocks,omitempty"`
}

// Check matches objects against the data of the target release (such as
// "v1.37.2"). Kinds of groups the target does not build in (custom
// resources) are not its to judge and are left out.
func (d *Data) Check(objects []Object, target string) []Finding {
	var out []Finding
	for _, o := range objects {
		group := ""
		if i := strings.Index(o.APIVersion, "/"); i >= 0 {
			group = o.APIVersion[:i]
		}
		k, known := d.kinds[o.APIVersion+" "+o.Kind]
		switch {
		case known && k.Removed != "" && !newer(k.Removed, target):
			out = append(out, Finding{Object: o, Deprecated: k.Deprecated, Removed: k.Removed, Replacement: k.Replacement, Blocks: true})
		case known && k.Deprecated != "" && !newer(k.Deprecated, target):
			out = append(out, Finding{Object: o, Deprecated: k.Deprecated, Removed: k.Removed, Replacement: k.Replacement})
		case !known && d.groups[group] && d.versionGone(o.APIVersion):
			out = append(out, Finding{Object: o, Removed: "before " + strings.TrimPrefix(minor(target), "v"), Blocks: true})
		}
	}
	return out
}

// versionGone says a built-in group's version is not in the data at all.
func (d *Data) versionGone(apiVersion string) bool {
	for _, k := range d.kinds {
		if k.APIVersion() == apiVersion {
			return false
		}
	}
	return true
}

// newer says the "1.38"-style release rel comes after target ("v1.37.2").
func newer(rel, target string) bool {
	rmaj, rmin := majorMinor(rel)
	tmaj, tmin := majorMinor(target)
	return rmaj > tmaj || rmaj == tmaj && rmin > tmin
}

func majorMinor(v string) (int, int) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	a, _ := strconv.Atoi(parts[0])
	b, _ := strconv.Atoi(parts[1])
	return a, b
}

func minor(v string) string {
	a, b := majorMinor(v)
	return fmt.Sprintf("v%d.%d", a, b)
}

// ObjectsInYAML reads the objects of a multi-document YAML file; source
// names the file. Documents that are not objects (a kustomization's
// patches, Helm values) are skipped; List kinds are opened.
func ObjectsInYAML(data []byte, source string) []Object {
	var out []Object
	for _, doc := range splitDocuments(data) {
		var m struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Items []json.RawMessage `json:"items"`
		}
		if err := yaml.Unmarshal(doc, &m); err != nil || m.APIVersion == "" || m.Kind == "" {
			continue
		}
		if strings.HasSuffix(m.Kind, "List") && m.Items != nil {
			for _, item := range m.Items {
				out = append(out, ObjectsInYAML(item, source)...)
			}
			continue
		}
		out = append(out, Object{APIVersion: m.APIVersion, Kind: m.Kind, Namespace: m.Metadata.Namespace, Name: m.Metadata.Name, Source: source})
	}
	return out
}

func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

// HelmReleaseManifest reads the rendered manifest out of a Helm release
// Secret's "release" value (base64 of gzipped JSON, as Helm's Secret
// storage keeps it).
func HelmReleaseManifest(release []byte) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(string(release))
	if err != nil {
		return "", fmt.Errorf("helm release: %w", err)
	}
	if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return "", fmt.Errorf("helm release: %w", err)
		}
		// A release is bounded by a Secret's size (1 MiB); its manifest
		// inflated, by far less than this.
		raw, err = io.ReadAll(io.LimitReader(zr, 64<<20))
		if err != nil {
			return "", fmt.Errorf("helm release: %w", err)
		}
	}
	var r struct {
		Manifest string `json:"manifest"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", fmt.Errorf("helm release: %w", err)
	}
	if r.Manifest == "" {
		return "", errors.New("helm release: no manifest")
	}
	return r.Manifest, nil
}
