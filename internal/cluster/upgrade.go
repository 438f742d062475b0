package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/supervisor"
)

// Upgrade says where to take the node.
type Upgrade struct {
	// To is the target release, such as "v1.37.2".
	To string
	// Programs maps a release to its programs (the target's and every
	// release the node runs now, for the way back).
	Programs map[string]map[string]string
	// APIServerArgs are extra flags for the upgraded API server (they
	// replace the ones recorded; nil keeps those).
	APIServerArgs map[string]string
	// Snapshot is where etcd's snapshot is saved before its data is
	// touched.
	Snapshot string
	// StepTimeout bounds each program's wait for health; 0 means 3 minutes.
	StepTimeout time.Duration
	Progress    io.Writer
}

// UpgradeReport tells what an upgrade did.
type UpgradeReport struct {
	From       string  `json:"from"`
	To         string  `json:"to"`
	Snapshot   string  `json:"snapshot,omitempty"`
	Phases     []Phase `json:"phases"`
	RolledBack bool    `json:"rolledBack,omitempty"`
	// Reason is why it rolled back.
	Reason string `json:"reason,omitempty"`
	// Nothing is set when the node already ran the target.
	Nothing bool `json:"nothing,omitempty"`
}

// Phase is one timed step.
type Phase struct {
	Name   string        `json:"name"`
	Took   time.Duration `json:"took"`
	Failed bool          `json:"failed,omitempty"`
}

// CheckUpgrade refuses what the version-skew policy does not allow: a
// downgrade, a skipped minor release, a release this slipway has no pins
// for.
func CheckUpgrade(cur Versions, to string) error {
	if components.EtcdVersion(to) == "" {
		return fmt.Errorf("Kubernetes %s is not one this slipway can run (it has %s)", to, strings.Join(components.KubernetesVersions, ", "))
	}
	for _, p := range NodePrograms {
		if v := cur.Programs[p]; CompareVersions(v, to) > 0 {
			who := p
			if len(cur.Releases()) == 1 {
				who = "the cluster"
			}
			return fmt.Errorf("refusing to downgrade: %s runs %s, newer than %s (a cluster goes back only by `slipway cluster restore` of a snapshot taken before its upgrade)", who, v, to)
		}
	}
	low := cur.Releases()[0]
	if skew := MinorSkew(low, to); skew > 1 {
		return fmt.Errorf("%s to %s skips %d minor release(s): the skew policy upgrades one minor at a time", low, to, skew-1)
	}
	return nil
}

// upgradeStep is one program's move, and the way back.
type upgradeStep struct {
	name string
	do   func(ctx context.Context) error
	undo func(ctx context.Context) error
}

// Upgrade moves the running node to u.To in the order of the skew
// policy: etcd (after a snapshot), the control plane (the API server, then
// in the same process the controller manager and scheduler), then, with
// the node drained, kube-proxy and the kubelet. Each program must be healthy on the new release before the
// next moves. When a step fails, the steps done are undone in reverse:
// the old programs restarted and, once etcd had moved, its data restored
// from the snapshot. Each move is recorded as it happens, so running it
// again after an interruption finishes the job.
func (c *Cluster) Upgrade(ctx context.Context, u Upgrade) (*UpgradeReport, error) {
	progress := u.Progress
	if progress == nil {
		progress = io.Discard
	}
	if c.procs == nil {
		return nil, errors.New("the cluster does not run in this process")
	}
	stepTimeout := u.StepTimeout
	if stepTimeout == 0 {
		stepTimeout = 3 * time.Minute
	}
	cur, err := ReadVersions(c.opts.Dir, u.To)
	if err != nil {
		return nil, err
	}
	if err := CheckUpgrade(cur, u.To); err != nil {
		return nil, err
	}
	newArgs := cur.APIServerArgs
	if u.APIServerArgs != nil {
		newArgs = u.APIServerArgs
	}
	rep := &UpgradeReport{From: cur.Summary(), To: u.To}
	if len(cur.Releases()) == 1 && cur.Releases()[0] == u.To && maps.Equal(newArgs, cur.APIServerArgs) {
		rep.Nothing = true
		return rep, nil
	}
	for _, r := range append(cur.Releases(), u.To) {
		if u.Programs[r] == nil {
			return nil, fmt.Errorf("no programs for %s", r)
		}
	}
	client, err := c.Client()
	if err != nil {
		return nil, err
	}
	record := func(v Versions) error { return WriteVersions(c.opts.Dir, v) }
	restart := func(ctx context.Context, name, release string, r supervisor.Replacement) error {
		r.Path = u.Programs[release][programOf(name)]
		ctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		return c.procs[name].Restart(ctx, r)
	}
	// move is the step of one service that restarts in place; restore,
	// when set, runs on the way back while it is stopped.
	move := func(name string, check func(ctx context.Context) error, restore func() error) upgradeStep {
		moved := programsOf(name)
		old, oldAPIArgs := cur.Programs[moved[0]], cur.APIServerArgs
		oldArgs := c.programArgs(name, cur)
		replacement := func(args []string) supervisor.Replacement {
			r := supervisor.Replacement{Args: args}
			if name == "kubelet" {
				// Ready only once the node heartbeats from this run.
				r.Ready = c.nodeReadySince()
			}
			return r
		}
		return upgradeStep{
			name: name,
			do: func(ctx context.Context) error {
				next := cur
				next.Programs = maps.Clone(cur.Programs)
				for _, p := range moved {
					next.Programs[p] = u.To
				}
				if name == ControlPlane {
					next.APIServerArgs = newArgs
				}
				if err := restart(ctx, name, u.To, replacement(c.programArgs(name, next))); err != nil {
					return err
				}
				if check != nil {
					if err := check(ctx); err != nil {
						return err
					}
				}
				cur = next
				return record(cur)
			},
			undo: func(ctx context.Context) error {
				r := replacement(oldArgs)
				r.Prepare = restore
				if err := restart(ctx, name, old, r); err != nil {
					return err
				}
				for _, p := range moved {
					cur.Programs[p] = old
				}
				if name == ControlPlane {
					cur.APIServerArgs = oldAPIArgs
				}
				return record(cur)
			},
		}
	}

	var steps []upgradeStep
	if cur.Programs["etcd"] != u.To {
		old := cur.Programs["etcd"]
		steps = append(steps, upgradeStep{
			name: "etcd snapshot",
			do: func(ctx context.Context) error {
				if err := Snapshot(ctx, c.opts, u.Programs[old]["etcdctl"], u.Snapshot); err != nil {
					return err
				}
				rep.Snapshot = u.Snapshot
				return nil
			},
			undo: func(context.Context) error { return nil },
		})
		// The new etcd may have written its own storage version, which the
		// old one refuses: the way back restores the snapshot.
		steps = append(steps, move("etcd", nil, func() error {
			fmt.Fprintf(progress, "  restoring etcd's data from %s\n", u.Snapshot)
			kept, err := RestoreSnapshot(context.Background(), c.opts, u.Programs[old]["etcdutl"], u.Snapshot)
			if kept != "" {
				fmt.Fprintf(progress, "  the data etcd %s had is kept in %s\n", components.EtcdVersion(u.To), kept)
			}
			return err
		}))
	}
	// The API server, the controller manager and the scheduler are one
	// process, which moves in one step: the skew policy's order among them
	// (the API server first) holds within it, as the process starts the
	// other two once the API server is ready.
	behind := slices.ContainsFunc(controlPlanePrograms, func(p string) bool { return cur.Programs[p] != u.To })
	if behind || !maps.Equal(newArgs, cur.APIServerArgs) {
		steps = append(steps, move(ControlPlane, func(ctx context.Context) error { return c.serverVersionIs(ctx, u.To) }, nil))
	}
	if cur.Programs["kube-proxy"] != u.To || cur.Programs["kubelet"] != u.To {
		steps = append(steps, upgradeStep{
			name: "cordon and drain",
			do: func(ctx context.Context) error {
				if err := Cordon(ctx, client, c.opts.NodeName, true); err != nil {
					return err
				}
				return Drain(ctx, client, c.opts.NodeName, 2*time.Minute, progress)
			},
			undo: func(ctx context.Context) error { return Cordon(ctx, client, c.opts.NodeName, false) },
		})
		if cur.Programs["kube-proxy"] != u.To {
			steps = append(steps, move("kube-proxy", func(ctx context.Context) error {
				return poll(ctx, stepTimeout, httpReady("http://127.0.0.1:10256/healthz"))
			}, nil))
		}
		if cur.Programs["kubelet"] != u.To {
			steps = append(steps, move("kubelet", func(ctx context.Context) error {
				// The node object shows the new kubelet once it has
				// registered again, a moment after it reports healthy.
				return poll(ctx, stepTimeout, func(ctx context.Context) error { return c.kubeletVersionIs(ctx, client, u.To) })
			}, nil))
		}
	}
	// A node cordoned by an earlier, interrupted run is opened here too.
	steps = append(steps, upgradeStep{
		name: "uncordon",
		do:   func(ctx context.Context) error { return Cordon(ctx, client, c.opts.NodeName, false) },
		undo: func(context.Context) error { return nil },
	})

	fmt.Fprintf(progress, "upgrading the node from %s to %s\n", rep.From, u.To)
	var done []upgradeStep
	for _, s := range steps {
		start := time.Now()
		fmt.Fprintf(progress, "  %s ...\n", s.describe(cur, u.To))
		err := s.do(ctx)
		took := time.Since(start)
		rep.Phases = append(rep.Phases, Phase{Name: s.name, Took: took, Failed: err != nil})
		if err == nil {
			fmt.Fprintf(progress, "  %s done in %s\n", s.name, took.Round(10*time.Millisecond))
			done = append(done, s)
			continue
		}
		// The failed step is undone too: its program may be stopped.
		done = append(done, s)
		rep.RolledBack, rep.Reason = true, fmt.Sprintf("%s: %v", s.name, err)
		fmt.Fprintf(progress, "  %s failed: %v\nrolling back\n", s.name, err)
		var undoErrs []error
		back := context.WithoutCancel(ctx)
		for _, d := range rollbackOrder(done) {
			start := time.Now()
			if uerr := d.undo(back); uerr != nil {
				undoErrs = append(undoErrs, fmt.Errorf("undoing %s: %w", d.name, uerr))
				fmt.Fprintf(progress, "  undoing %s failed: %v\n", d.name, uerr)
				continue
			}
			fmt.Fprintf(progress, "  undid %s in %s\n", d.name, time.Since(start).Round(10*time.Millisecond))
		}
		if len(undoErrs) > 0 {
			return rep, errors.Join(append([]error{fmt.Errorf("the upgrade to %s failed at %s (%v) and rolling back failed too; the node now runs %s", u.To, s.name, err, cur.Summary())}, undoErrs...)...)
		}
		return rep, fmt.Errorf("the upgrade to %s failed at %s, and the node is back on %s: %w", u.To, s.name, cur.Summary(), err)
	}
	return rep, nil
}

// programArgs are a service's flags for the releases v records. Only the
// control plane's depend on them: the API server's (ops' extra flags) and
// the controller manager's (its controllers differ by release).
func (c *Cluster) programArgs(name string, v Versions) []string {
	if name == ControlPlane {
		return c.controlPlaneArgs(v)
	}
	return c.procs[name].Args
}

// programsOf are the versioned node programs a service runs.
func programsOf(service string) []string {
	if service == ControlPlane {
		return controlPlanePrograms
	}
	return []string{service}
}

// programOf is the program a service runs.
func programOf(service string) string {
	if service == ControlPlane {
		return ControlPlaneProgram
	}
	return service
}

// rollbackOrder undoes steps from the bottom up: etcd's data first, then
// the API server on it, then its clients, and the node opened for pods
// last. A program restarted on the old release thus always finds what it
// depends on settled (a controller manager that is still starting exits
// when the API server goes away under it); the programs not yet undone
// have run a while and ride out a restart below them.
func rollbackOrder(done []upgradeStep) []upgradeStep {
	var out []upgradeStep
	var last []upgradeStep
	for _, s := range done {
		if s.name == "cordon and drain" {
			last = append(last, s)
			continue
		}
		out = append(out, s)
	}
	return append(out, last...)
}

func (s upgradeStep) describe(cur Versions, to string) string {
	old := cur.Programs[programsOf(s.name)[0]]
	switch {
	case s.name == "etcd":
		return fmt.Sprintf("etcd %s -> %s", components.EtcdVersion(old), components.EtcdVersion(to))
	case old != "":
		return fmt.Sprintf("%s %s -> %s", s.name, old, to)
	}
	return s.name
}

// serverVersionIs checks the API server reports the release.
func (c *Cluster) serverVersionIs(ctx context.Context, want string) error {
	client, err := c.Client()
	if err != nil {
		return err
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		return err
	}
	if v.GitVersion != want {
		return fmt.Errorf("the API server reports %s, not %s", v.GitVersion, want)
	}
	return nil
}

// kubeletVersionIs checks the node reports the kubelet's release.
func (c *Cluster) kubeletVersionIs(ctx context.Context, client kubernetes.Interface, want string) error {
	node, err := client.CoreV1().Nodes().Get(ctx, c.opts.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if got := node.Status.NodeInfo.KubeletVersion; got != want {
		return fmt.Errorf("the node reports kubelet %s, not %s", got, want)
	}
	return nil
}

// poll calls check until it passes or within ends.
func poll(ctx context.Context, within time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
