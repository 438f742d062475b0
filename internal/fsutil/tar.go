package fsutil

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// TarOptions say how TarTree writes a tree.
type TarOptions struct {
	// Prefix is put before every name ("usr/local/go"); empty writes
	// names relative to the tree, without an entry for its root.
	Prefix string
	// Skip names top-level directories to leave out.
	Skip map[string]bool
	// UID and GID own every entry.
	UID, GID int
	// ModTime, when set, dates every entry (for reproducible layers).
	ModTime time.Time
}

// TarTree writes dir's regular files, directories and symlinks (as links,
// never followed) to tw.
func TarTree(tw *tar.Writer, dir string, o TarOptions) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && o.Skip[rel] {
			return filepath.SkipDir
		}
		if rel == "." && o.Prefix == "" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if o.Prefix != "" {
			h.Name = o.Prefix
			if rel != "." {
				h.Name += "/" + filepath.ToSlash(rel)
			}
		}
		if info.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = o.UID, o.GID, "", ""
		if !o.ModTime.IsZero() {
			h.ModTime, h.AccessTime, h.ChangeTime = o.ModTime, time.Time{}, time.Time{}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}
