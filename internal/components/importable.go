package components

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Go will not import a package named main, and a module's internal
// packages can be imported only from inside that module. A program that
// runs several upstream programs from one executable therefore needs each
// upstream main package under another name, inside its own module: these
// rewrite a copy of that package's files.
var (
	packageMain = regexp.MustCompile(`(?m)^package main$`)
	funcMain    = regexp.MustCompile(`(?m)^func main\(\) \{$`)
)

// makeImportable copies each module in mods (module path → package name)
// from the module cache into dir/importable/NAME, renames its root
// package from main to NAME with its main function exported as Main, and
// replaces the module with the copy in the pinning module written out in
// dir. Only the copy changes; the module cache is read-only to the go
// command, which refuses overlays of its files.
func makeImportable(ctx context.Context, dir string, mods map[string]string) error {
	for _, mod := range slices.Sorted(maps.Keys(mods)) {
		name := mods[mod]
		from, err := moduleDir(ctx, dir, mod)
		if err != nil {
			return err
		}
		into := filepath.Join(dir, "importable", name)
		if err := copyTree(from, into); err != nil {
			return fmt.Errorf("copying module %s: %w", mod, err)
		}
		if err := exportMain(into, name); err != nil {
			return fmt.Errorf("module %s: %w", mod, err)
		}
		cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-replace="+mod+"=./importable/"+name)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("replacing module %s: %v: %s", mod, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// moduleDir is where the go command keeps a module the pinning module in
// dir requires: the directory a replace names, or the module cache's
// copy, which is downloaded first when the cache lacks it (on a new
// machine, before any build has fetched it).
func moduleDir(ctx context.Context, dir, mod string) (string, error) {
	list := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", mod)
	list.Dir = dir
	list.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := list.Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		return strings.TrimSpace(string(out)), nil
	}
	download := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
	download.Dir = dir
	download.Env = list.Env
	out, err := download.Output()
	var info struct{ Dir, Error string }
	if jsonErr := json.Unmarshal(out, &info); jsonErr != nil && err == nil {
		err = jsonErr
	}
	if info.Error != "" {
		return "", fmt.Errorf("downloading module %s: %s", mod, info.Error)
	}
	if err != nil || info.Dir == "" {
		return "", fmt.Errorf("downloading module %s: %v", mod, err)
	}
	return info.Dir, nil
}

// exportMain renames the package in dir from main to name and its main
// function to Main (copyTree left its tests out). A package that does not
// look as expected is an error, so that a new pin whose layout changed
// fails its build instead of building something else.
func exportMain(dir, name string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	mains := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(packageMain.FindAllIndex(src, -1)) != 1 {
			return fmt.Errorf("%s: want one `package main` clause", e.Name())
		}
		src = packageMain.ReplaceAll(src, []byte("package "+name))
		mains += len(funcMain.FindAllIndex(src, -1))
		src = funcMain.ReplaceAll(src, []byte("func Main() {"))
		if err := os.WriteFile(p, src, 0o644); err != nil {
			return err
		}
	}
	if mains != 1 {
		return fmt.Errorf("want one `func main() {` in its root package, found %d", mains)
	}
	return nil
}

// copyTree copies the regular files under from into into, but for Go
// tests, writable (the module cache's are read-only).
func copyTree(from, into string) error {
	_ = os.RemoveAll(into)
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		target := filepath.Join(into, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		// Tests are not built, and a root package's tests would still
		// be named main.
		if !d.Type().IsRegular() || strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
