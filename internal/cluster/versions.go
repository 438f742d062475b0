package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/slipway-dev/slipway/internal/fsutil"
)

// NodePrograms are the node's versioned programs in the order the
// version-skew policy upgrades them: etcd, the API server, the
// controllers, then the node's own (kube-proxy and the kubelet).
var NodePrograms = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet"}

// versionBeforeRecords is the release every cluster ran before the node
// kept its versions: a state directory with etcd data and no record runs it.
const versionBeforeRecords = "v1.36.3"

// Versions is the Kubernetes release each of the node's programs runs
// (etcd counts as the release whose pins chose it). It is kept in the
// cluster's directory and changed only by an upgrade, one program at a
// time, so an interrupted upgrade starts again where it stopped.
type Versions struct {
	Programs map[string]string `json:"programs"`
	// APIServerArgs are extra flags ops gave the API server in an upgrade.
	APIServerArgs map[string]string `json:"apiServerArgs,omitempty"`
}

func versionsFile(dir string) string { return filepath.Join(dir, "versions.json") }

// ReadVersions reads the node's versions from the cluster directory dir. A
// cluster that does not exist yet gets fresh for every program.
func ReadVersions(dir, fresh string) (Versions, error) {
	data, err := os.ReadFile(versionsFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		v := fresh
		if _, err := os.Stat(filepath.Join(dir, "etcd", "member")); err == nil {
			v = versionBeforeRecords
		}
		return Uniform(v), nil
	}
	if err != nil {
		return Versions{}, err
	}
	var out Versions
	if err := json.Unmarshal(data, &out); err != nil {
		return Versions{}, fmt.Errorf("reading %s: %w", versionsFile(dir), err)
	}
	for _, p := range NodePrograms {
		if out.Programs[p] == "" {
			return Versions{}, fmt.Errorf("%s names no version for %s", versionsFile(dir), p)
		}
	}
	return out, nil
}

// Uniform is every program on one release.
func Uniform(version string) Versions {
	v := Versions{Programs: map[string]string{}}
	for _, p := range NodePrograms {
		v.Programs[p] = version
	}
	return v
}

// WriteVersions records the node's versions, atomically.
func WriteVersions(dir string, v Versions) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(versionsFile(dir), append(data, '\n'), 0o644)
}

// Releases are the distinct releases the programs run, sorted.
func (v Versions) Releases() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range NodePrograms {
		if r := v.Programs[p]; !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return CompareVersions(out[i], out[j]) < 0 })
	return out
}

// Summary is "v1.36.3", or "mixed: etcd v1.37.2, kube-apiserver v1.37.2, ..."
// while an upgrade is half done.
func (v Versions) Summary() string {
	if r := v.Releases(); len(r) == 1 {
		return r[0]
	}
	var parts []string
	for _, p := range NodePrograms {
		parts = append(parts, p+" "+v.Programs[p])
	}
	return "mixed: " + strings.Join(parts, ", ")
}

// CompareVersions orders "v1.36.3"-style versions numerically.
func CompareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func versionParts(v string) [3]int {
	var out [3]int
	for i, s := range strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		out[i] = n
	}
	return out
}

// MinorSkew is how many minor releases b is ahead of a.
func MinorSkew(a, b string) int { return versionParts(b)[1] - versionParts(a)[1] }
