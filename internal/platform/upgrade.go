package platform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/apilifecycle"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/release"
)

// UpgradeRequest asks the platform to plan, or to perform, an upgrade of
// its cluster to another Kubernetes release.
type UpgradeRequest struct {
	// To is the target release; empty means the newest pinned one.
	To string `json:"to,omitempty"`
	// Plan only reports what an upgrade would do and what stands in its way.
	Plan bool `json:"plan,omitempty"`
	// Force upgrades although preflight checks fail (never past the skew
	// policy).
	Force bool `json:"force,omitempty"`
	// APIServerArgs are extra flags for the upgraded API server, kept for
	// later starts ("name": "value", without the dashes).
	APIServerArgs map[string]string `json:"apiServerArgs,omitempty"`
}

// UpgradePlan is what `slipway cluster upgrade --plan` shows.
type UpgradePlan struct {
	Current    string                 `json:"current"`
	Target     string                 `json:"target"`
	Available  []string               `json:"available"`
	Components []PlanComponent        `json:"components"`
	Checks     []PlanCheck            `json:"checks"`
	Objects    []apilifecycle.Finding `json:"objects"`
	// Ready is set when every check passed and no object blocks.
	Ready bool `json:"ready"`
}

// PlanComponent is one program's current and target version.
type PlanComponent struct {
	Name    string `json:"name"`
	Current string `json:"current"`
	Target  string `json:"target"`
	Note    string `json:"note,omitempty"`
}

// PlanCheck is one preflight check.
type PlanCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// upgradeMessage is one line of the API's streamed answer: progress, then
// the plan or the report, or the error.
type upgradeMessage struct {
	Line   string                 `json:"line,omitempty"`
	Plan   *UpgradePlan           `json:"plan,omitempty"`
	Report *cluster.UpgradeReport `json:"report,omitempty"`
	Error  string                 `json:"error,omitempty"`
}

// upgrades lets one upgrade run at a time.
var upgrades sync.Mutex

var flagName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (req *UpgradeRequest) check() error {
	if req.To == "" {
		req.To = components.KubernetesVersion
	}
	if components.EtcdVersion(req.To) == "" {
		return fmt.Errorf("Kubernetes %s is not one this slipway can run (it has %s)", req.To, strings.Join(components.KubernetesVersions, ", "))
	}
	if len(req.APIServerArgs) > 32 {
		return errors.New("at most 32 API server flags")
	}
	for k, v := range req.APIServerArgs {
		if !flagName.MatchString(k) {
			return fmt.Errorf("API server flag %q: want a flag name such as feature-gates, without dashes", k)
		}
		if len(v) > 1024 || strings.ContainsAny(v, "\x00\n\r") {
			return fmt.Errorf("API server flag %s: the value must be one line of at most 1 KiB", k)
		}
	}
	return nil
}

// upgrade plans or performs a cluster upgrade for ops, streaming its
// progress. The upgrade goes on when the caller hangs up: half an
// upgrade is worse than a finished one nobody watched.
func (a *API) upgrade(w http.ResponseWriter, r *http.Request) {
	user, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if !user.Admin {
		writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf("user %s may not upgrade the cluster: only ops (an admin user) may", user.Name)})
		return
	}
	var req UpgradeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"reading the request: " + err.Error()})
		return
	}
	if err := req.check(); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	if a.Node == nil && a.Config.ClusterExisting() {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the platform targets an existing cluster, which its owner upgrades (on AKS: az aks upgrade); slipway upgrades only a cluster it runs"})
		return
	}
	if a.Node == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"the platform runs no cluster of its own"})
		return
	}
	if !upgrades.TryLock() {
		writeJSON(w, http.StatusConflict, apiError{"an upgrade is running already: wait for it to end"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	stream := &messageStream{w: w}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer upgrades.Unlock()
		ctx := context.WithoutCancel(r.Context())
		plan, rep, err := a.runUpgrade(ctx, req, stream)
		msg := upgradeMessage{Plan: plan, Report: rep}
		if err != nil {
			msg.Error = err.Error()
		}
		stream.send(msg)
	}()
	select {
	case <-done:
	case <-r.Context().Done():
		// The caller left; the upgrade finishes on its own.
	}
}

func (a *API) runUpgrade(ctx context.Context, req UpgradeRequest, progress io.Writer) (*UpgradePlan, *cluster.UpgradeReport, error) {
	cfg := a.Config
	cur, err := cluster.ReadVersions(cfg.ClusterDir(), req.To)
	if err != nil {
		return nil, nil, err
	}
	if !req.Plan {
		// A refusal needs no build and no plan.
		if err := cluster.CheckUpgrade(cur, req.To); err != nil {
			return nil, nil, err
		}
	}
	programs, err := releasePrograms(ctx, append(cur.Releases(), req.To), components.Options{CacheDir: cfg.CacheDir(), Progress: progress})
	if err != nil {
		return nil, nil, err
	}
	plan, err := PlanUpgrade(ctx, cfg, cur, req.To, programs[req.To]["api-lifecycle"])
	if err != nil {
		return nil, nil, err
	}
	if req.Plan {
		return plan, nil, nil
	}
	if !plan.Ready && !req.Force {
		return plan, nil, fmt.Errorf("preflight: %s; fix them, or upgrade anyway with --force", strings.Join(plan.problems(), "; "))
	}
	// What was available before is what must come back: a Deployment
	// that was failing already is not the upgrade's to wait for.
	c, err := release.Connect(ClusterOptions(cfg).AdminKubeconfig())
	if err != nil {
		return plan, nil, err
	}
	_, before, err := deploymentsAvailable(ctx, c.Kube, nil)
	if err != nil {
		return plan, nil, err
	}
	snapshot := filepath.Join(ClusterOptions(cfg).SnapshotDir(), fmt.Sprintf("before-%s-%s.db", req.To, time.Now().UTC().Format("20060102T150405Z")))
	rep, err := a.Node.Upgrade(ctx, cluster.Upgrade{To: req.To, Programs: programs, APIServerArgs: req.APIServerArgs, Snapshot: snapshot, Progress: progress})
	if err != nil || rep.Nothing {
		return plan, rep, err
	}
	start := time.Now()
	fmt.Fprintf(progress, "waiting for the %d Deployments that were available (CoreDNS, Flux, the apps) and every Flux object to be Ready again\n", len(before))
	if err := awaitRecovery(ctx, cfg, c, before, 5*time.Minute); err != nil {
		rep.Phases = append(rep.Phases, cluster.Phase{Name: "recovery", Took: time.Since(start), Failed: true})
		return plan, rep, fmt.Errorf("upgraded to %s, but the workloads have not recovered: %w", req.To, err)
	}
	rep.Phases = append(rep.Phases, cluster.Phase{Name: "recovery", Took: time.Since(start)})
	fmt.Fprintf(progress, "recovered in %s\n", time.Since(start).Round(10*time.Millisecond))
	return plan, rep, nil
}

// problems are the failed checks and the objects that block.
func (p *UpgradePlan) problems() []string {
	var out []string
	for _, c := range p.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	for _, o := range p.Objects {
		if o.Blocks {
			out = append(out, fmt.Sprintf("%s %s %s (%s) is not served by %s", o.APIVersion, o.Kind, o.Name, o.Source, p.Target))
		}
	}
	return out
}

// PlanUpgrade checks an upgrade of the cluster cfg describes from cur to
// target, like `kubeadm upgrade plan`: versions, the skew policy,
// preflight checks, and the objects in the fleet and in live Helm
// releases whose APIs the target deprecates or removes (by the target's
// own lifecycle data, which its api-lifecycle program prints).
func PlanUpgrade(ctx context.Context, cfg config.Config, cur cluster.Versions, target, lifecycleProgram string) (*UpgradePlan, error) {
	plan := &UpgradePlan{Current: cur.Summary(), Target: target, Available: components.KubernetesVersions}
	for _, p := range cluster.NodePrograms {
		c := PlanComponent{Name: p, Current: cur.Programs[p], Target: target}
		if p == "etcd" {
			c.Current, c.Target = components.EtcdVersion(c.Current), components.EtcdVersion(target)
			c.Note = "snapshot first; restored if the upgrade rolls back"
		}
		if p == "kubelet" || p == "kube-proxy" {
			c.Note = "after the node is drained"
		}
		plan.Components = append(plan.Components, c)
	}
	plan.Components = append(plan.Components,
		PlanComponent{Name: "kubectl", Current: cur.Programs["kube-apiserver"], Target: target},
		PlanComponent{Name: "coredns", Current: components.CoreDNSVersion, Target: components.CoreDNSVersion, Note: "its own pin"},
		PlanComponent{Name: "flux", Current: components.FluxVersion, Target: components.FluxVersion, Note: "its own pin"})

	check := func(name string, err error, okDetail string) {
		c := PlanCheck{Name: name, OK: err == nil, Detail: okDetail}
		if err != nil {
			c.Detail = err.Error()
		}
		plan.Checks = append(plan.Checks, c)
	}
	check("version skew", cluster.CheckUpgrade(cur, target), "one minor at a time: etcd, the control plane (kube-apiserver, controller-manager and scheduler), then kube-proxy and the kubelet on a drained node")
	c, err := release.Connect(ClusterOptions(cfg).AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	kube, dyn := c.Kube, c.Dyn
	nodeName := ClusterOptions(cfg).NodeName
	check("node Ready", nodeReady(ctx, kube, nodeName), "node "+nodeName+" is Ready")
	fluxDetail, fluxErr := fluxReady(ctx, cfg, dyn)
	check("Flux objects Ready", fluxErr, fluxDetail)
	space, spaceErr := snapshotSpace(ClusterOptions(cfg))
	check("disk space for a snapshot", spaceErr, space)
	runtime, runtimeErr := containerdCompatible(ctx, target)
	check("containerd", runtimeErr, runtime)

	data, err := apilifecycle.Load(ctx, lifecycleProgram)
	if err != nil {
		return nil, err
	}
	var objects []apilifecycle.Object
	if cfg.FluxEnabled() {
		if objects, err = fleetObjects(ctx, cfg); err != nil {
			return nil, err
		}
	}
	live, err := helmReleaseObjects(ctx, kube)
	if err != nil {
		return nil, err
	}
	plan.Objects = data.Check(append(objects, live...), target)
	if plan.Objects == nil {
		plan.Objects = []apilifecycle.Finding{}
	}
	plan.Ready = len(plan.problems()) == 0
	return plan, nil
}

func nodeReady(ctx context.Context, kube kubernetes.Interface, name string) error {
	node, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !cluster.NodeReady(node) {
		return fmt.Errorf("node %s is not Ready", name)
	}
	if node.Spec.Unschedulable {
		return fmt.Errorf("node %s is cordoned (an interrupted upgrade? run it again to finish)", name)
	}
	return nil
}

// fluxReady says every HelmRelease and Kustomization is Ready.
func fluxReady(ctx context.Context, cfg config.Config, dyn dynamic.Interface) (string, error) {
	if !cfg.FluxEnabled() {
		return "the platform runs without Flux", nil
	}
	objs, err := flux.List(ctx, dyn, []flux.Kind{flux.Kustomization, flux.HelmRelease}, "")
	if err != nil {
		return "", err
	}
	var bad []string
	for _, o := range objs {
		if o.Ready != "True" && !o.Suspended {
			bad = append(bad, fmt.Sprintf("%s %s/%s (%s)", o.Kind, o.Namespace, o.Name, o.Message))
		}
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("not Ready: %s", strings.Join(bad, "; "))
	}
	return fmt.Sprintf("%d Kustomizations and HelmReleases Ready", len(objs)), nil
}

// snapshotSpace checks the cluster's file system holds a snapshot of
// etcd's data twice over (the snapshot, and the restored copy on a
// rollback).
func snapshotSpace(o cluster.Options) (string, error) {
	var size int64
	_ = filepath.WalkDir(filepath.Join(o.Dir, "etcd"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				size += info.Size()
			}
		}
		return nil
	})
	var st syscall.Statfs_t
	if err := syscall.Statfs(o.Dir, &st); err != nil {
		return "", err
	}
	free := int64(st.Bavail) * st.Bsize
	need := 2*size + 64<<20
	if free < need {
		return "", fmt.Errorf("%d MiB free under %s, need %d MiB (etcd holds %d MiB)", free>>20, o.Dir, need>>20, size>>20)
	}
	return fmt.Sprintf("etcd holds %d MiB; %d MiB free", size>>20, free>>20), nil
}

var containerdVersion = regexp.MustCompile(`\b(\d+)\.(\d+)\.(\d+)`)

// containerdCompatible checks the host's containerd can run the target's
// kubelet. containerd before 1.7 does not report its cgroup driver over
// CRI; the kubelet then keeps its own setting (cgroupfs, which the node's
// containerd uses too). Kubernetes plans to drop that fallback.
func containerdCompatible(ctx context.Context, target string) (string, error) {
	out, err := exec.CommandContext(ctx, "containerd", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("containerd --version: %v", err)
	}
	m := containerdVersion.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("cannot read containerd's version from %q", strings.TrimSpace(string(out)))
	}
	version := m[0]
	if cluster.CompareVersions(version, "1.6.0") < 0 {
		return "", fmt.Errorf("containerd %s is too old for Kubernetes %s: it needs 1.6 or later", version, target)
	}
	if cluster.CompareVersions(version, "1.7.0") < 0 {
		return fmt.Sprintf("containerd %s: the kubelet keeps its own cgroup driver (cgroupfs), as this containerd reports none", version), nil
	}
	return "containerd " + version, nil
}

// fleetObjects reads every object in the fleet repository's manifests.
func fleetObjects(ctx context.Context, cfg config.Config) ([]apilifecycle.Object, error) {
	remote, err := fleetRemote(cfg)
	if err != nil {
		return nil, err
	}
	var out []apilifecycle.Object
	err = remote.Read(ctx, func(dir string) error {
		return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".git" {
				return filepath.SkipDir
			}
			if d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			out = append(out, apilifecycle.ObjectsInYAML(data, FleetRepo+":"+filepath.ToSlash(rel))...)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading the fleet: %w", err)
	}
	return out, nil
}

// helmReleaseObjects reads the objects of every deployed Helm release,
// from Helm's own records (Secrets of type helm.sh/release.v1).
func helmReleaseObjects(ctx context.Context, kube kubernetes.Interface) ([]apilifecycle.Object, error) {
	secrets, err := kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,status=deployed", FieldSelector: "type=helm.sh/release.v1"})
	if err != nil {
		return nil, fmt.Errorf("reading Helm's releases: %w", err)
	}
	var out []apilifecycle.Object
	sort.Slice(secrets.Items, func(i, j int) bool {
		a, b := secrets.Items[i], secrets.Items[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	for _, s := range secrets.Items {
		manifest, err := apilifecycle.HelmReleaseManifest(s.Data["release"])
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", s.Namespace, s.Name, err)
		}
		name := s.Labels["name"]
		out = append(out, apilifecycle.ObjectsInYAML([]byte(manifest), "helm release "+s.Namespace+"/"+name)...)
	}
	return out, nil
}

// awaitRecovery waits for the node's workloads after an upgrade: the
// Deployments that were available before, then every Flux object Ready.
func awaitRecovery(ctx context.Context, cfg config.Config, c *release.Clients, before map[string]bool, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		var waiting []string
		if waiting, _, last = deploymentsAvailable(ctx, c.Kube, before); last == nil && len(waiting) > 0 {
			last = fmt.Errorf("deployments not available yet: %s", strings.Join(waiting, ", "))
		}
		if last == nil {
			if _, last = fluxReady(ctx, cfg, c.Dyn); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return last
}

// deploymentsAvailable lists the Deployments (namespace/name) of among
// (all when nil) that are not available, and those that are.
func deploymentsAvailable(ctx context.Context, kube kubernetes.Interface, among map[string]bool) ([]string, map[string]bool, error) {
	deps, err := kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	var waiting []string
	available := map[string]bool{}
	for _, d := range deps.Items {
		name := d.Namespace + "/" + d.Name
		if among != nil && !among[name] {
			continue
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if d.Status.AvailableReplicas < want || d.Status.UpdatedReplicas < want {
			waiting = append(waiting, name)
			continue
		}
		available[name] = true
	}
	return waiting, available, nil
}

// messageStream writes the API's streamed answer, one JSON object per
// line, flushed as it goes. As an io.Writer it sends progress lines.
type messageStream struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	part bytes.Buffer
	gone bool
}

func (s *messageStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.part.Write(p)
	var lines []string
	for {
		line, err := s.part.ReadString('\n')
		if err != nil {
			s.part.WriteString(line)
			break
		}
		lines = append(lines, strings.TrimRight(line, "\n"))
	}
	s.mu.Unlock()
	for _, l := range lines {
		s.send(upgradeMessage{Line: l})
	}
	return len(p), nil
}

func (s *messageStream) send(m upgradeMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	data, _ := json.Marshal(m)
	if _, err := s.w.Write(append(data, '\n')); err != nil {
		s.gone = true
		return
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// answerEnded is what a caller is told when the platform's answer stops
// before its end: the upgrade goes on if the platform does, and what is
// done is recorded if it stopped.
const answerEnded = "the platform's answer ended early (an upgrade goes on in the platform; if the platform stopped, start it and run the command again to finish)"

// UpgradeCluster asks the running platform to plan or perform an upgrade
// of its cluster, as the user given; progress lines go to progress as
// they come.
func (p *Platform) UpgradeCluster(ctx context.Context, user, password string, req UpgradeRequest, progress io.Writer) (*UpgradePlan, *cluster.UpgradeReport, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.GitURL()+APIPath+"cluster/upgrade", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if user != "" {
		hr.SetBasicAuth(user, password)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, nil, fmt.Errorf("asking the platform (cluster upgrade): %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(res.Body, maxRequestBytes))
		return nil, nil, refusal(res, data, "cluster upgrade")
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m upgradeMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, nil, fmt.Errorf("reading the platform's answer: %w", err)
		}
		if m.Line != "" {
			fmt.Fprintln(progress, m.Line)
			continue
		}
		if m.Error != "" {
			return m.Plan, m.Report, errors.New(m.Error)
		}
		return m.Plan, m.Report, nil
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", answerEnded, err)
	}
	return nil, nil, errors.New(answerEnded)
}
