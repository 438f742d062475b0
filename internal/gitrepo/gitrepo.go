// Package gitrepo changes a repository on a git server the way a person
// would: clone, edit, commit, push — with the real git program, over HTTP
// with Basic credentials. Slipway's own commits to the fleet repository
// go through it, so each change is an ordinary commit with an author and a
// message, and nothing reaches the server unless the push succeeds.
package gitrepo

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/internal/gitcmd"
)

// Remote is a repository on a git server.
type Remote struct {
	// URL is the repository's HTTP URL, without credentials.
	URL string
	// Username and Password authenticate every request.
	Username, Password string
	// Branch is the branch to change; empty means main.
	Branch string
	// CAFile, when set, is the only CA git trusts for the host (one the
	// system does not know).
	CAFile string
}

// Author signs a commit.
type Author struct{ Name, Email string }

// Platform signs the commits the platform makes itself, on ops's behalf
// or on a team's request (the message names who asked).
var Platform = Author{Name: "slipway", Email: "slipway@localhost"}

// ErrNoChange is returned by Change when edit left the tree as it was.
var ErrNoChange = errors.New("nothing to commit")

// Edit is one change to a work tree, committed with its own message.
type Edit struct {
	Message string
	Apply   func(dir string) error
}

// Change clones the branch, calls edit on the work tree, and commits and
// pushes what edit changed. It returns the new commit. When another push
// lands in between, it starts over from a fresh clone (up to three times).
// edit must be idempotent for that reason.
func (r Remote) Change(ctx context.Context, author Author, message string, edit func(dir string) error) (string, error) {
	head, changed, err := r.ChangeEach(ctx, author, Edit{Message: message, Apply: edit})
	if err == nil && !changed {
		return "", ErrNoChange
	}
	return head, err
}

// ChangeEach is Change for several edits with one clone and one push:
// each edit that changes the tree is committed on its own, with its own
// message, and the commits are pushed together (or, when the push fails,
// none is). It returns the branch's head afterwards — the clone's when no
// edit changed anything, "" for a repository still empty — and whether
// anything was pushed. A platform start checks a handful of things in the
// fleet; one clone for all of them is what keeps that quick.
func (r Remote) ChangeEach(ctx context.Context, author Author, edits ...Edit) (head string, changed bool, err error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		head, changed, retry, err := r.change(ctx, author, edits)
		if err == nil || !retry {
			return head, changed, err
		}
		lastErr = err
	}
	return "", false, lastErr
}

func (r Remote) change(ctx context.Context, author Author, edits []Edit) (head string, changed, retry bool, err error) {
	dir, err := os.MkdirTemp("", "slipway-git-")
	if err != nil {
		return "", false, false, err
	}
	defer os.RemoveAll(dir)
	branch := r.branch()
	if _, err := r.git(ctx, "", "clone", "--quiet", "--depth=1", "--branch", branch, "--", r.URL, dir); err != nil {
		// An empty repository has no branch to clone yet: start one.
		empty, lsErr := r.isEmpty(ctx)
		if lsErr != nil || !empty {
			return "", false, false, err
		}
		if _, err := r.git(ctx, "", "init", "--quiet", "--initial-branch="+branch, dir); err != nil {
			return "", false, false, err
		}
		if _, err := r.git(ctx, dir, "remote", "add", "origin", r.URL); err != nil {
			return "", false, false, err
		}
	}
	commits := 0
	for _, edit := range edits {
		if err := edit.Apply(dir); err != nil {
			return "", false, false, err
		}
		if _, err := r.git(ctx, dir, "add", "--all"); err != nil {
			return "", false, false, err
		}
		status, err := r.git(ctx, dir, "status", "--porcelain")
		if err != nil {
			return "", false, false, err
		}
		if strings.TrimSpace(status) == "" {
			continue
		}
		if _, err := r.git(ctx, dir, "-c", "user.name="+author.Name, "-c", "user.email="+author.Email,
			"commit", "--quiet", "--no-verify", "-m", edit.Message); err != nil {
			return "", false, false, err
		}
		commits++
	}
	out, err := r.git(ctx, dir, "rev-parse", "HEAD")
	if commits == 0 {
		// Unchanged: the clone's head, or none in an empty repository.
		if err != nil {
			return "", false, false, nil
		}
		return strings.TrimSpace(out), false, false, nil
	}
	if err != nil {
		return "", false, false, err
	}
	if _, err := r.git(ctx, dir, "push", "--quiet", "origin", "HEAD:refs/heads/"+branch); err != nil {
		// Rejected because the branch moved on: try again on top of it.
		retry = strings.Contains(err.Error(), "rejected") || strings.Contains(err.Error(), "fetch first")
		return "", false, retry, err
	}
	return strings.TrimSpace(out), true, false, nil
}

// Head returns the commit the branch points at, or "" for an empty
// repository.
func (r Remote) Head(ctx context.Context) (string, error) {
	out, err := r.git(ctx, "", "ls-remote", "--", r.URL, "refs/heads/"+r.branch())
	if err != nil {
		return "", err
	}
	commit, _, _ := strings.Cut(strings.TrimSpace(out), "\t")
	return commit, nil
}

// ReadFile returns a file's content at the branch's head.
func (r Remote) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var data []byte
	err := r.Read(ctx, func(dir string) error {
		var err error
		data, err = os.ReadFile(dir + "/" + path)
		return err
	})
	return data, err
}

// Read clones the branch's head and lets read look at it.
func (r Remote) Read(ctx context.Context, read func(dir string) error) error {
	dir, err := os.MkdirTemp("", "slipway-git-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := r.git(ctx, "", "clone", "--quiet", "--depth=1", "--branch", r.branch(), "--", r.URL, dir); err != nil {
		return err
	}
	return read(dir)
}

// Log returns git log's lines for the branch's newest n commits, in the
// given --format, from a shallow clone of them; "" for an empty
// repository. It reads what a host of its own holds the way git log
// reads a repository on this machine.
func (r Remote) Log(ctx context.Context, n int, format string) (string, error) {
	if empty, err := r.isEmpty(ctx); err != nil || empty {
		return "", err
	}
	dir, err := os.MkdirTemp("", "slipway-git-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if _, err := r.git(ctx, "", "clone", "--quiet", "--bare", "--depth="+strconv.Itoa(n), "--branch", r.branch(), "--", r.URL, dir); err != nil {
		return "", err
	}
	return gitcmd.Run(ctx, dir, nil, "log", "-n", strconv.Itoa(n), "--format="+format)
}

func (r Remote) isEmpty(ctx context.Context) (bool, error) {
	out, err := r.git(ctx, "", "ls-remote", "--heads", "--", r.URL)
	return strings.TrimSpace(out) == "", err
}

func (r Remote) branch() string {
	if r.Branch == "" {
		return "main"
	}
	return r.Branch
}

// git runs one git command. The credentials travel in the environment
// (as an HTTP header set through GIT_CONFIG_*), never on the command line
// or in a file, so they show in no process list and stay in no clone.
func (r Remote) git(ctx context.Context, dir string, args ...string) (string, error) {
	token := base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))
	env := []string{
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + token,
	}
	if r.CAFile != "" {
		env = append(env, "GIT_SSL_CAINFO="+r.CAFile)
	}
	return gitcmd.Run(ctx, dir, env, args...)
}
