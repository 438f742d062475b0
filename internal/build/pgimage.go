package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PostgreSQL images for CloudNativePG, made from Debian's packages: no
// image hub is reachable, and Debian carries each PostgreSQL major in one
// suite (15 in bookworm, 17 in trixie). What the operator needs in them:
// the server programs on PATH (initdb, postgres, pg_ctl, pg_controldata,
// pg_basebackup, pg_config, pg_upgrade), locales, and the postgres user
// with UID 26, which its pods run as.

// PostgresUID is the user CloudNativePG runs PostgreSQL as.
const PostgresUID = 26

// PostgresSuites are the Debian suites that carry each major version
// Slipway can run; PostgresMajors lists them, oldest first.
var (
	PostgresSuites = map[int]string{15: "bookworm", 17: "trixie"}
	PostgresMajors = []int{15, 17}
)

// PostgresImageOptions say which image to make.
type PostgresImageOptions struct {
	CacheDir string
	Major    int
	// Mirror is the Debian mirror (default deb.debian.org).
	Mirror   string
	Progress io.Writer
}

// PostgresImage is a built PostgreSQL image and the exact version of the
// server in it (such as "15.20"), by which it is tagged.
type PostgresImage struct {
	*Image
	Version string
}

func postgresRecipe(major int, mirror string) (debianRecipe, error) {
	suite, ok := PostgresSuites[major]
	if !ok {
		return debianRecipe{}, fmt.Errorf("PostgreSQL %d: Slipway makes images of PostgreSQL %s", major, postgresMajors())
	}
	user := fmt.Sprintf("postgres:x:%d:%d:PostgreSQL administrator:/var/lib/postgresql:/bin/bash", PostgresUID, PostgresUID)
	return debianRecipe{
		Suite:    suite,
		Variant:  "minbase",
		Packages: []string{fmt.Sprintf("postgresql-%d", major), fmt.Sprintf("postgresql-client-%d", major), "locales"},
		Mirror:   mirror,
		// The JIT compiler is LLVM (over 100 MB); without its provider
		// library PostgreSQL runs without JIT, as it does when built so.
		Exclude: []string{"/usr/lib/postgresql/*/lib/llvmjit*", "/usr/lib/postgresql/*/lib/bitcode/*", "/usr/lib/x86_64-linux-gnu/libLLVM*", "/usr/lib/aarch64-linux-gnu/libLLVM*", "/usr/lib/x86_64-linux-gnu/libz3*", "/usr/lib/aarch64-linux-gnu/libz3*"},
		// The postgres user is made before the packages are installed,
		// so that they take it with UID 26 instead of making their own;
		// and no database cluster is made at installation.
		EssentialHooks: []string{
			fmt.Sprintf(`echo '%s' >> "$1/etc/passwd" && echo 'postgres:x:%d:' >> "$1/etc/group" && echo 'postgres:*:1::::::' >> "$1/etc/shadow"`, user, PostgresUID),
			`mkdir -p "$1/etc/postgresql-common" && echo 'create_main_cluster = false' > "$1/etc/postgresql-common/createcluster.conf"`,
		},
		CustomizeHooks: []string{
			fmt.Sprintf(`mkdir -p "$1/var/run/postgresql" && chown %d:%d "$1/var/run/postgresql" "$1/var/lib/postgresql"`, PostgresUID, PostgresUID),
			`rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*`,
		},
	}, nil
}

func postgresMajors() string {
	var s []string
	for _, m := range PostgresMajors {
		s = append(s, strconv.Itoa(m))
	}
	return strings.Join(s, " and ")
}

// BuildPostgresImage makes (or takes from the cache) the image of one
// PostgreSQL major version for this machine's platform. The root
// filesystem is kept by its recipe; a new recipe makes a new one.
func BuildPostgresImage(ctx context.Context, opts PostgresImageOptions) (*PostgresImage, error) {
	if opts.Mirror == "" {
		opts.Mirror = "http://deb.debian.org/debian"
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	recipe, err := postgresRecipe(opts.Major, opts.Mirror)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.CacheDir, "postgres-image")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("rootfs-%d-%s", opts.Major, recipe.key())
	versionFile := filepath.Join(dir, name+".version")
	// The version is read from the root filesystem as it is made, by a
	// hook that writes it to the host.
	recipe.CustomizeHooks = append(recipe.CustomizeHooks,
		fmt.Sprintf(`chroot "$1" dpkg-query -W -f '${Version}' postgresql-%d > '%s.tmp'`, opts.Major, versionFile))
	rootfs, err := cachedLayer(dir, name, func(w io.Writer) error {
		fmt.Fprintf(opts.Progress, "making the PostgreSQL %d image from Debian %s with mmdebstrap (once per machine, about two minutes)\n", opts.Major, recipe.Suite)
		if err := debootstrap(ctx, recipe, w); err != nil {
			return err
		}
		return os.Rename(versionFile+".tmp", versionFile)
	})
	if err != nil {
		return nil, fmt.Errorf("the PostgreSQL %d image: %w", opts.Major, err)
	}
	raw, err := os.ReadFile(versionFile)
	if err != nil {
		return nil, fmt.Errorf("the PostgreSQL %d image: its version: %w", opts.Major, err)
	}
	version := debianUpstreamVersion(string(raw))
	if !strings.HasPrefix(version, fmt.Sprintf("%d.", opts.Major)) {
		return nil, fmt.Errorf("the PostgreSQL %d image holds version %q", opts.Major, version)
	}
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	bin := fmt.Sprintf("/usr/lib/postgresql/%d/bin", opts.Major)
	img, err = appendLayer(img, rootfs, "mmdebstrap "+recipe.Suite+": "+strings.Join(recipe.Packages, " "), time.Unix(0, 0).UTC(), func(cf *v1.ConfigFile) {
		cf.OS, cf.Architecture = p.OS, p.Architecture
		cf.Config.User = fmt.Sprint(PostgresUID)
		cf.Config.Env = []string{"PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PGDATA=/var/lib/postgresql/data/pgdata"}
		cf.Config.Labels = map[string]string{"org.opencontainers.image.version": version, "org.opencontainers.image.base.name": "debian:" + recipe.Suite}
	})
	if err != nil {
		return nil, err
	}
	built, err := singlePlatformIndex(img, p, "debian "+recipe.Suite)
	if err != nil {
		return nil, err
	}
	return &PostgresImage{Image: built, Version: version}, nil
}

// debianUpstreamVersion is the upstream part of a Debian package version:
// "15.20-0+deb12u1" → "15.20".
func debianUpstreamVersion(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	return v
}
