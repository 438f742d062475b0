package build

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The non-root user every Slipway image runs as, as in distroless images.
const (
	nonRootUID  = 65532
	nonRootName = "nonroot"
)

// BuiltinBase is the name used for Slipway's own base image in output.
const BuiltinBase = "slipway/base"

// baseLayer is built once per process: its inputs are fixed by the Go
// toolchain (time zone data) and a pinned module (CA certificates).
var baseLayer = sync.OnceValues(buildBaseLayer)

// BaseIndex returns Slipway's base image for the given platforms: CA
// certificates, time zone data, a non-root user and a writable /tmp, and
// nothing else (no shell). It is made here because no public registry can
// be reached, and it is the same on every machine with the same Go release.
func BaseIndex(platforms []v1.Platform) (v1.ImageIndex, error) {
	layer, err := baseLayer()
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, err := baseImage(layer, p)
		if err != nil {
			return nil, err
		}
		p := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

func baseImage(layer v1.Layer, p v1.Platform) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return appendLayer(img, layer, "slipway base: ca-certificates, tzdata, nonroot user, /tmp", time.Unix(0, 0).UTC(), func(cf *v1.ConfigFile) {
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		cf.Config.User = fmt.Sprintf("%d:%d", nonRootUID, nonRootUID)
		cf.Config.WorkingDir = "/home/" + nonRootName
		cf.Config.Env = []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
			"HOME=/home/" + nonRootName,
		}
	})
}

func buildBaseLayer() (v1.Layer, error) {
	var certs bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			// Roots with distrust dates cannot be expressed in a PEM file.
			continue
		}
		_ = pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	entries := []entry{
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", nonRootName, nonRootUID, nonRootUID, nonRootName, nonRootName))},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", nonRootName, nonRootUID))},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs.Bytes()},
		{name: "tmp", dir: true, mode: 0o1777},
		{name: "home/" + nonRootName, dir: true, mode: 0o700, uid: nonRootUID, gid: nonRootUID},
		{name: "root", dir: true, mode: 0o700},
	}
	zones, err := zoneinfoEntries()
	if err != nil {
		return nil, err
	}
	entries = append(entries, zones...)
	return layerFromEntries(entries, time.Unix(0, 0).UTC(), "")
}

// zoneinfoEntries unpacks the Go toolchain's time zone database into
// /usr/share/zoneinfo, where every libc and Go's time package look.
func zoneinfoEntries() ([]entry, error) {
	zipPath := filepath.Join(runtime.GOROOT(), "lib", "time", "zoneinfo.zip")
	if out, err := goEnv("GOROOT"); err == nil && out != "" {
		zipPath = filepath.Join(out, "lib", "time", "zoneinfo.zip")
	}
	data, err := os.ReadFile(zipPath)
	if err != nil {
		return nil, fmt.Errorf("reading time zone data from the Go toolchain: %w", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", zipPath, err)
	}
	var out []entry
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, entry{name: "usr/share/zoneinfo/" + f.Name, mode: 0o644, data: b})
	}
	return out, nil
}

// BaseImages are Slipway's base image and the http-check image its
// charts' test pods run, for the given platforms.
func BaseImages(ctx context.Context, cacheDir string, platforms []v1.Platform) (base, check *Image, err error) {
	idx, err := BaseIndex(platforms)
	if err != nil {
		return nil, nil, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, p := range platforms {
		names = append(names, p.String())
	}
	check, err = HTTPCheckImage(ctx, cacheDir, platforms)
	if err != nil {
		return nil, nil, err
	}
	return &Image{Index: idx, Digest: digest, Platforms: names, Base: BuiltinBase}, check, nil
}
