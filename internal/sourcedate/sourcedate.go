// Package sourcedate reads SOURCE_DATE_EPOCH, the reproducible-builds
// convention for the time stamped into build outputs.
package sourcedate

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Get returns SOURCE_DATE_EPOCH (whole seconds since 1970), or the Unix
// epoch itself when it is unset, so outputs never depend on the clock.
func Get() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want whole seconds since 1970", v)
	}
	return time.Unix(secs, 0).UTC(), nil
}
