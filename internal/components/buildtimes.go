package components

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Build times are remembered per family (by its directory, so a new pin
// of the same family still has an estimate) in one small file of the
// cache, so that a long build can say how long it took the last time on
// this machine. A machine whose cache is empty has no estimate: the time
// depends on its cores and disk too much for a number from elsewhere.

// buildTimesFile is the record, under the components directory.
const buildTimesFile = "build-times.json"

// buildTimesMu serialises the read-modify-write of the record between the
// families this process builds at once; two processes building at the
// same moment may lose one figure, which only costs an estimate.
var buildTimesMu sync.Mutex

func buildTimesPath(cacheDir string) string {
	return filepath.Join(cacheDir, "components", buildTimesFile)
}

// lastBuildTime is how long the family's last build took here, or 0.
func lastBuildTime(cacheDir, family string) time.Duration {
	buildTimesMu.Lock()
	defer buildTimesMu.Unlock()
	return readBuildTimes(cacheDir)[family]
}

// rememberBuildTime records a successful build's duration.
func rememberBuildTime(cacheDir, family string, took time.Duration) error {
	buildTimesMu.Lock()
	defer buildTimesMu.Unlock()
	times := readBuildTimes(cacheDir)
	times[family] = took
	data, err := json.MarshalIndent(times, "", "  ")
	if err != nil {
		return err
	}
	path := buildTimesPath(cacheDir)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readBuildTimes reads the record; a missing or damaged one is empty (it
// holds estimates only).
func readBuildTimes(cacheDir string) map[string]time.Duration {
	times := map[string]time.Duration{}
	data, err := os.ReadFile(buildTimesPath(cacheDir))
	if err != nil {
		return times
	}
	if json.Unmarshal(data, &times) != nil {
		return map[string]time.Duration{}
	}
	return times
}

// aboutLastTime says how long the last build took, for a progress line:
// "took 4m12s the last time here", or, with no record, that the first
// build takes minutes.
func aboutLastTime(last time.Duration) string {
	if last <= 0 {
		return "this takes minutes the first time"
	}
	return fmt.Sprintf("took %s the last time here", roughly(last))
}

// roughly rounds a build time to seconds, or to milliseconds when it is
// shorter than one.
func roughly(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// soFar is a still-building line's figure: "1m30s so far, of about 4m12s".
func soFar(elapsed, last time.Duration) string {
	s := elapsed.Round(time.Second).String() + " so far"
	if last > 0 {
		s += fmt.Sprintf(", of about %s", roughly(last))
	}
	return s
}
