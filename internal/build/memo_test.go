package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRememberedFileSumFollowsTheFile: the sum is read from the memo for
// the same file, and a new file at the same path (a rebuilt slipway) is
// hashed again; only the current file's memo is kept.
func TestRememberedFileSumFollowsTheFile(t *testing.T) {
	dir, bin := t.TempDir(), filepath.Join(t.TempDir(), "slipway")
	if err := os.WriteFile(bin, []byte("one"), 0o755); err != nil {
		t.Fatal(err)
	}
	first, err := rememberedFileSum(dir, bin)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := fileSum(bin); first != want {
		t.Fatalf("sum %s, want %s", first, want)
	}
	memos, _ := filepath.Glob(filepath.Join(dir, "sums", "*"))
	if len(memos) != 1 {
		t.Fatalf("memos %v, want one", memos)
	}
	// The memo is what is read for the same file: a memo saying
	// otherwise is believed (which is how the test sees it is used).
	fake := strings.Repeat("a", 64)
	if err := os.WriteFile(memos[0], []byte(fake), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := rememberedFileSum(dir, bin); got != fake {
		t.Fatalf("the memo was not used: %s", got)
	}
	tmp := bin + ".new"
	if err := os.WriteFile(tmp, []byte("two"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	second, err := rememberedFileSum(dir, bin)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := fileSum(bin); second != want || second == first {
		t.Fatalf("after a rebuild: %s, want %s", second, want)
	}
	if memos, _ := filepath.Glob(filepath.Join(dir, "sums", "*")); len(memos) != 1 {
		t.Fatalf("memos after a rebuild %v, want one", memos)
	}
}
