package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/components"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/database"
	"github.com/slipway-dev/slipway/internal/fsutil"
	"github.com/slipway-dev/slipway/internal/gitrepo"
)

// PostgresRepository is where the PostgreSQL images are kept in the
// registry, tagged by version (CNPG reads the major version from the tag).
const PostgresRepository = "slipway/postgresql"

// operatorRepository is where CNPG's operator image is kept.
const operatorRepository = "cnpg/manager"

// databasesPrepared is what the databases need: the operator for the
// fleet, the images to push, and the PostgreSQL image of each major.
type databasesPrepared struct {
	operator database.Operator
	images   []imageToPush
	postgres PostgresImages
}

// PostgresImages are the image references of each PostgreSQL major
// version the platform runs, as `up` pushed them.
type PostgresImages map[int]string

// postgresImagesFile keeps them for the commands that name an image
// (db create), under the state directory.
func postgresImagesFile(cfg config.Config) string {
	return filepath.Join(cfg.Home, "databases", "postgres-images.json")
}

// ReadPostgresImages reads what the last `up` with databases pushed.
func ReadPostgresImages(cfg config.Config) (PostgresImages, error) {
	data, err := os.ReadFile(postgresImagesFile(cfg))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("this platform runs no databases: start it with SLIPWAY_DATABASES=true (or databases: {enabled: true} in config.yaml)")
	}
	if err != nil {
		return nil, err
	}
	var byName map[string]string
	if err := json.Unmarshal(data, &byName); err != nil {
		return nil, fmt.Errorf("%s: %w", postgresImagesFile(cfg), err)
	}
	images := PostgresImages{}
	for k, v := range byName {
		major, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a major version", postgresImagesFile(cfg), k)
		}
		images[major] = v
	}
	return images, nil
}

// prepareDatabases builds CNPG's operator (or takes it from the cache)
// and the PostgreSQL images.
func prepareDatabases(ctx context.Context, cfg config.Config, progress io.Writer) (*databasesPrepared, error) {
	paths, err := components.Ensure(ctx, components.CNPG, components.Options{CacheDir: cfg.CacheDir(), Progress: progress})
	if err != nil {
		return nil, err
	}
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	// The layout of CNPG's own image: the program per architecture under
	// /operator, and /manager linking to this one.
	op, err := build.BinaryImageAt(ctx, cfg.CacheDir(), paths["manager"], "/operator/manager_"+runtime.GOARCH, []string{"/manager"}, p)
	if err != nil {
		return nil, fmt.Errorf("the CloudNativePG operator's image: %w", err)
	}
	repo := imageRegistry(cfg) + "/" + operatorRepository
	prepared := &databasesPrepared{
		operator: database.Operator{ConfigDir: filepath.Dir(paths["config/default"]), Image: repo + ":" + components.CNPGVersion + "@" + op.Digest.String(),
			Sync: fleetSyncName(cfg)},
		images:   []imageToPush{{op, repo, components.CNPGVersion}},
		postgres: PostgresImages{},
	}
	byName := map[string]string{}
	for _, major := range build.PostgresMajors {
		img, err := build.BuildPostgresImage(ctx, build.PostgresImageOptions{CacheDir: cfg.CacheDir(), Major: major, Progress: progress})
		if err != nil {
			return nil, err
		}
		repo := imageRegistry(cfg) + "/" + PostgresRepository
		prepared.images = append(prepared.images, imageToPush{img.Image, repo, img.Version})
		ref := repo + ":" + img.Version + "@" + img.Digest.String()
		prepared.postgres[major] = ref
		byName[strconv.Itoa(major)] = ref
	}
	data, err := json.MarshalIndent(byName, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(postgresImagesFile(cfg)), 0o755); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(postgresImagesFile(cfg), append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	return prepared, nil
}

// operatorEdit brings the fleet's copy of the operator up to date.
func operatorEdit(op database.Operator, clusterDir string) gitrepo.Edit {
	return gitrepo.Edit{Message: "databases: CloudNativePG " + components.CNPGVersion + " in " + database.OperatorDir, Apply: func(dir string) error {
		return op.WriteTree(dir, clusterDir)
	}}
}
