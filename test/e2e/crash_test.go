package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestKillNineLosesNothing kills `slipway up` with SIGKILL while a step
// runs (holding the team's CI password in its environment), a run waits
// behind it, a push is half sent and a registry upload is half done. After
// the restart: the running run is marked interrupted and what its step
// started is gone, the waiting push runs, the half push left the
// repository as it was and pushes work, the registry keeps what it had
// and takes new pushes, garbage collection runs, and the password is in
// no file outside the platform's credentials.
func TestKillNineLosesNothing(t *testing.T) {
	e := newEnv(t)
	regAddr, gitAddr := freeAddr(t), freeAddr(t)
	tmp := t.TempDir()
	e.vars = append(e.vars, "SLIPWAY_GIT_ADDR="+gitAddr, "SLIPWAY_REGISTRY_ADDR="+regAddr, "TMPDIR="+tmp)
	up := e.startUp()
	dev1 := strings.TrimSpace(e.mustRun("", "user", "set", "dev1", "--push", "dev1/").stdout)
	e.mustRun("", "repo", "create", "dev1/app")
	clone := filepath.Join(t.TempDir(), "app")
	gitCmd(t, "", "clone", "--quiet", "-c", "http.sslCAInfo="+e.caFile(), fmt.Sprintf("https://dev1:%s@%s/dev1/app.git", dev1, gitAddr), clone)

	// What the registry holds before the crash.
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	auth := []remote.Option{remote.WithAuth(&authn.Basic{Username: "admin", Password: admin}), remote.WithTransport(e.transport())}
	stored, _ := random.Image(4096, 2)
	storedRef, _ := name.ParseReference(regAddr+"/dev1/app:stored", name.Insecure)
	if err := remote.Write(storedRef, stored, auth...); err != nil {
		t.Fatal(err)
	}

	// A step that runs long, with a child, and the CI password in its
	// environment; a push waiting behind it.
	marker := fmt.Sprintf("slipway-crash-%d", time.Now().UnixNano())
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), `steps:
- script: |
    bash -c 'exec -a `+marker+` sleep 600' &
    echo "$PW" > /dev/null
    wait
  displayName: Long
  env:
    PW: $(slipway.registry.password)
`)
	long := gitPush(t, clone, "a long step")
	e.waitRun(t, long, func(r runRecord) bool {
		return r.Status == "running" && len(r.Stages) > 0 && r.Stages[0].Jobs[0].Steps[1].Status == "running"
	})
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), "steps:\n- script: echo quick\n  displayName: Quick\n")
	waiting := gitPush(t, clone, "a quick one, queued behind")
	e.waitRun(t, waiting, func(r runRecord) bool { return r.Status == "queued" })
	ciPassword := strings.TrimSpace(readFile(t, filepath.Join(e.home, "pipelines", "credentials", "ci-dev1")))
	child := processesNamed(marker)
	if len(child) != 1 {
		t.Fatalf("the step's child: %v", child)
	}

	// A registry upload half done.
	upload := startUpload(t, e.client(), regAddr, admin)
	upload.send(t, bytes.Repeat([]byte("x"), 1<<20))

	// A push half sent: its journal record is written, the pack is not.
	headBefore := strings.TrimSpace(gitCmd(t, clone, "ls-remote", "origin", "refs/heads/main"))
	halfPush := stalledReceivePack(t, e.transport().TLSClientConfig, gitAddr, "dev1", dev1, "dev1/app")
	defer halfPush.Close()
	waitFor(t, "the half push's journal record", func() bool {
		recs, _ := filepath.Glob(filepath.Join(e.home, "git", ".pushes", "*.json"))
		return len(recs) == 1
	})

	if err := up.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	up.wait(t)
	up = e.startUp()

	// The run cut off is marked, the waiting push runs, once.
	cut := e.waitRun(t, long, finished)
	if cut.Status != "failed" || !strings.Contains(cut.Error, "interrupted") {
		t.Fatalf("the run cut off: %+v", cut)
	}
	ran := e.waitRun(t, waiting, func(r runRecord) bool { return r.Status == "succeeded" })
	n := 0
	for _, r := range e.runs(t) {
		if r.Commit == waiting && r.Status == "succeeded" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the waiting push ran %d times (run %d)", n, ran.ID)
	}
	waitFor(t, "the crashed step's child to be ended", func() bool { return len(processesNamed(marker)) == 0 })

	// The half push changed nothing; its record is gone; pushes work.
	if head := strings.TrimSpace(gitCmd(t, clone, "ls-remote", "origin", "refs/heads/main")); head != headBefore {
		t.Fatalf("main moved from %q to %q by a push that never arrived", headBefore, head)
	}
	if recs, _ := filepath.Glob(filepath.Join(e.home, "git", ".pushes", "*.json")); len(recs) != 0 {
		t.Fatalf("journal records left after the restart: %v", recs)
	}
	if out, err := exec.Command("git", "--git-dir", filepath.Join(e.home, "git", "dev1", "app.git"), "fsck", "--no-dangling").CombinedOutput(); err != nil {
		t.Fatalf("git fsck: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(clone, "azure-pipelines.yml"), "steps:\n- script: echo after\n  displayName: After\n")
	e.waitRun(t, gitPush(t, clone, "after the restart"), func(r runRecord) bool { return r.Status == "succeeded" })

	// The registry has what it had, takes new pushes, and collects.
	if _, err := remote.Image(storedRef, auth...); err != nil {
		t.Fatalf("the image stored before the crash: %v", err)
	}
	again, _ := random.Image(4096, 2)
	againRef, _ := name.ParseReference(regAddr+"/dev1/app:again", name.Insecure)
	if err := remote.Write(againRef, again, auth...); err != nil {
		t.Fatalf("a push after the restart: %v", err)
	}
	e.mustRun("", "registry", "gc", "--keep-recent", "0")
	for _, ref := range []name.Reference{storedRef, againRef} {
		img, err := remote.Image(ref, auth...)
		if err == nil {
			_, err = img.RawConfigFile()
		}
		if err != nil {
			t.Fatalf("%s after a collection: %v", ref, err)
		}
	}

	// The CI password is on disk only where the platform keeps it.
	allowed := filepath.Join(e.home, "pipelines", "credentials")
	for _, root := range []string{tmp, e.home} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() || strings.HasPrefix(p, allowed+"/") {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(ciPassword)) {
				t.Errorf("the CI password is in %s", p)
			}
			return nil
		})
	}
	e.mustRun("", "down")
	up.wait(t)
}

// processesNamed lists the PIDs whose command line starts with name.
func processesNamed(name string) []string {
	var pids []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		data, err := os.ReadFile(c)
		if err == nil && bytes.HasPrefix(data, []byte(name+"\x00")) {
			pids = append(pids, filepath.Base(filepath.Dir(c)))
		}
	}
	return pids
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stalledReceivePack opens a push to repo and sends no pack.
func stalledReceivePack(t *testing.T, tlsConfig *tls.Config, addr, user, password, repo string) net.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /%s.git/git-receive-pack HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 100000\r\n\r\n",
		repo, addr, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	return conn
}

// upload is a blob upload session of the registry's API.
type upload struct {
	client                   *http.Client
	location, addr, password string
}

func startUpload(t *testing.T, client *http.Client, addr, password string) *upload {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/v2/dev1/app/blobs/uploads/", nil)
	req.SetBasicAuth("admin", password)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = "https://" + addr + loc
	}
	return &upload{client: client, location: loc, addr: addr, password: password}
}

func (u *upload) send(t *testing.T, chunk []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, u.location, bytes.NewReader(chunk))
	req.SetBasicAuth("admin", u.password)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := u.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("sending a chunk: %s", resp.Status)
	}
}

// TestKillNineDuringGC kills `slipway up` in the middle of a garbage
// collection's sweep: after the restart the images kept are whole, pushes
// work, and a second collection finishes what the first began.
func TestKillNineDuringGC(t *testing.T) {
	e := newEnv(t)
	regAddr := freeAddr(t)
	e.vars = append(e.vars, "SLIPWAY_REGISTRY_ADDR="+regAddr)
	up := e.startUp()
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: "admin", Password: admin}), remote.WithTransport(e.transport())}
	kept, _ := random.Image(4096, 2)
	keptRef, _ := name.ParseReference(regAddr + "/dev1/app:kept")
	if err := remote.Write(keptRef, kept, opts...); err != nil {
		t.Fatal(err)
	}
	e.mustRun("", "down")
	up.wait(t)

	// Many blobs nothing refers to, as aborted pushes leave them, so the
	// sweep lasts long enough to be cut.
	blobs := filepath.Join(e.home, "registry", "docker", "registry", "v2", "blobs", "sha256")
	base := countBlobs(t, blobs) // the kept image's manifest, config and layers
	for i := 0; i < 20000; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprint("dangling ", i)))
		hex := fmt.Sprintf("%x", sum)
		dir := filepath.Join(blobs, hex[:2], hex)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data"), []byte(fmt.Sprint("dangling ", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := countBlobs(t, blobs)

	up = e.startUp()
	gc := exec.Command(slipwayBin, "registry", "gc", "--keep-recent", "0")
	gc.Env = append(os.Environ(), e.vars...)
	if err := gc.Start(); err != nil {
		t.Fatal(err)
	}
	gcDone := make(chan error, 1)
	go func() { gcDone <- gc.Wait() }()
	waitFor(t, "the sweep to begin", func() bool { return countBlobs(t, blobs) < before })
	if err := up.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	up.wait(t)
	cut := countBlobs(t, blobs)
	if err := <-gcDone; err == nil && cut > base {
		t.Fatalf("slipway registry gc said it finished, %d blobs left", cut)
	}
	t.Logf("blobs: %d before, %d when the sweep was cut", before, cut)

	up = e.startUp()
	img, err := remote.Image(keptRef, opts...)
	if err != nil {
		t.Fatalf("the kept image after the cut collection: %v", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("a kept layer: %v", err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("reading a kept layer: %v", err)
		}
		rc.Close()
	}
	again, _ := random.Image(4096, 1)
	againRef, _ := name.ParseReference(regAddr + "/dev1/app:again")
	if err := remote.Write(againRef, again, opts...); err != nil {
		t.Fatalf("a push after the cut collection: %v", err)
	}
	e.mustRun("", "registry", "gc", "--keep-recent", "0")
	// The kept image and the new one (manifest, config and a layer) are
	// all that is left.
	if left := countBlobs(t, blobs); left != base+3 {
		t.Fatalf("%d blobs after the second collection, want %d", left, base+3)
	}
	if _, err := remote.Image(againRef, opts...); err != nil {
		t.Fatalf("the image pushed after the cut: %v", err)
	}
	e.mustRun("", "down")
	up.wait(t)
}

// countBlobs counts the registry's blob directories.
func countBlobs(t *testing.T, root string) int {
	t.Helper()
	n := 0
	prefixes, _ := os.ReadDir(root)
	for _, p := range prefixes {
		entries, _ := os.ReadDir(filepath.Join(root, p.Name()))
		n += len(entries)
	}
	return n
}
