package podexec

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/fsutil"
)

// stepWrapper starts a step in one exec: it unpacks the step's script and
// environment from standard input (a tar), then runs the step in a session
// of its own (so a timeout can stop it and everything it started), with
// the environment read from a file that is deleted at once (so secrets
// never show on a command line), in the step's directory, with no input.
//
//	bash -c stepWrapper slipway-step TMPDIR PIDFILE ENVFILE DIR BASH-ARGS...
const stepWrapper = `tar -x -m -C "$1" || { echo "slipway: copying the step into the job pod failed" >&2; exit 125; }
shift
exec setsid -w bash --noprofile --norc -c '
echo $$ > "$1"
envfile=$2 dir=$3
shift 3
while IFS= read -r -d "" kv; do export "$kv"; done < "$envfile"
rm -f "$envfile"
cd "$dir" || exit 1
exec bash "$@"' slipway-step "$@" </dev/null`

// envNameRe is what bash can export.
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// bashOwn are variables bash sets itself and refuses to have set.
var bashOwn = map[string]bool{"UID": true, "EUID": true, "PPID": true, "SHELLOPTS": true, "BASHOPTS": true}

// Run runs one step: its script and environment are copied into the pod,
// then bash runs it there with the output streamed back.
func (j *job) Run(ctx context.Context, c runner.Command) (int, error) {
	j.steps++
	n := strconv.Itoa(j.steps)
	var env bytes.Buffer
	for _, kv := range c.Env {
		k, _, _ := strings.Cut(kv, "=")
		if envNameRe.MatchString(k) && !bashOwn[k] {
			env.WriteString(kv)
			env.WriteByte(0)
		}
	}
	files := []file{{name: ".step-" + n + ".env", mode: 0o600, data: env.Bytes()}}
	args := c.Args
	if c.Script != "" || len(args) == 0 {
		files = append(files, file{name: "step-" + n + ".sh", mode: 0o700, data: []byte(c.Script + "\n")})
		args = []string{"--noprofile", "--norc", Workspace + "/tmp/step-" + n + ".sh"}
	}
	tmp := Workspace + "/tmp/"
	pidfile := tmp + ".step-" + n + ".pid"
	argv := append([]string{"bash", "--noprofile", "--norc", "-c", stepWrapper, "slipway-step", tmp, pidfile, tmp + ".step-" + n + ".env", c.Dir}, args...)
	stdin := tarOf(files)

	// The stream has a context of its own: when ctx ends, the step is
	// stopped inside the pod first, so its output up to then is kept.
	streamCtx, cancelStream := context.WithCancel(context.Background())
	defer cancelStream()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := j.exec(streamCtx, argv, stdin, c.Stdout, c.Stderr)
		done <- result{code, err}
	}()
	select {
	case r := <-done:
		return r.code, r.err
	case <-ctx.Done():
	}
	for _, sig := range []string{"TERM", "KILL"} {
		kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = j.exec(kctx, []string{"sh", "-c", `kill -` + sig + ` -- -"$(cat "$1")"`, "sh", pidfile}, nil, nil, nil)
		cancel()
		select {
		case r := <-done:
			return r.code, r.err
		case <-time.After(5 * time.Second):
		}
	}
	cancelStream()
	r := <-done
	return r.code, r.err
}

// Checkout checks src out on this machine and copies the files (and the
// repository's .git) into dir in the pod.
func (j *job) Checkout(ctx context.Context, src runner.Source, dir string) error {
	tmp, err := os.MkdirTemp("", "slipway-checkout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := src.Checkout(ctx, tmp); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarTree(pw, tmp)) }()
	var stderr bytes.Buffer
	code, err := j.exec(ctx, []string{"sh", "-c", `rm -rf "$1" && mkdir -p "$1" && exec tar -x -C "$1"`, "sh", dir}, pr, nil, &stderr)
	pr.Close()
	if err == nil && code != 0 {
		err = fmt.Errorf("tar exited with %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return fmt.Errorf("copying the checkout into the job pod: %w", err)
	}
	return nil
}

// Fetch copies a file or directory of the pod to dst on this machine.
// Only regular files and directories are taken; a name that would land
// outside dst is refused.
func (j *job) Fetch(ctx context.Context, src, dst string) error {
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	go func() {
		code, err := j.exec(ctx, []string{"sh", "-c", `if [ -d "$1" ]; then exec tar -c -C "$1" .; else exec tar -c -C "$(dirname "$1")" -- "$(basename "$1")"; fi`, "sh", src}, nil, pw, &stderr)
		if err == nil && code != 0 {
			err = fmt.Errorf("%s", strings.TrimSpace(stderr.String()))
		}
		pw.CloseWithError(err)
	}()
	err := untar(pr, dst, path.Base(src))
	pr.CloseWithError(io.EOF)
	return err
}

// untar writes a tar stream under dst. A stream of one regular file named
// single becomes dst itself.
func untar(r io.Reader, dst, single string) error {
	tr := tar.NewReader(r)
	wrote := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("refusing %q: outside the artifact", h.Name)
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		if !wrote && name == single && h.Typeflag == tar.TypeReg {
			target = dst
		}
		wrote = true
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	if !wrote {
		return errors.New("nothing to publish")
	}
	return nil
}

// file is one entry of a tar made in memory; a name ending in / is a
// directory.
type file struct {
	name string
	mode int64
	data []byte
}

func tarOf(files []file) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: UID, Gid: UID, ModTime: time.Now()}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		_ = tw.WriteHeader(h)
		_, _ = tw.Write(f.data)
	}
	_ = tw.Close()
	return &buf
}

// tarTree writes dir's tree, owned by the job's user.
func tarTree(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	if err := fsutil.TarTree(tw, dir, fsutil.TarOptions{UID: UID, GID: UID}); err != nil {
		return err
	}
	return tw.Close()
}
