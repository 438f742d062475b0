// Package fsutil copies files and trees the way the line needs them
// copied: modes kept, symbolic links copied as links (never followed, so a
// link cannot pull a file from outside the tree into a copy).
package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// CopyTree copies a file or a directory tree into dst (a file lands at
// dst/BASE). Entries that are neither files, directories nor links (a
// socket, a device) are skipped.
func CopyTree(src, dst string) error {
	info, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return CopyEntry(src, filepath.Join(dst, filepath.Base(src)))
	}
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return CopyEntry(p, filepath.Join(dst, rel))
	})
}

// CopyEntry copies one file or symbolic link, keeping its mode. A source
// that no longer exists (a file git lists but that was deleted in the
// work tree) is skipped.
func CopyEntry(src, dst string) error {
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
