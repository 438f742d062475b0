package registry_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testutil"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/registry/registrytest"
)

func blobPath(storage string, h v1.Hash) string {
	return filepath.Join(storage, "docker", "registry", "v2", "blobs", h.Algorithm, h.Hex[:2], h.Hex, "data")
}

func TestDeleteAndGarbageCollect(t *testing.T) {
	reg := registrytest.Start(t)
	admin := remote.WithAuthFromKeychain(registrytest.Keychain("admin", registrytest.AdminPassword))
	keep, _ := random.Image(2048, 2)
	drop, _ := random.Image(4096, 2)
	keepRef, _ := name.ParseReference(reg.Addr + "/dev1/app:keep")
	dropRef, _ := name.ParseReference(reg.Addr + "/dev1/app:drop")
	for ref, img := range map[name.Reference]v1.Image{keepRef: keep, dropRef: drop} {
		if err := remote.Write(ref, img, admin); err != nil {
			t.Fatal(err)
		}
	}
	dropLayers, _ := drop.Layers()
	dropDigest, _ := dropLayers[0].Digest()
	if _, err := os.Stat(blobPath(reg.StorageDir, dropDigest)); err != nil {
		t.Fatalf("pushed layer not in storage: %v", err)
	}

	imgDigest, _ := drop.Digest()
	if err := remote.Delete(dropRef.Context().Digest(imgDigest.String()), admin); err != nil {
		t.Fatalf("deleting a manifest: %v", err)
	}
	if _, err := remote.Head(dropRef, admin); err == nil {
		t.Fatal("deleted image still answers by tag")
	}

	// Nothing is kept for being recent: the image was deleted on purpose.
	none := time.Duration(0)
	res, err := reg.Server.GarbageCollect(context.Background(), registry.GCOptions{KeepRecent: &none})
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesAfter >= res.BytesBefore {
		t.Fatalf("gc freed nothing: %+v", res)
	}
	if _, err := os.Stat(blobPath(reg.StorageDir, dropDigest)); !os.IsNotExist(err) {
		t.Fatalf("unreferenced layer survived gc: %v", err)
	}
	got, err := remote.Image(keepRef, admin)
	if err != nil {
		t.Fatal(err)
	}
	if layers, _ := got.Layers(); len(layers) != 2 {
		t.Fatal("kept image lost layers")
	}
	for _, l := range mustLayers(t, got) {
		if err := readLayer(l); err != nil {
			t.Fatalf("kept image's layer unreadable after gc: %v", err)
		}
	}

	// Only an admin may ask a running registry to collect garbage.
	if _, err := registry.RequestGC(context.Background(), "http://"+reg.Addr, "dev1", registrytest.Dev1Password, registry.GCOptions{}); err == nil || !strings.Contains(err.Error(), "not an admin") {
		t.Fatalf("gc as dev1: want refusal, got %v", err)
	}
	if _, err := registry.RequestGC(context.Background(), "http://"+reg.Addr, "admin", registrytest.AdminPassword, registry.GCOptions{DryRun: true}); err != nil {
		t.Fatalf("gc as admin over HTTP: %v", err)
	}
}

// readLayer downloads a layer whole, which also verifies its digest.
func readLayer(l v1.Layer) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// TestStorageFullRefusesCleanly fills the reserve and checks that the push
// is refused with a message that says what to do, and that nothing already
// stored is harmed and no tag points at a partial image.
func TestStorageFullRefusesCleanly(t *testing.T) {
	reg := registrytest.Start(t, func(o *registry.Options) { o.MinFreeBytes = 1 << 62 })
	dev1 := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))
	img, _ := random.Image(1024, 1)
	ref, _ := name.ParseReference(reg.Addr + "/dev1/app:v1")
	err := remote.Write(ref, img, dev1)
	if statusOf(err) != http.StatusInsufficientStorage || !strings.Contains(err.Error(), "registry storage is full") {
		t.Fatalf("want 507 with a clear message, got %v", err)
	}
	if _, err := remote.Head(ref, dev1); statusOf(err) != http.StatusNotFound {
		t.Fatalf("a refused push left a tag: %v", err)
	}
}

// smallDisk mounts a tmpfs of the given size (6m) for the test. It needs
// root.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	testutil.NeedRoot(t, "mounting a tmpfs")
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("cannot mount tmpfs as root: %v %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// TestRealFullDisk runs the registry on a small tmpfs and pushes more than
// fits. It needs root for the mount.
func TestRealFullDisk(t *testing.T) {
	mnt := smallDisk(t, "6m")

	reg := registrytest.Start(t, func(o *registry.Options) {
		o.StorageDir = filepath.Join(mnt, "storage")
		o.MinFreeBytes = 1 << 20
	})
	dev1 := remote.WithAuthFromKeychain(registrytest.Keychain("dev1", registrytest.Dev1Password))
	small, _ := random.Image(512<<10, 1)
	smallRef, _ := name.ParseReference(reg.Addr + "/dev1/app:small")
	if err := remote.Write(smallRef, small, dev1); err != nil {
		t.Fatalf("a push that fits: %v", err)
	}
	big, _ := random.Image(3<<20, 3)
	bigRef, _ := name.ParseReference(reg.Addr + "/dev1/app:big")
	err := remote.Write(bigRef, big, dev1)
	if err == nil {
		t.Fatal("pushing 9 MiB into 6 MiB succeeded")
	}
	t.Logf("full disk push error: %v", err)
	if _, err := remote.Head(bigRef, dev1); statusOf(err) != http.StatusNotFound {
		t.Fatalf("the failed push left a tag: %v", err)
	}
	got, err := remote.Image(smallRef, dev1)
	if err != nil {
		t.Fatalf("an image stored before the disk filled is gone: %v", err)
	}
	for _, l := range mustLayers(t, got) {
		if err := readLayer(l); err != nil {
			t.Fatal(err)
		}
	}
}

// A chunked upload (no Content-Length) is guarded as it arrives: one that
// would eat into the reserve is refused with 507 and the message, and the
// disk keeps its reserve.
func TestChunkedUploadKeepsTheReserve(t *testing.T) {
	mnt := smallDisk(t, "8m")
	reg := registrytest.Start(t, func(o *registry.Options) {
		o.StorageDir = filepath.Join(mnt, "storage")
		o.MinFreeBytes = 5 << 20
	})
	// Start an upload, then send 4 MiB with no length (chunked), as
	// docker does.
	req, _ := http.NewRequest(http.MethodPost, "http://"+reg.Addr+"/v2/dev1/app/blobs/uploads/", nil)
	req.SetBasicAuth("dev1", registrytest.Dev1Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload: %v %v", err, resp)
	}
	resp.Body.Close()
	location := resp.Header.Get("Location")
	if !strings.HasPrefix(location, "http") {
		location = "http://" + reg.Addr + location
	}
	body := io.LimitReader(rand.Reader, 4<<20) // no Len: sent chunked
	req, _ = http.NewRequest(http.MethodPatch, location, struct{ io.Reader }{body})
	req.SetBasicAuth("dev1", registrytest.Dev1Password)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(msg), "registry storage is full") {
		t.Fatalf("a 4 MiB chunked upload into 8 MiB with 5 MiB reserved: want 507 with the message, got %d %s", resp.StatusCode, msg)
	}
	var st syscall.Statfs_t
	syscall.Statfs(mnt, &st)
	// The guard looks every MiB: the reserve is kept to within that.
	if free := int64(st.Bavail) * int64(st.Bsize); free < 4<<20 {
		t.Fatalf("only %d KiB left free after the refused upload", free>>10)
	}
}

// A collection that runs between a push's blob uploads and its manifest
// keeps the blobs (they are recent), so the push completes; once they are
// old and still unreferenced, a later collection removes them.
func TestGCKeepsThePushInFlight(t *testing.T) {
	reg := registrytest.Start(t)
	admin := remote.WithAuthFromKeychain(registrytest.Keychain("admin", registrytest.AdminPassword))
	img, _ := random.Image(4096, 2)
	ref, _ := name.ParseReference(reg.Addr + "/dev1/app:v1")
	layers, _ := img.Layers()
	for _, l := range layers {
		if err := remote.WriteLayer(ref.Context(), l, admin); err != nil {
			t.Fatal(err)
		}
	}
	// The config blob goes up too, as a client's push does.
	if err := remote.WriteLayer(ref.Context(), configLayer(t, img), admin); err != nil {
		t.Fatal(err)
	}
	res, err := reg.Server.GarbageCollect(context.Background(), registry.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeptRecent < 3 {
		t.Fatalf("the collection kept %d recent digests, want the push's 3 blobs: %+v", res.KeptRecent, res)
	}
	// The manifest arrives last, alone (as containerd and skopeo send
	// it): its blobs are all there.
	if err := remote.Put(ref, img, admin); err != nil {
		t.Fatalf("the push after a collection: %v", err)
	}
	got, err := remote.Image(ref, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range mustLayers(t, got) {
		if err := readLayer(l); err != nil {
			t.Fatalf("a layer of the push is gone: %v", err)
		}
	}

	// Blobs nobody refers to, written long ago, are collected.
	orphan, _ := random.Layer(2048, "application/vnd.oci.image.layer.v1.tar")
	if err := remote.WriteLayer(ref.Context(), orphan, admin); err != nil {
		t.Fatal(err)
	}
	od, _ := orphan.Digest()
	old := time.Now().Add(-2 * registry.DefaultKeepRecent)
	filepath.WalkDir(reg.StorageDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(p, od.Hex) {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	if _, err := reg.Server.GarbageCollect(context.Background(), registry.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(blobPath(reg.StorageDir, od)); !os.IsNotExist(err) {
		t.Fatalf("an old unreferenced blob survived: %v", err)
	}
	if _, err := remote.Image(ref, admin); err != nil {
		t.Fatalf("the pushed image after the second collection: %v", err)
	}
}

// configLayer is an image's config blob, uploaded as a blob.
func configLayer(t *testing.T, img v1.Image) v1.Layer {
	t.Helper()
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return static.NewLayer(raw, "application/vnd.oci.image.config.v1+json")
}

// A sweep cut between deleting a blob's data and its directory (kill -9)
// leaves an empty directory no sweep lists; the next collection removes
// it, and keeps the blobs that still hold data.
func TestGCRemovesTheDirectoriesACutSweepLeft(t *testing.T) {
	reg := registrytest.Start(t)
	admin := remote.WithAuthFromKeychain(registrytest.Keychain("admin", registrytest.AdminPassword))
	img, _ := random.Image(2048, 1)
	ref, _ := name.ParseReference(reg.Addr + "/dev1/app:kept")
	if err := remote.Write(ref, img, admin); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Dir(blobPath(reg.StorageDir, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}))
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	none := time.Duration(0)
	if _, err := reg.Server.GarbageCollect(context.Background(), registry.GCOptions{KeepRecent: &none}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Fatalf("the empty blob directory survived the collection: %v", err)
	}
	layers, _ := img.Layers()
	digest, _ := layers[0].Digest()
	if _, err := os.Stat(blobPath(reg.StorageDir, digest)); err != nil {
		t.Fatalf("the kept image's layer: %v", err)
	}
}
