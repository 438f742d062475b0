package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/supervisor"
)

// State is what a running `slipway up` publishes for `status` and `down`.
type State struct {
	PID int `json:"pid"`
	// Ready is false while the services are still starting.
	Ready     bool                  `json:"ready"`
	StartedAt time.Time             `json:"startedAt"`
	Endpoints []supervisor.Endpoint `json:"endpoints"`
	// Kubeconfig holds the "slipway" context when the cluster runs.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Addresses are where the services answer, as they were started:
	// the one source of truth for every other command (see Attach).
	Addresses Addresses `json:"addresses"`
	// Existing is the existing cluster the platform was started for, with
	// every setting as it took it (file, environment and flags of up):
	// other commands read it from here (see Attach), so that a setting
	// given to up alone (its fleet, its line registry) holds for them too.
	Existing *config.ExistingCluster `json:"existing,omitempty"`
}

// Addresses are the running platform's addresses, from the host and from
// inside the cluster.
type Addresses struct {
	// Registry is the registry's host:port, as the host reaches it.
	Registry string `json:"registry,omitempty"`
	// RegistryURL is the registry's base URL as the host reaches it
	// (https://HOST:PORT, or http:// when it serves plain HTTP there).
	RegistryURL string `json:"registryURL,omitempty"`
	// RegistryNode is the registry on the node address, the name pods,
	// containerd and Flux use; empty without the cluster.
	RegistryNode string `json:"registryNode,omitempty"`
	// Git is the git server's base URL (https://HOST:PORT).
	Git string `json:"git,omitempty"`
	// GitNode is the git server as the cluster reaches it.
	GitNode string `json:"gitNode,omitempty"`
	// CA is the platform's CA certificate, which the registry's and the
	// git server's certificates are signed by; empty when they serve plain
	// HTTP.
	CA string `json:"ca,omitempty"`
	// AdminKubeconfig is the cluster-admin kubeconfig; empty without the
	// cluster.
	AdminKubeconfig string `json:"adminKubeconfig,omitempty"`
}

// ErrNotRunning is returned when no `slipway up` holds the state directory.
var ErrNotRunning = errors.New("slipway is not running (start it with `slipway up`)")

func stateFile(runDir string) string { return filepath.Join(runDir, "up.json") }
func lockFile(runDir string) string  { return filepath.Join(runDir, "up.lock") }

// Lock is held by the one `slipway up` that owns a state directory.
type Lock struct{ f *os.File }

// AcquireLock takes the state directory for this process, or says which
// process already has it.
func AcquireLock(runDir string) (*Lock, error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	f, err := os.OpenFile(lockFile(runDir), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if st, err := ReadState(runDir); err == nil {
			return nil, fmt.Errorf("slipway is already running (pid %d, since %s); stop it with `slipway down`", st.PID, st.StartedAt.Format(time.RFC3339))
		}
		return nil, errors.New("slipway is already running or starting in this home directory; stop it with `slipway down`")
	}
	return &Lock{f: f}, nil
}

// Release removes the published state and frees the directory.
func (l *Lock) Release() {
	_ = os.Remove(stateFile(filepath.Dir(l.f.Name())))
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}

// Publish writes the state for other commands, atomically.
func (l *Lock) Publish(st State) error {
	runDir := filepath.Dir(l.f.Name())
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(stateFile(runDir), data, 0o644); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

// running reports whether some process holds the lock.
func lockHeld(runDir string) bool {
	f, err := os.Open(lockFile(runDir))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// ReadState returns the state of the running `slipway up`, or ErrNotRunning.
func ReadState(runDir string) (State, error) {
	var st State
	if !lockHeld(runDir) {
		return st, ErrNotRunning
	}
	data, err := os.ReadFile(stateFile(runDir))
	if errors.Is(err, os.ErrNotExist) {
		return st, errors.New("slipway is starting and has not said its process yet; try again in a moment")
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("reading %s: %w", stateFile(runDir), err)
	}
	return st, nil
}

// ServiceStatus is one line of `slipway status`.
type ServiceStatus struct {
	supervisor.Endpoint
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

// Status probes every published endpoint.
func Status(ctx context.Context, runDir string) (State, []ServiceStatus, error) {
	st, err := ReadState(runDir)
	if err != nil {
		return st, nil, err
	}
	client := &http.Client{Timeout: 3 * time.Second}
	out := make([]ServiceStatus, 0, len(st.Endpoints))
	for _, e := range st.Endpoints {
		s := ServiceStatus{Endpoint: e, Healthy: true}
		if e.Health != "" {
			if err := supervisor.CheckHTTP(ctx, client, e.Health); err != nil {
				s.Healthy, s.Error = false, err.Error()
			}
		}
		out = append(out, s)
	}
	return st, out, nil
}

// Down asks the running `slipway up` to stop and waits until it has.
func Down(ctx context.Context, runDir string) (State, error) {
	st, err := ReadState(runDir)
	if errors.Is(err, ErrNotRunning) {
		return st, err
	}
	if err != nil {
		return st, err
	}
	if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
		return st, fmt.Errorf("signalling slipway (pid %d): %w", st.PID, err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for lockHeld(runDir) {
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("slipway (pid %d) has not stopped yet: %w", st.PID, ctx.Err())
		case <-tick.C:
		}
	}
	return st, nil
}
