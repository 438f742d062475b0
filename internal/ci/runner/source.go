package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Source gives a run its files.
type Source interface {
	// Checkout puts the files into dir, which exists and is empty.
	Checkout(ctx context.Context, dir string) error
	// Describe says what is checked out, for the log.
	Describe() string
}

// GitSource is a commit of a repository (a bare repository's directory on
// this machine, or a URL git can clone without asking for credentials).
type GitSource struct {
	Repo   string
	Commit string
}

func (g GitSource) Describe() string { return "commit " + g.Commit }

func (g GitSource) Checkout(ctx context.Context, dir string) error {
	if out, err := gitIn(ctx, "", "clone", "--quiet", "--no-checkout", "--", g.Repo, dir); err != nil {
		return fmt.Errorf("cloning: %s", out)
	}
	if out, err := gitIn(ctx, dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", g.Commit); err != nil {
		return fmt.Errorf("checking out %s: %s", g.Commit, out)
	}
	return nil
}

// TreeSource is a working tree as it is now, uncommitted changes
// included: the files git tracks or would track (not the ignored ones),
// or every file when the directory is not a git repository.
type TreeSource struct {
	Dir string
}

func (t TreeSource) Describe() string { return "the working tree " + t.Dir }

func (t TreeSource) Checkout(ctx context.Context, dir string) error {
	files, err := t.files(ctx)
	if err != nil {
		return err
	}
	for _, rel := range files {
		if err := copyEntry(filepath.Join(t.Dir, rel), filepath.Join(dir, rel)); err != nil {
			return err
		}
	}
	return nil
}

func (t TreeSource) files(ctx context.Context) ([]string, error) {
	if out, err := gitIn(ctx, t.Dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard"); err == nil {
		var files []string
		for _, f := range strings.Split(out, "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(t.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(t.Dir, p)
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

// copyEntry copies a file or symlink, keeping its mode; a file git lists
// but that was deleted in the tree is skipped.
func copyEntry(src, dst string) error {
	info, err := os.Lstat(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if info.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a file or a directory (for publish).
func copyTree(src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return copyEntry(src, filepath.Join(dst, filepath.Base(src)))
	}
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return copyEntry(p, filepath.Join(dst, rel))
	})
}

func gitIn(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)), err
	}
	return string(out), nil
}
