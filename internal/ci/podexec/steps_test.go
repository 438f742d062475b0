package podexec

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarStream(t *testing.T, entries ...tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		data := "content of " + h.Name
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(data))
		}
	}
	tw.Close()
	return &buf
}

// A published artifact comes from the job's pod, which the team controls:
// its tar stream may try to write outside the artifact's folder.
func TestFetchRefusesNamesOutsideTheArtifact(t *testing.T) {
	for _, bad := range []string{"../escape", "a/../../escape", "/etc/escape"} {
		dst := filepath.Join(t.TempDir(), "drop")
		err := untar(tarStream(t, tar.Header{Name: bad, Typeflag: tar.TypeReg, Mode: 0o644}), dst, "drop")
		if err == nil || !strings.Contains(err.Error(), "outside the artifact") {
			t.Errorf("%s: err = %v", bad, err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "escape")); err == nil {
			t.Errorf("%s: written outside", bad)
		}
	}
	// A symlink is not followed or made: the file written after it lands
	// in the artifact, not where the link points.
	dst := filepath.Join(t.TempDir(), "drop")
	outside := t.TempDir()
	err := untar(tarStream(t,
		tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside},
		tar.Header{Name: "link/owned", Typeflag: tar.TypeReg, Mode: 0o644},
	), dst, "drop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "owned")); err == nil {
		t.Error("a file went through the symlink")
	}
}

func TestFetchWritesFilesAndTrees(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out.txt")
	if err := untar(tarStream(t, tar.Header{Name: "out.txt", Typeflag: tar.TypeReg, Mode: 0o644}), dst, "out.txt"); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(dst); string(data) != "content of out.txt" {
		t.Errorf("single file: %q", data)
	}
	dir := filepath.Join(t.TempDir(), "drop")
	if err := untar(tarStream(t, tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, tar.Header{Name: "./bin/app", Typeflag: tar.TypeReg, Mode: 0o755}), dir, "drop"); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "bin", "app")); string(data) != "content of ./bin/app" {
		t.Errorf("tree: %q", data)
	}
}
