package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PublishOptions say where an image goes.
type PublishOptions struct {
	// Repository is registry/path, without tag or digest.
	Repository string
	// Tags point at the image after every blob and manifest is stored.
	Tags []string
	// Keychain finds credentials; nil uses the Docker config.
	Keychain authn.Keychain
	// Insecure allows plain HTTP to a registry that is not on loopback.
	Insecure bool
	// Transport carries the requests; nil uses the default.
	Transport http.RoundTripper
	Progress  io.Writer
}

// Result is what `slipway build` prints.
type Result struct {
	// Image is the digest-pinned reference: registry/repo@sha256:...
	Image      string   `json:"image"`
	Repository string   `json:"repository"`
	Digest     string   `json:"digest"`
	Tags       []string `json:"tags,omitempty"`
	Platforms  []string `json:"platforms"`
	Base       string   `json:"base"`
	Revision   string   `json:"revision,omitempty"`
	Source     string   `json:"source,omitempty"`
}

// Publish pushes the image by digest: blobs the registry already has are
// skipped, the platform manifests and the index are stored under their
// digests, and only then are tags set. A push cut off half-way therefore
// never leaves a tag pointing at a partial image.
func Publish(ctx context.Context, img *Image, opts PublishOptions) (*Result, error) {
	repo, err := ParseRepository(opts.Repository, opts.Insecure)
	if err != nil {
		return nil, err
	}
	for _, t := range opts.Tags {
		if _, err := name.NewTag(repo.String()+":"+t, name.StrictValidation); err != nil {
			return nil, fmt.Errorf("tag %q: use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')", t)
		}
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	remoteOpts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithJobs(4)}
	if opts.Transport != nil {
		remoteOpts = append(remoteOpts, remote.WithTransport(opts.Transport))
	}
	digestRef := repo.Digest(img.Digest.String())
	fmt.Fprintf(progress, "pushing %s\n", digestRef)
	if err := remote.WriteIndex(digestRef, img.Index, remoteOpts...); err != nil {
		return nil, RegistryError(repo.RegistryStr(), fmt.Errorf("pushing %s: %w", repo, err))
	}
	for _, t := range opts.Tags {
		if err := remote.Tag(repo.Tag(t), img.Index, remoteOpts...); err != nil {
			return nil, RegistryError(repo.RegistryStr(), fmt.Errorf("tagging %s:%s: %w", repo, t, err))
		}
	}
	return &Result{
		Image:      digestRef.String(),
		Repository: repo.String(),
		Digest:     img.Digest.String(),
		Tags:       opts.Tags,
		Platforms:  img.Platforms,
		Base:       img.Base,
		Revision:   img.Revision,
		Source:     img.Source,
	}, nil
}

// ParseRepository checks registry/path. A tag or digest is refused: the
// build decides the digest and tags are given separately.
func ParseRepository(s string, insecure bool) (name.Repository, error) {
	var nameOpts []name.Option
	if insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	if strings.Contains(s, "@") || strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") {
		return name.Repository{}, fmt.Errorf("image %q: give the repository without a tag or digest (for example 127.0.0.1:5000/dev1/hello); set tags with --tag", s)
	}
	if !strings.Contains(s, "/") || !strings.ContainsAny(s[:strings.Index(s, "/")], ".:") && s[:strings.Index(s, "/")] != "localhost" {
		return name.Repository{}, fmt.Errorf("image %q: name the registry too, for example 127.0.0.1:5000/%s", s, s)
	}
	repo, err := name.NewRepository(s, append(nameOpts, name.StrictValidation)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("image %q: %w", s, err)
	}
	return repo, nil
}

// RegistryError turns what a registry or the network said into a message
// that tells the user what to do. The original error stays wrapped.
func RegistryError(registry string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized:
			return &UserError{Err: err, Hint: fmt.Sprintf("registry %s did not accept the credentials: log in with `slipway login %s -u <user>` (or set SLIPWAY_REGISTRY_USERNAME and SLIPWAY_REGISTRY_PASSWORD)", registry, registry)}
		case http.StatusForbidden:
			return &UserError{Err: err, Hint: "push to a repository under your team's prefix, or ask an admin for push rights"}
		case http.StatusInsufficientStorage:
			return &UserError{Err: err, Hint: "the registry's disk is full: delete unused images and run `slipway registry gc`"}
		}
	}
	var opErr *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &opErr) && opErr.Op == "dial" {
		return &UserError{Err: err, Hint: fmt.Sprintf("cannot reach registry %s: start it with `slipway up`, or check the registry in the image name", registry)}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &UserError{Err: err, Hint: fmt.Sprintf("registry host %s is unknown: check the registry in the image name", registry)}
	}
	return err
}

// UserError is an error the user can fix; Hint says how.
type UserError struct {
	Err  error
	Hint string
}

func (e *UserError) Error() string { return e.Err.Error() + "\n" + e.Hint }
func (e *UserError) Unwrap() error { return e.Err }
