package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/slipway-dev/slipway/internal/gitcmd"
	"sigs.k8s.io/yaml"
)

// VersionOptions say how to derive a chart version from git.
type VersionOptions struct {
	// Dir is inside the app's git work tree.
	Dir string
	// Build is the build number; empty reads BUILD_BUILDID (set by Azure
	// Pipelines and by Slipway's runner), then the commit count of HEAD.
	Build string
	// Fallback is the version used as the base when the repository has no
	// semver tag yet, usually the chart's own version.
	Fallback string
}

// DeriveVersion returns a version every build of main can use without hand
// edits: at a commit tagged vX.Y.Z (and no build number given) it is X.Y.Z;
// otherwise it is the next patch after the latest semver tag reachable from
// HEAD with the build number as a pre-release, X.Y.(Z+1)-build.N. Versions
// of successive builds sort in build order, and all sort after the release
// they start from and before the next one.
//
// Flux picks pre-releases only when its semver range allows them, for
// example ">=0.0.0-0".
func DeriveVersion(opts VersionOptions) (string, error) {
	build := opts.Build
	if build == "" {
		build = os.Getenv("BUILD_BUILDID")
	}
	tags, err := gitcmd.Run(context.Background(), opts.Dir, nil, "tag", "--merged", "HEAD")
	if err != nil && build == "" {
		return "", fmt.Errorf("reading git tags: %w (derive versions inside a git repository, or pass --version or --build-number)", err)
	}
	// Outside git, a given build number still makes a version: the
	// chart's own version with the build as a pre-release.
	var latest *semver.Version
	for _, t := range strings.Fields(tags) {
		v, err := semver.StrictNewVersion(strings.TrimPrefix(t, "v"))
		if err != nil || v.Prerelease() != "" {
			continue
		}
		if latest == nil || v.GreaterThan(latest) {
			latest = v
		}
	}
	if latest != nil && build == "" {
		at, _ := gitcmd.Run(context.Background(), opts.Dir, nil, "tag", "--points-at", "HEAD")
		for _, t := range strings.Fields(at) {
			if v, err := semver.StrictNewVersion(strings.TrimPrefix(t, "v")); err == nil && v.Equal(latest) {
				return latest.String(), nil
			}
		}
	}
	if build == "" {
		count, err := gitcmd.Run(context.Background(), opts.Dir, nil, "rev-list", "--count", "HEAD")
		if err != nil {
			return "", fmt.Errorf("counting commits: %w", err)
		}
		build = strings.TrimSpace(count)
	}
	if n, err := strconv.ParseUint(build, 10, 64); err != nil || strconv.FormatUint(n, 10) != build {
		return "", fmt.Errorf("build number %q: want a whole number without leading zeros, so versions sort in build order", build)
	}
	var next semver.Version
	switch {
	case latest != nil:
		next = latest.IncPatch()
	case opts.Fallback != "":
		v, err := semver.StrictNewVersion(opts.Fallback)
		if err != nil {
			return "", fmt.Errorf("chart version %q is not semver", opts.Fallback)
		}
		next = *semver.New(v.Major(), v.Minor(), v.Patch(), "", "")
	default:
		next = *semver.New(0, 1, 0, "", "")
	}
	withBuild, err := next.SetPrerelease("build." + build)
	if err != nil {
		return "", err
	}
	return withBuild.String(), nil
}

// DeclaredVersion reads the version in dir's Chart.yaml, or "" when there
// is none.
func DeclaredVersion(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return ""
	}
	var meta struct {
		Version string `json:"version"`
	}
	if yaml.Unmarshal(data, &meta) != nil {
		return ""
	}
	return meta.Version
}
