// Package podexec runs pipeline jobs in pods: each job gets a fresh pod in
// its team's CI namespace, running as the team's CI account, and every
// step runs in it through the Kubernetes exec API with its output
// streamed back into the run's log. Deleting the pod ends the job and
// everything it started.
package podexec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/utils/ptr"

	"github.com/slipway-dev/slipway/internal/ci/runner"
)

// Labels every job pod carries; Cleanup finds leftovers by them.
const (
	LabelJob = "slipway.dev/job"
	LabelRun = "slipway.dev/run"
	// LabelIdle marks a pod made ahead of a job (Executor.Idle), not yet
	// given to one.
	LabelIdle = "slipway.dev/idle"
)

// Paths inside a job pod.
const (
	Workspace = "/work"
	// CacheDir is where the team's cache volume is mounted (Go's build
	// and module caches).
	CacheDir = "/cache"
	// Kubeconfig is the job's kubeconfig: the pod's own service account
	// token, which is the team's CI account.
	Kubeconfig = Workspace + "/.slipway/kubeconfig"
	// TrustedCA is where a job finds the CAs it trusts (Executor.TrustedCA):
	// SSL_CERT_FILE and GIT_SSL_CAINFO point at it.
	TrustedCA = Workspace + "/.slipway/ca.crt"
	// UID is the non-root user jobs run as.
	UID = 65532
)

// Executor starts each job as a pod. Config must be allowed to create
// pods and exec into them in every team's CI namespace: the platform's.
type Executor struct {
	Config *rest.Config
	Client kubernetes.Interface
	// Namespace is the CI namespace of a pipeline ("dev1/hello" -> dev1-ci).
	Namespace func(pipeline string) string
	// WorkNamespace is the namespace the job's kubeconfig starts in
	// (dev1-staging).
	WorkNamespace func(pipeline string) string
	// ServiceAccount is the CI account in that namespace.
	ServiceAccount string
	// DefaultImage is the image of a job without container:; it may block
	// until the platform has pushed it.
	DefaultImage func(ctx context.Context) (string, error)
	// CheckImage refuses a container: image the team may not pull. Nil
	// allows any.
	CheckImage func(ctx context.Context, pipeline, image string) error
	// Prepare readies a namespace before its first job (the cache
	// volume); nil does nothing. CacheClaim, when set, is the claim it
	// makes, mounted at CacheDir.
	Prepare    func(ctx context.Context, namespace string) error
	CacheClaim string
	// CacheSeed, when set, opens a gzipped tar of the Go build cache a
	// team's cache starts from (its entries at the root): a job of the
	// default image whose cache has no go-build yet unpacks it there
	// before its first step. For caches the platform cannot fill itself,
	// such as claims on a cluster whose nodes cannot mount its
	// directories.
	CacheSeed func() (io.ReadCloser, error)
	// Resources of the job container; zero values get defaults.
	Resources corev1.ResourceRequirements
	// DefaultGo is the Go version of the default image (go1.26.8), which
	// GoTool@0 then checks without running go in the pod.
	DefaultGo string
	// TrustedCA, when set, is written to TrustedCA in every job's
	// workspace: the platform's CA, which its registry and git server
	// present (jobs in pods reach nothing else).
	TrustedCA []byte
	// Idle is how many idle pods of the default image wait in each CI
	// namespace that has run a job: the next job there takes one instead
	// of waiting for a pod to start. A pod still serves one job only and
	// is deleted after it. The pool is topped up when a job ends, not
	// while one runs: starting a pod takes CPU that a build on a small
	// machine misses (a warm `go test` took half as long again while a
	// pod started beside it). Two cover the next job of the same run
	// while the pod for the one after starts.
	Idle int

	mu   sync.Mutex
	idle map[string]*idlePool
}

// idlePool is a namespace's idle pods.
type idlePool struct {
	ready  []string
	making int
}

var _ runner.Executor = (*Executor)(nil)

// StartJob creates the job's pod and waits until it runs.
func (e *Executor) StartJob(ctx context.Context, spec runner.JobSpec) (runner.JobHost, error) {
	ns := e.Namespace(spec.Run.Pipeline)
	image := spec.Image
	if image == "" {
		var err error
		if image, err = e.DefaultImage(ctx); err != nil {
			return nil, fmt.Errorf("the default job image: %w", err)
		}
	} else if e.CheckImage != nil {
		if err := e.CheckImage(ctx, spec.Run.Pipeline, image); err != nil {
			return nil, fmt.Errorf("container: %s: %w", image, err)
		}
	}
	if err := e.waitAccount(ctx, ns, spec.Log); err != nil {
		return nil, err
	}
	if e.Prepare != nil {
		if err := e.Prepare(ctx, ns); err != nil {
			return nil, fmt.Errorf("preparing %s: %w", ns, err)
		}
	}
	j := &job{e: e, ns: ns, name: ""}
	if spec.Image == "" {
		j.goVersion = e.DefaultGo
		if e.Idle > 0 {
			j.name = e.takeIdle(ctx, ns, spec)
			j.topUp = func() { e.topUp(ns, image) }
		}
	}
	if j.name == "" {
		created, err := e.Client.CoreV1().Pods(ns).Create(ctx, e.pod(ns, spec, image), metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("creating the job pod in %s: %w", ns, err)
		}
		j.name = created.Name
	}
	fmt.Fprintf(spec.Log, "job pod %s/%s, image %s\n", ns, j.name, image)
	if err := j.waitRunning(ctx); err != nil {
		j.Close()
		return nil, err
	}
	if err := j.setUp(ctx, e.WorkNamespace(spec.Run.Pipeline)); err != nil {
		j.Close()
		return nil, err
	}
	if e.CacheSeed != nil && j.goVersion != "" {
		if err := j.seedCache(ctx, spec.Log); err != nil {
			j.Close()
			return nil, err
		}
	}
	return j, nil
}

// takeIdle gives the job one of the namespace's idle pods, relabelled as
// its own, or "" when there is none.
func (e *Executor) takeIdle(ctx context.Context, ns string, spec runner.JobSpec) string {
	e.mu.Lock()
	var name string
	if p := e.idle[ns]; p != nil && len(p.ready) > 0 {
		name, p.ready = p.ready[0], p.ready[1:]
	}
	e.mu.Unlock()
	if name == "" {
		return ""
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null,%q:%q},"annotations":{"slipway.dev/pipeline":%q,"slipway.dev/commit":%q}}}`,
		LabelIdle, LabelRun, strconv.Itoa(spec.Run.ID), spec.Run.Pipeline, spec.Run.Commit)
	p, err := e.Client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
		(&job{e: e, ns: ns, name: name}).Close()
		return ""
	}
	return name
}

// topUp starts, in the background, the idle pods a namespace lacks.
func (e *Executor) topUp(ns, image string) {
	e.mu.Lock()
	if e.idle == nil {
		e.idle = map[string]*idlePool{}
	}
	p := e.idle[ns]
	if p == nil {
		p = &idlePool{}
		e.idle[ns] = p
	}
	n := e.Idle - len(p.ready) - p.making
	if n <= 0 {
		e.mu.Unlock()
		return
	}
	p.making += n
	e.mu.Unlock()
	for range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pod := e.pod(ns, runner.JobSpec{Run: &runner.Run{}}, image)
			pod.Name = "job-ready-" + pod.Name[strings.LastIndex(pod.Name, "-")+1:]
			delete(pod.Labels, LabelRun)
			pod.Labels[LabelIdle] = "true"
			pod.Annotations = nil
			created, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			e.mu.Lock()
			defer e.mu.Unlock()
			p.making--
			if err == nil {
				p.ready = append(p.ready, created.Name)
			}
		}()
	}
}

// waitAccount waits for the team's CI account: right after `tenant
// create`, Flux may not have applied it yet.
func (e *Executor) waitAccount(ctx context.Context, ns string, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	said := false
	for {
		_, err := e.Client.CoreV1().ServiceAccounts(ns).Get(ctx, e.ServiceAccount, metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			return fmt.Errorf("reading %s/%s: %w", ns, e.ServiceAccount, err)
		}
		if !said {
			fmt.Fprintf(log, "waiting for the team's CI account %s/%s (made by `slipway tenant create`, applied by Flux)\n", ns, e.ServiceAccount)
			said = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the team has no CI account %s/%s: ops onboards the team with `slipway tenant create`", ns, e.ServiceAccount)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (e *Executor) pod(ns string, spec runner.JobSpec, image string) *corev1.Pod {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	res := e.Resources
	if res.Requests == nil {
		res.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")}
	}
	if res.Limits == nil {
		res.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}
	}
	volumes := []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mounts := []corev1.VolumeMount{{Name: "work", MountPath: Workspace}}
	// Without a claim the caches last one job: the directory must still
	// be writable.
	cache := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if e.CacheClaim != "" {
		cache = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: e.CacheClaim}}
	}
	volumes = append(volumes, corev1.Volume{Name: "cache", VolumeSource: cache})
	mounts = append(mounts, corev1.VolumeMount{Name: "cache", MountPath: CacheDir})
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("job-%d-%d-%d-%s", spec.Run.ID, spec.Stage, spec.Job, hex.EncodeToString(suffix)),
			Namespace: ns,
			Labels:    map[string]string{LabelJob: "true", LabelRun: strconv.Itoa(spec.Run.ID)},
			Annotations: map[string]string{
				"slipway.dev/pipeline": spec.Run.Pipeline,
				"slipway.dev/commit":   spec.Run.Commit,
			},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:            e.ServiceAccount,
			RestartPolicy:                 corev1.RestartPolicyNever,
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](UID),
				RunAsGroup:     ptr.To[int64](UID),
				FSGroup:        ptr.To[int64](UID),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:  "job",
				Image: image,
				// The steps run through exec; the container only waits,
				// as a bash that reaps the orphans steps leave behind.
				Command:      []string{"/bin/bash", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"},
				WorkingDir:   Workspace,
				Resources:    res,
				VolumeMounts: mounts,
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: volumes,
		},
	}
}

// Cleanup deletes every job pod: after a crash of the platform none of
// them belongs to a run in progress.
func (e *Executor) Cleanup(ctx context.Context) (int, error) {
	pods, err := e.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: LabelJob + "=true"})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range pods.Items {
		err := e.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		if err != nil && !apierrors.IsNotFound(err) {
			return n, err
		}
		n++
	}
	return n, nil
}

// job is one running job pod.
type job struct {
	e        *Executor
	ns, name string
	steps    int
	// topUp, when set, refills the namespace's idle pods after the job.
	topUp func()
	// goVersion is the image's Go, when known.
	goVersion string
}

// GoVersion is the Go toolchain of the job's image, "" when unknown.
func (j *job) GoVersion() string { return j.goVersion }

func (j *job) Workspace() string { return Workspace }

// Close deletes the pod at once: whatever the job started ends with it.
func (j *job) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = j.e.Client.CoreV1().Pods(j.ns).Delete(ctx, j.name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if j.topUp != nil {
		j.topUp()
	}
}

// waitRunning waits for the container to run, or says why it does not.
func (j *job) waitRunning(ctx context.Context) error {
	for {
		p, err := j.e.Client.CoreV1().Pods(j.ns).Get(ctx, j.name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("the job pod %s/%s: %w", j.ns, j.name, err)
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return fmt.Errorf("the job pod %s/%s ended before the job started: %s %s", j.ns, j.name, p.Status.Reason, p.Status.Message)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil {
				return nil
			}
			if w := cs.State.Waiting; w != nil {
				switch w.Reason {
				case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
					return fmt.Errorf("the job pod %s/%s cannot start: %s: %s", j.ns, j.name, w.Reason, w.Message)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the job pod %s/%s did not start: %w", j.ns, j.name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setUp lays out the workspace and the job's kubeconfig, which starts in
// namespace.
func (j *job) setUp(ctx context.Context, namespace string) error {
	files := []file{
		{name: "s/", mode: 0o755}, {name: "a/", mode: 0o755}, {name: "b/", mode: 0o755}, {name: "tmp/", mode: 0o755},
		{name: ".slipway/", mode: 0o700},
		{name: ".slipway/kubeconfig", mode: 0o600, data: kubeconfig(namespace)},
	}
	if len(j.e.TrustedCA) > 0 {
		files = append(files, file{name: strings.TrimPrefix(TrustedCA, Workspace+"/"), mode: 0o644, data: j.e.TrustedCA})
	}
	code, err := j.exec(ctx, []string{"tar", "-x", "-m", "-C", Workspace}, tarOf(files), nil, nil)
	if err == nil && code != 0 {
		err = fmt.Errorf("tar exited with %d", code)
	}
	if err != nil {
		return fmt.Errorf("setting up the job's workspace: %w", err)
	}
	return nil
}

// seedScript unpacks the seed beside the cache and moves it into place
// whole: a job stopped halfway leaves no half-filled cache behind, and of
// two jobs seeding at once, the second's move fails and changes nothing.
const seedScript = `set -e
d=$(mktemp -d ` + CacheDir + `/.seed-XXXXXX)
trap 'rm -rf "$d"' EXIT
tar -xz -C "$d" --no-same-owner
mv -T "$d" ` + CacheDir + `/go-build 2>/dev/null || true`

// seedCache fills a cache that has no Go build cache yet from the
// executor's seed, streamed into the pod.
func (j *job) seedCache(ctx context.Context, log io.Writer) error {
	// An exec must attach at least one stream.
	var stderr bytes.Buffer
	code, err := j.exec(ctx, []string{"test", "-e", CacheDir + "/go-build"}, nil, nil, &stderr)
	if err != nil || code == 0 {
		return err
	}
	seed, err := j.e.CacheSeed()
	if err != nil {
		return fmt.Errorf("the Go cache's seed: %w", err)
	}
	defer seed.Close()
	fmt.Fprintln(log, "seeding the team's new Go cache (the standard library and the example apps' dependencies, compiled)")
	start := time.Now()
	stderr.Reset()
	code, err = j.exec(ctx, []string{"bash", "-c", seedScript}, seed, nil, &stderr)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return fmt.Errorf("seeding the Go cache: %w", err)
	}
	fmt.Fprintf(log, "seeded the Go cache in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// kubeconfig reads the cluster as the pod's own service account.
func kubeconfig(namespace string) []byte {
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
	kc := clientcmdapi.NewConfig()
	kc.Clusters["slipway"] = &clientcmdapi.Cluster{Server: "https://kubernetes.default.svc", CertificateAuthority: sa + "/ca.crt"}
	kc.AuthInfos["ci"] = &clientcmdapi.AuthInfo{TokenFile: sa + "/token"}
	kc.Contexts["slipway"] = &clientcmdapi.Context{Cluster: "slipway", AuthInfo: "ci", Namespace: namespace}
	kc.CurrentContext = "slipway"
	data, _ := clientcmd.Write(*kc) // a config made here always encodes
	return data
}

// exec runs argv in the job container and returns its exit status.
func (j *job) exec(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	req := j.e.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(j.ns).Name(j.name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "job", Command: argv, Stdin: stdin != nil, Stdout: stdout != nil, Stderr: stderr != nil}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(j.e.Config, http.MethodGet, req.URL().String())
	if err != nil {
		return -1, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(j.e.Config, http.MethodPost, req.URL())
	if err != nil {
		return -1, err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return -1, err
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		return ce.Code, nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
