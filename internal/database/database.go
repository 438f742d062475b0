// Package database is the line's PostgreSQL: CloudNativePG's operator in
// the fleet, and the teams' databases as CNPG Clusters that ops commits
// to it, one per environment of the team.
//
// Fleet layout (ops owns all of it):
//
//	clusters/<cluster>/databases.yaml  Flux Kustomizations: cnpg, then databases
//	infrastructure/cnpg/               the operator: CNPG's own config/ and an overlay
//	databases/<team>/<name>.yaml       a team's database, a Cluster per environment
//
// The databases' Kustomization depends on the operator's, which waits for
// the operator to be ready: a Cluster applied before the operator's
// webhook answers would be refused.
package database

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/slipway-dev/slipway/internal/flux"
)

// OperatorNamespace is where CNPG's operator runs (its config's default).
const OperatorNamespace = "cnpg-system"

// OperatorDeployment is the operator's Deployment there.
const OperatorDeployment = "cnpg-controller-manager"

// Fleet paths.
const (
	OperatorDir  = "infrastructure/cnpg"
	DatabasesDir = "databases"
)

// SyncFile is the file under the cluster's directory that holds the
// databases' Flux Kustomizations.
const SyncFile = "databases.yaml"

// Kustomization names.
const (
	OperatorKustomization  = "cnpg"
	DatabasesKustomization = "databases"
)

// Group and version of CNPG's API.
const (
	Group   = "postgresql.cnpg.io"
	Version = "v1"
)

// Operator describes the operator's install: the module's config/
// directory as the component cache keeps it, and the operator's image.
type Operator struct {
	// ConfigDir is CNPG's config/ directory (default, crd, rbac, manager,
	// webhook).
	ConfigDir string
	// Image is the operator's image reference (repository:tag@digest).
	Image string
	// Sync names the fleet's sync GitRepository the Kustomizations read
	// through; empty means flux.SyncName (see flux.SyncNameFor).
	Sync string
}

// Files are the operator's fleet files: CNPG's own configuration under
// upstream/, unchanged, and an overlay that names the image.
func (o Operator) Files() (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(o.ConfigDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(o.ConfigDir, path)
		if err != nil {
			return err
		}
		if !strings.HasSuffix(rel, ".yaml") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[OperatorDir+"/upstream/config/"+filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading CloudNativePG's configuration: %w", err)
	}
	if _, ok := files[OperatorDir+"/upstream/config/default/kustomization.yaml"]; !ok {
		return nil, fmt.Errorf("CloudNativePG's configuration at %s has no default/kustomization.yaml", o.ConfigDir)
	}
	overlay, err := o.overlay()
	if err != nil {
		return nil, err
	}
	files[OperatorDir+"/kustomization.yaml"] = overlay
	return files, nil
}

// WriteTree writes the operator's files, the Kustomizations that apply it
// and the databases (under clusterDir), and the databases' directory into
// a work tree of the fleet.
func (o Operator) WriteTree(dir, clusterDir string) error {
	files, err := o.Files()
	if err != nil {
		return err
	}
	sync := o.Sync
	if sync == "" {
		sync = flux.SyncName
	}
	files[clusterDir+"/"+SyncFile] = Sync(sync)
	for path, data := range files {
		if err := writeFile(dir, path, data); err != nil {
			return err
		}
	}
	return EnsureDatabasesDir(dir)
}

func writeFile(dir, path string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// imageRef splits repository:tag@digest.
var imageRef = regexp.MustCompile(`^([a-z0-9][a-z0-9._/:-]*?)(?::([\w][\w.-]*))?(?:@(sha256:[0-9a-f]{64}))?$`)

func (o Operator) overlay() ([]byte, error) {
	m := imageRef.FindStringSubmatch(o.Image)
	if m == nil {
		return nil, fmt.Errorf("operator image %q is not repository[:tag][@digest]", o.Image)
	}
	image := map[string]string{"name": "controller", "newName": m[1]}
	if m[2] != "" {
		image["newTag"] = m[2]
	}
	if m[3] != "" {
		image["digest"] = m[3]
	}
	k := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  []string{"upstream/config/default"},
		"images":     []map[string]string{image},
		// One replica on one node: no leader election to wait for at
		// start, and the image is in the node's store once pulled.
		"patches": []map[string]any{{
			"target": map[string]string{"kind": "Deployment", "name": OperatorDeployment},
			"patch": `- op: replace
  path: /spec/template/spec/containers/0/imagePullPolicy
  value: IfNotPresent
`,
		}},
	}
	data, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	return append([]byte("# CloudNativePG's operator, from its own configuration under upstream/ (written by slipway up).\n"), data...), nil
}

// Sync is the content of SyncFile: the operator's Kustomization, which
// waits until the operator is ready, and the databases', after it, both
// reading the fleet through the GitRepository source (the fleet's sync).
func Sync(source string) []byte {
	op := flux.KustomizationObject(OperatorKustomization, source, "./"+OperatorDir)
	op.Spec.Wait = true
	dbs := flux.KustomizationObject(DatabasesKustomization, source, "./"+DatabasesDir)
	dbs.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: OperatorKustomization}}
	data, err := flux.Marshal(op, dbs)
	if err != nil {
		panic(err) // typed objects always marshal
	}
	return data
}

// Database is a team's PostgreSQL database: a CNPG Cluster of the same
// name in each of the team's environments, and in front of it a Service
// NAME-db that the app connects to. The Service, not CNPG's own NAME-rw,
// is what an engine upgrade moves from the old Cluster to the new one.
type Database struct {
	Team string
	Name string
	// Major is the PostgreSQL major version.
	Major int
	// Image is the PostgreSQL image for Major, tagged by its version.
	Image string
	// Size is each instance's volume (default 1Gi).
	Size string
}

// validName is a CNPG Cluster name that leaves room for the names the
// operator derives from it (NAME-rw, NAME-app, NAME-1-initdb...) and for
// NAME-db and NAME-pgNN.
var validName = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`)

// upgradeSuffix ends the name of a Cluster made by an engine upgrade.
var upgradeSuffix = regexp.MustCompile(`-pg[0-9]+$`)

// Check says what is wrong with the database's names, if anything.
func (d Database) Check() error {
	if err := flux.ValidTeam(d.Team); err != nil {
		return err
	}
	if !validName.MatchString(d.Name) {
		return fmt.Errorf("database name %q: use lower-case letters, digits and dashes, starting with a letter, at most 32", d.Name)
	}
	if upgradeSuffix.MatchString(d.Name) || strings.HasSuffix(d.Name, "-db") {
		return fmt.Errorf("database name %q: names ending in -pgNN or -db are the platform's (an upgrade's Cluster, the app's Service)", d.Name)
	}
	return CheckMajor(d.Major)
}

// CheckMajor says whether the platform runs a PostgreSQL major version.
func CheckMajor(major int) error {
	if major != 15 && major != 17 {
		return fmt.Errorf("PostgreSQL %d: the platform runs PostgreSQL 15 and 17", major)
	}
	return nil
}

// Path is the database's file in the fleet.
func (d Database) Path() string { return Path(d.Team, d.Name) }

// Path is a database's file in the fleet.
func Path(team, name string) string { return DatabasesDir + "/" + team + "/" + name + ".yaml" }

// SQLName is the database's name inside PostgreSQL, and its owner's: the
// name with underscores for dashes, so that it needs no quoting.
func SQLName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// ServiceName is the Service the app connects to, and the Secret that
// holds the app's credentials for it.
func ServiceName(name string) string { return name + "-db" }

// UpgradeClusterName is the Cluster an upgrade to major makes.
func UpgradeClusterName(name string, major int) string { return fmt.Sprintf("%s-pg%d", name, major) }

// Labels of the objects of a database.
const (
	TeamLabel     = "slipway.dev/team"
	DatabaseLabel = "slipway.dev/database"
	MajorLabel    = "slipway.dev/major"
)

// Annotations of the database's Service: which Cluster serves, which one
// an unconfirmed upgrade keeps, which one an upgrade is filling.
const (
	ServingAnnotation   = "slipway.dev/serving"
	PreviousAnnotation  = "slipway.dev/previous"
	UpgradingAnnotation = "slipway.dev/upgrading-to"
)

// cluster is one CNPG Cluster of the database in namespace ns. With
// from, it is made by importing the database from that Cluster (an engine
// upgrade), else it starts empty. The database and its owner are SQLName,
// with the password of the Secret ServiceName, which the platform writes
// before the first Cluster (it stays the same across upgrades).
func (d Database) cluster(clusterName, ns, from string) map[string]any {
	size := d.Size
	if size == "" {
		size = "1Gi"
	}
	sqlName := SQLName(d.Name)
	initdb := map[string]any{
		"database": sqlName,
		"owner":    sqlName,
		"secret":   map[string]any{"name": ServiceName(d.Name)},
	}
	spec := map[string]any{
		"instances": 1,
		"imageName": d.Image,
		"storage":   map[string]any{"size": size},
		// One instance: no replica to fail over to, so a node drain
		// must not wait for one.
		"enablePDB": false,
		"bootstrap": map[string]any{"initdb": initdb},
	}
	if from != "" {
		// CNPG's logical import: pg_dump of the old Cluster's database
		// as its owner, pg_restore into the new one.
		initdb["import"] = map[string]any{
			"type":      "microservice",
			"databases": []string{sqlName},
			"source":    map[string]any{"externalCluster": from},
		}
		spec["externalClusters"] = []map[string]any{{
			"name": from,
			"connectionParameters": map[string]any{
				"host": from + "-rw", "user": sqlName, "dbname": sqlName, "sslmode": "require",
			},
			"password": map[string]any{"name": ServiceName(d.Name), "key": "password"},
		}}
	}
	return map[string]any{
		"apiVersion": Group + "/" + Version,
		"kind":       "Cluster",
		"metadata": map[string]any{
			"name":      clusterName,
			"namespace": ns,
			"labels":    map[string]string{TeamLabel: d.Team, DatabaseLabel: d.Name, MajorLabel: fmt.Sprint(d.Major)},
		},
		"spec": spec,
	}
}

// service is the database's Service in namespace ns, sending the app to
// the primary of the Cluster serving.
func (d Database) service(ns, serving string) map[string]any {
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Service",
		"metadata": map[string]any{
			"name":        ServiceName(d.Name),
			"namespace":   ns,
			"labels":      map[string]string{TeamLabel: d.Team, DatabaseLabel: d.Name},
			"annotations": map[string]string{ServingAnnotation: serving},
		},
		"spec": map[string]any{
			"selector": selector(serving),
			"ports":    []map[string]any{{"name": "postgres", "port": 5432, "targetPort": 5432}},
		},
	}
}

// selector picks the primary instance of a Cluster (CNPG's labels).
func selector(cluster string) map[string]any {
	return map[string]any{"cnpg.io/cluster": cluster, "cnpg.io/instanceRole": "primary"}
}

// Clusters are the database's fleet objects: in each environment, a
// Cluster of one instance and the Service in front of it.
func (d Database) Clusters() ([]byte, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	return d.file().Marshal()
}

func (d Database) file() *File {
	f := &File{Team: d.Team, Name: d.Name}
	for _, env := range flux.Environments {
		ns := flux.TenantNamespace(d.Team, env)
		f.add(d.cluster(d.Name, ns, ""))
		f.add(d.service(ns, d.Name))
	}
	return f
}

// EnsureDatabasesDir writes the databases' kustomization.yaml, listing
// every database file under DatabasesDir in a work tree of the fleet.
func EnsureDatabasesDir(dir string) error {
	root := filepath.Join(dir, DatabasesDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	matches, err := filepath.Glob(filepath.Join(root, "*", "*.yaml"))
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# The teams' databases, one file per database (slipway db create).\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
	if len(matches) == 0 {
		b.WriteString("resources: []\n")
	} else {
		b.WriteString("resources:\n")
		for _, m := range matches { // Glob sorts
			rel, err := filepath.Rel(root, m)
			if err != nil {
				return err
			}
			b.WriteString("- " + filepath.ToSlash(rel) + "\n")
		}
	}
	return os.WriteFile(filepath.Join(root, "kustomization.yaml"), []byte(b.String()), 0o644)
}

// ErrExists says a database is in the fleet already.
var ErrExists = errors.New("database exists")

// Add writes a new database's file into a work tree of the fleet.
func Add(dir string, d Database) error {
	if err := d.Check(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(d.Path()))); err == nil {
		return fmt.Errorf("%s/%s: %w (see slipway db status)", d.Team, d.Name, ErrExists)
	}
	if err := d.file().Write(dir); err != nil {
		return err
	}
	return EnsureDatabasesDir(dir)
}
