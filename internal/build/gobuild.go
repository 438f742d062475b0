package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BuildError is a compile failure; Output is what the Go toolchain printed.
type BuildError struct {
	Dir      string
	Platform string
	Output   string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("compiling %s for %s failed:\n%s", e.Dir, e.Platform, strings.TrimRight(e.Output, "\n"))
}

// goModule checks, with one call to the Go toolchain, that dir is inside a
// Go module and holds a main package.
func goModule(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "list", "-f", "{{.Name}} {{with .Module}}{{.GoMod}}{{end}}", ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		return errors.New("the Go toolchain (`go`) is not on PATH: install Go to build Go apps")
	}
	if err != nil {
		msg := stderr.String()
		if strings.Contains(msg, "go.mod file not found") || strings.Contains(msg, "not in a module") || strings.Contains(msg, "cannot find main module") {
			return notAModule(dir)
		}
		return &BuildError{Dir: dir, Platform: "any", Output: msg}
	}
	name, gomod, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if gomod == "" {
		return notAModule(dir)
	}
	if name != "main" {
		return fmt.Errorf("%s holds package %q, not a main package: point the build at the directory of the command to ship (for example ./cmd/server)", dir, name)
	}
	return nil
}

func notAModule(dir string) error {
	return fmt.Errorf("%s is not in a Go module (no go.mod in it or any parent): run `go mod init <module path>` there, or pass --static to serve it as a static site", dir)
}

// goBuild cross-compiles the main package in dir into a static, trimmed
// binary at out. Build IDs and local paths are left out so the binary
// depends only on the source and the toolchain.
func goBuild(ctx context.Context, dir, out string, p v1.Platform) error {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, "."}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Architecture == "arm" && strings.HasPrefix(p.Variant, "v") {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := output.String()
		if msg == "" {
			msg = err.Error()
		}
		return &BuildError{Dir: dir, Platform: platformString(p), Output: msg}
	}
	return nil
}

func goEnv(key string) (string, error) {
	out, err := exec.Command("go", "env", key).Output()
	return strings.TrimSpace(string(out)), err
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatforms reads "linux/amd64,linux/arm64".
func ParsePlatforms(list []string) ([]v1.Platform, error) {
	var out []v1.Platform
	seen := map[string]bool{}
	for _, s := range list {
		for _, item := range strings.Split(s, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			p, err := v1.ParsePlatform(item)
			if err != nil || p.OS == "" || p.Architecture == "" {
				return nil, fmt.Errorf("platform %q: write it as os/arch, for example linux/amd64", item)
			}
			if p.OS != "linux" {
				return nil, fmt.Errorf("platform %q: only linux images can be built", item)
			}
			if !seen[platformString(*p)] {
				seen[platformString(*p)] = true
				out = append(out, *p)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no platform given: use for example --platform linux/amd64,linux/arm64")
	}
	return out, nil
}
