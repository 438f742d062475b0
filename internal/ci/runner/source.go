package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/gitcmd"
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
	// --no-local: a clone of a repository on this machine would copy its
	// files while pushes may be landing in it; through git's own protocol
	// the clone reads one consistent state. Under a load of pushes the
	// file copy made a run's checkout fail now and then.
	if _, err := gitcmd.Run(ctx, "", nil, "clone", "--quiet", "--no-local", "--no-checkout", "--", g.Repo, dir); err != nil {
		return fmt.Errorf("cloning: %w", err)
	}
	if _, err := gitcmd.Run(ctx, dir, nil, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", g.Commit); err != nil {
		return fmt.Errorf("checking out %s: %w", g.Commit, err)
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
		if err := fsutil.CopyEntry(filepath.Join(t.Dir, rel), filepath.Join(dir, rel)); err != nil {
			return err
		}
	}
	return nil
}

func (t TreeSource) files(ctx context.Context) ([]string, error) {
	if out, err := gitcmd.Run(ctx, t.Dir, nil, "ls-files", "-z", "--cached", "--others", "--exclude-standard"); err == nil {
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
