package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/slipway-dev/slipway/internal/fsutil"
)

// The distribution library stores manifests but does not answer the OCI 1.1
// referrers API, which signatures, SBOMs and attestations are found
// through. Slipway keeps that index itself: when a manifest with a subject
// is stored, a descriptor of it is filed under the subject's digest, and
// GET /v2/<name>/referrers/<digest> lists the descriptors whose manifests
// still exist.

// maxManifestSize matches the registry's own limit on manifest bodies.
const maxManifestSize = 4 << 20

var referrersPath = regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)

// referrersDir keeps the index beside distribution's own tree.
func (s *Server) referrersDir() string {
	return filepath.Join(s.opts.StorageDir, "slipway", "referrers")
}

// manifestFields are the parts of a manifest the referrers API reports.
type manifestFields struct {
	MediaType    string             `json:"mediaType"`
	ArtifactType string             `json:"artifactType"`
	Config       *specs.Descriptor  `json:"config"`
	Subject      *specs.Descriptor  `json:"subject"`
	Annotations  map[string]string  `json:"annotations"`
	Manifests    []specs.Descriptor `json:"manifests"`
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// putManifest passes a manifest PUT to the registry and, when it is stored,
// tells OnPush and, when it has a subject, files it as a referrer of that
// subject.
func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, repo, reference, user string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading manifest: "+err.Error())
		return
	}
	if len(body) > maxManifestSize {
		writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", fmt.Sprintf("manifest is larger than %d bytes", maxManifestSize))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var m manifestFields
	_ = json.Unmarshal(body, &m) // the registry itself reports invalid manifests
	if m.Subject != nil {
		w.Header().Set("OCI-Subject", m.Subject.Digest.String())
	}
	rec := &statusRecorder{ResponseWriter: w}
	s.app.ServeHTTP(rec, r)
	if rec.status != http.StatusCreated {
		return
	}
	mediaType := m.MediaType
	if mediaType == "" {
		mediaType = r.Header.Get("Content-Type")
	}
	desc := specs.Descriptor{
		MediaType:    mediaType,
		Digest:       digest.FromBytes(body),
		Size:         int64(len(body)),
		ArtifactType: m.ArtifactType,
		Annotations:  m.Annotations,
	}
	if desc.ArtifactType == "" && m.Config != nil {
		desc.ArtifactType = m.Config.MediaType
	}
	if s.opts.OnPush != nil {
		s.opts.OnPush(Push{Repository: repo, Reference: reference, Digest: desc.Digest.String(), ArtifactType: desc.ArtifactType, User: user})
	}
	if m.Subject == nil || m.Subject.Digest.Validate() != nil {
		return
	}
	if err := s.fileReferrer(repo, m.Subject.Digest, desc); err != nil {
		// The manifest is stored; only discovery through its subject is lost.
		fmt.Fprintf(s.logWriter(), "registry: filing referrer %s of %s in %s: %v\n", desc.Digest, m.Subject.Digest, repo, err)
	}
}

func (s *Server) logWriter() io.Writer {
	if s.opts.Log == nil {
		return io.Discard
	}
	return s.opts.Log
}

func (s *Server) subjectDir(repo string, subject digest.Digest) string {
	return filepath.Join(s.referrersDir(), filepath.FromSlash(repo), subject.Algorithm().String(), subject.Encoded())
}

func (s *Server) fileReferrer(repo string, subject digest.Digest, desc specs.Descriptor) error {
	dir := s.subjectDir(repo, subject)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(desc)
	if err != nil {
		return err
	}
	name := desc.Digest.Algorithm().String() + "-" + desc.Digest.Encoded() + ".json"
	return fsutil.WriteFileAtomic(filepath.Join(dir, name), data, 0o644)
}

// manifestExists reads distribution's on-disk layout: a manifest belongs to
// a repository while its revision link is there.
func (s *Server) manifestExists(repo string, d digest.Digest) bool {
	link := filepath.Join(s.opts.StorageDir, "docker", "registry", "v2", "repositories", filepath.FromSlash(repo),
		"_manifests", "revisions", d.Algorithm().String(), d.Encoded(), "link")
	_, err := os.Stat(link)
	return err == nil
}

// serveReferrers answers GET /v2/<name>/referrers/<digest>[?artifactType=].
func (s *Server) serveReferrers(w http.ResponseWriter, r *http.Request, repo, subject string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "the referrers API is read-only")
		return
	}
	d, err := digest.Parse(subject)
	if err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("%q is not a digest", subject))
		return
	}
	filter := r.URL.Query().Get("artifactType")
	index := specs.Index{MediaType: specs.MediaTypeImageIndex, Manifests: []specs.Descriptor{}}
	index.SchemaVersion = 2
	entries, err := os.ReadDir(s.subjectDir(repo, d))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.subjectDir(repo, d), e.Name()))
		if err != nil {
			continue
		}
		var desc specs.Descriptor
		if json.Unmarshal(data, &desc) != nil || !s.manifestExists(repo, desc.Digest) {
			continue
		}
		if filter != "" && desc.ArtifactType != filter {
			continue
		}
		index.Manifests = append(index.Manifests, desc)
	}
	sort.Slice(index.Manifests, func(i, j int) bool { return index.Manifests[i].Digest < index.Manifests[j].Digest })
	body, _ := json.Marshal(index)
	w.Header().Set("Content-Type", specs.MediaTypeImageIndex)
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
