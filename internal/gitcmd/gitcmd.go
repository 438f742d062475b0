// Package gitcmd runs the git program: one place that sets up its
// environment (no terminal prompts) and turns its failures into errors
// that carry git's own message.
package gitcmd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Run runs git in dir with extra environment variables and returns its
// standard output. A failure carries git's standard error.
func Run(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GIT_TERMINAL_PROMPT=0"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return stdout.String(), fmt.Errorf("git %s: %s", firstArg(args), msg)
	}
	return stdout.String(), nil
}

// Output runs git in dir and returns its trimmed output, or "" when it
// fails (for questions whose failure means "no answer": the branch of a
// directory that is no repository).
func Output(dir string, args ...string) string {
	out, err := Run(context.Background(), dir, nil, args...)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// firstArg names the git subcommand, skipping "-c key=value" and "-C dir".
func firstArg(args []string) string {
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-c", "-C":
			i++
		default:
			return args[i]
		}
	}
	return ""
}
