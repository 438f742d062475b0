package database

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// A backup is a pg_dump archive (custom format) of one environment's
// database, kept in the platform's registry as an OCI artifact: one
// layer, the dump, under a tag ENV-TIME in a repository of ops's own
// (teams cannot push there, so none can replace a backup).
const (
	BackupArtifactType = "application/vnd.slipway.postgresql.backup.v1"
	DumpMediaType      = "application/vnd.slipway.postgresql.dump.custom.v1"
)

// Annotations of a backup's manifest.
const (
	BackupDatabaseAnnotation = "dev.slipway.database"
	BackupEnvAnnotation      = "dev.slipway.env"
	BackupVersionAnnotation  = "dev.slipway.postgresql.version"
	BackupClusterAnnotation  = "dev.slipway.cluster"
)

// backupTime is the time in a backup's tag: UTC, to the second.
const backupTime = "20060102T150405Z"

// BackupRepository is where a database's backups live in the registry.
func BackupRepository(team, name string) string { return "slipway/backups/" + team + "/" + name }

// Backup is one stored backup.
type Backup struct {
	Team, Name string
	Env        string    `json:"env"`
	Tag        string    `json:"tag"`
	Ref        string    `json:"ref"`
	Digest     string    `json:"digest,omitempty"`
	Size       int64     `json:"size,omitempty"`
	Taken      time.Time `json:"taken"`
}

// Registry is the platform's registry, as ops reaches it.
type Registry struct {
	Host               string
	Username, Password string
	PlainHTTP          bool
}

func (r Registry) repository(team, name string) (*remote.Repository, error) {
	repo, err := remote.NewRepository(r.Host + "/" + BackupRepository(team, name))
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = r.PlainHTTP
	repo.Client = &auth.Client{
		Client:     retry.DefaultClient,
		Cache:      auth.NewCache(),
		Credential: auth.StaticCredential(r.Host, auth.Credential{Username: r.Username, Password: r.Password}),
	}
	return repo, nil
}

// PushBackup stores a dump (a file, read from its start) as a backup of
// team/name's database in env, taken now. The tag is set only once the
// dump and the manifest are stored, so a push cut short leaves no backup
// that looks whole.
func (r Registry) PushBackup(ctx context.Context, team, name, env, cluster, version string, dump *os.File, taken time.Time) (*Backup, error) {
	repo, err := r.repository(team, name)
	if err != nil {
		return nil, err
	}
	if _, err := dump.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	dgst, err := digest.FromReader(dump)
	if err != nil {
		return nil, err
	}
	size, err := dump.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	taken = taken.UTC().Truncate(time.Second)
	layer := ocispec.Descriptor{MediaType: DumpMediaType, Digest: dgst, Size: size,
		Annotations: map[string]string{ocispec.AnnotationTitle: fmt.Sprintf("%s-%s.dump", name, env)}}
	// A section of the file, not the file: the HTTP client closes a body
	// that can be closed.
	if err := repo.Push(ctx, layer, io.NewSectionReader(dump, 0, size)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return nil, fmt.Errorf("storing the dump in %s: %w", repo.Reference, err)
	}
	manifest, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, BackupArtifactType, oras.PackManifestOptions{
		Layers: []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{
			ocispec.AnnotationCreated: taken.Format(time.RFC3339),
			BackupDatabaseAnnotation:  team + "/" + name,
			BackupEnvAnnotation:       env,
			BackupVersionAnnotation:   version,
			BackupClusterAnnotation:   cluster,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("storing the backup's manifest in %s: %w", repo.Reference, err)
	}
	tag := env + "-" + taken.Format(backupTime)
	if err := repo.Tag(ctx, manifest, tag); err != nil {
		return nil, fmt.Errorf("tagging the backup %s:%s: %w", repo.Reference, tag, err)
	}
	return &Backup{Team: team, Name: name, Env: env, Tag: tag, Ref: repo.Reference.String() + ":" + tag,
		Digest: manifest.Digest.String(), Size: size, Taken: taken}, nil
}

// Backups lists team/name's backups, newest first (one environment's when
// env is set). A database never backed up has none.
func (r Registry) Backups(ctx context.Context, team, name, env string) ([]Backup, error) {
	repo, err := r.repository(team, name)
	if err != nil {
		return nil, err
	}
	var out []Backup
	err = repo.Tags(ctx, "", func(tags []string) error {
		for _, t := range tags {
			e, stamp, ok := strings.Cut(t, "-")
			taken, err := time.Parse(backupTime, stamp)
			if !ok || err != nil || (env != "" && e != env) {
				continue
			}
			out = append(out, Backup{Team: team, Name: name, Env: e, Tag: t, Ref: repo.Reference.String() + ":" + t, Taken: taken})
		}
		return nil
	})
	var answer *errcode.ErrorResponse
	if err != nil && (errors.Is(err, errdef.ErrNotFound) || errors.As(err, &answer) && answer.StatusCode == http.StatusNotFound) {
		return nil, nil // no backup was ever pushed there
	}
	if err != nil {
		return nil, fmt.Errorf("listing the backups in %s: %w", repo.Reference, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Taken.After(out[j].Taken) })
	return out, nil
}

// FetchBackup writes the dump of a backup (its tag) to w, checked
// against its digest, and returns the backup's record.
func (r Registry) FetchBackup(ctx context.Context, team, name, tag string, w io.Writer) (*Backup, error) {
	repo, err := r.repository(team, name)
	if err != nil {
		return nil, err
	}
	desc, rc, err := repo.FetchReference(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("backup %s:%s: %w (slipway db backups %s/%s lists them)", repo.Reference, tag, err, team, name)
	}
	data, err := content.ReadAll(rc, desc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m.ArtifactType != BackupArtifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != DumpMediaType {
		return nil, fmt.Errorf("%s:%s is not a database backup (artifact type %q)", repo.Reference, tag, m.ArtifactType)
	}
	layer := m.Layers[0]
	blob, err := repo.Fetch(ctx, layer)
	if err != nil {
		return nil, err
	}
	defer blob.Close()
	vr := content.NewVerifyReader(blob, layer)
	if _, err := io.Copy(w, vr); err != nil {
		return nil, err
	}
	if err := vr.Verify(); err != nil {
		return nil, fmt.Errorf("backup %s:%s: %w", repo.Reference, tag, err)
	}
	taken, _ := time.Parse(time.RFC3339, m.Annotations[ocispec.AnnotationCreated])
	return &Backup{Team: team, Name: name, Env: m.Annotations[BackupEnvAnnotation], Tag: tag,
		Ref: repo.Reference.String() + ":" + tag, Digest: desc.Digest.String(), Size: layer.Size, Taken: taken}, nil
}
