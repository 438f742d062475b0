package platform

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Subjects come from the bare repository; a commit it does not have, or
// a name that is no commit ID, gets none and spoils nothing.
func TestCommitSubjects(t *testing.T) {
	gitDir := t.TempDir()
	repo := filepath.Join(gitDir, "dev1", "hello.git")
	work := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=dev1", "-c", "user.email=dev1@example.com"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git(repo, "init", "--quiet", "--bare")
	git(work, "init", "--quiet")
	git(work, "commit", "--quiet", "--allow-empty", "-m", "first version\n\nwith a body")
	first := git(work, "rev-parse", "HEAD")
	git(work, "commit", "--quiet", "--allow-empty", "-m", "second version")
	second := git(work, "rev-parse", "HEAD")
	git(work, "push", "--quiet", repo, "HEAD:refs/heads/main")

	missing := strings.Repeat("0", 40)
	got := commitSubjects(gitDir)("dev1/hello", []string{second, missing, "--all", first})
	if len(got) != 2 || got[first] != "first version" || got[second] != "second version" {
		t.Errorf("subjects: %v", got)
	}
	if got := commitSubjects(gitDir)("../dev1/hello", []string{first}); len(got) != 0 {
		t.Errorf("a repository outside the git directory: %v", got)
	}
}
