package tenancy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/slipway-dev/slipway/internal/database"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/platform"
)

// clustersGVR is CNPG's Cluster resource.
var clustersGVR = schema.GroupVersionResource{Group: database.Group, Version: database.Version, Resource: "clusters"}

// DatabaseStatus is one environment's instance of a team's database, as
// CNPG reports it.
type DatabaseStatus struct {
	Team      string `json:"team"`
	Name      string `json:"name"`
	Env       string `json:"env"`
	Namespace string `json:"namespace"`
	// Image is the PostgreSQL image the Cluster asks for; Version is the
	// PostgreSQL version it names (its tag).
	Image   string `json:"image"`
	Version string `json:"version"`
	// Phase is CNPG's word for the Cluster's state ("Cluster in healthy
	// state" once it serves).
	Phase          string `json:"phase"`
	Instances      int64  `json:"instances"`
	ReadyInstances int64  `json:"readyInstances"`
	Ready          bool   `json:"ready"`
	// Secret holds the app's credentials (username, password, host,
	// port, dbname).
	Secret string `json:"secret"`
	// Cluster is the CNPG Cluster; Role says what it is to the app:
	// serving, previous (kept by an unconfirmed upgrade) or upgrading.
	Cluster string `json:"cluster"`
	Role    string `json:"role"`
	// SizeBytes is the database's size on disk, when it could be read.
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// LastBackup is the newest backup of this environment, if any.
	LastBackup *database.Backup `json:"lastBackup,omitempty"`
}

// healthyPhase is the phase CNPG sets when every instance serves.
const healthyPhase = "Cluster in healthy state"

// DatabaseCreated is what CreateDatabase did.
type DatabaseCreated struct {
	Commit string           `json:"commit"`
	Status []DatabaseStatus `json:"status"`
}

// CreateDatabase commits a team's database to the fleet (a CNPG Cluster
// in each of the team's environments) and, with wait, waits until Flux has
// applied it and each Cluster is healthy.
func CreateDatabase(ctx context.Context, p *platform.Platform, team, name string, major int, wait time.Duration, progress io.Writer) (*DatabaseCreated, error) {
	images, err := platform.ReadPostgresImages(p.Config)
	if err != nil {
		return nil, err
	}
	image, ok := images[major]
	if !ok {
		var have []string
		for m := range images {
			have = append(have, fmt.Sprint(m))
		}
		sort.Strings(have)
		return nil, fmt.Errorf("PostgreSQL %d: the platform has images of PostgreSQL %s", major, strings.Join(have, ", "))
	}
	d := database.Database{Team: team, Name: name, Major: major, Image: image}
	if err := d.Check(); err != nil {
		return nil, err
	}
	teams, err := ListTenants(ctx, p)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(teams, team) {
		return nil, fmt.Errorf("no tenant %q: onboard it first (slipway tenant create %s)", team, team)
	}
	remote, err := p.FleetRemote()
	if err != nil {
		return nil, err
	}
	if err := remote.Read(ctx, func(dir string) error {
		_, err := database.ReadFile(dir, team, name)
		if err == nil {
			return fmt.Errorf("%s/%s: %w (see slipway db status)", team, name, database.ErrExists)
		}
		if errors.Is(err, database.ErrNoDatabase) {
			return nil
		}
		return err
	}); err != nil {
		return nil, err
	}
	// The app's credentials first: CNPG makes the owner with them, and
	// they stay when an upgrade moves the database to a new Cluster.
	kube, err := kubeClient(p)
	if err != nil {
		return nil, err
	}
	for _, env := range flux.Environments {
		if err := ensureAppSecret(ctx, kube, team, name, env); err != nil {
			return nil, err
		}
	}
	commit, err := change(ctx, p, fmt.Sprintf("databases: %s/%s on PostgreSQL %d", team, name, major), progress, func(dir string) error {
		return database.Add(dir, d)
	})
	if err != nil {
		return nil, err
	}
	out := &DatabaseCreated{Commit: commit}
	if wait <= 0 {
		return out, nil
	}
	dyn, err := dynamicClient(p)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := applyDatabases(ctx, dyn, p.FleetSync(), progress); err != nil {
		return nil, err
	}
	out.Status, err = WaitDatabase(ctx, dyn, team, name, progress)
	for i := range out.Status {
		out.Status[i].Role = "serving"
	}
	return out, err
}

// applyDatabases asks Flux to apply the fleet's databases now, through
// the fleet's sync of that name, and waits until it has.
func applyDatabases(ctx context.Context, dyn dynamic.Interface, sync string, progress io.Writer) error {
	if _, err := flux.Reconcile(ctx, dyn, flux.GitRepository, flux.Namespace, sync, progress); err != nil {
		return err
	}
	if _, err := flux.Reconcile(ctx, dyn, flux.Kustomization, flux.Namespace, sync, progress); err != nil {
		return err
	}
	// The databases' Kustomization waits for the operator's at the same
	// revision: reconcile that first, or the dependency reads not ready.
	if _, err := flux.Reconcile(ctx, dyn, flux.Kustomization, flux.Namespace, database.OperatorKustomization, progress); err != nil {
		return fmt.Errorf("the database operator: %w", err)
	}
	if _, err := flux.Reconcile(ctx, dyn, flux.Kustomization, flux.Namespace, database.DatabasesKustomization, progress); err != nil {
		return fmt.Errorf("%w (is the operator ready? slipway get kustomizations -n %s)", err, flux.Namespace)
	}
	return nil
}

// ensureAppSecret writes the app's credentials for a database in one
// environment, unless they are there: the Secret NAME-db in the team's
// namespace (a basic-auth Secret, as CNPG wants for an owner's
// password), which also names the Service and database to connect to.
// Secrets stay out of the fleet repository; this one is the platform's.
func ensureAppSecret(ctx context.Context, kube kubernetes.Interface, team, name, env string) error {
	ns := flux.TenantNamespace(team, env)
	secretName := database.ServiceName(name)
	if _, err := kube.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	password := make([]byte, 24)
	if _, err := rand.Read(password); err != nil {
		return err
	}
	sqlName := database.SQLName(name)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: ns,
			Labels: map[string]string{database.TeamLabel: team, database.DatabaseLabel: name}},
		Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{
			corev1.BasicAuthUsernameKey: sqlName,
			corev1.BasicAuthPasswordKey: base64.RawURLEncoding.EncodeToString(password),
			"host":                      secretName,
			"port":                      "5432",
			"dbname":                    sqlName,
		},
	}
	_, err := kube.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{FieldManager: "slipway"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("writing the credentials of %s/%s in %s: %w", team, name, ns, err)
	}
	return nil
}

// WaitDatabase waits until the database's Cluster is healthy in every
// environment, telling each change of phase.
func WaitDatabase(ctx context.Context, dyn dynamic.Interface, team, name string, progress io.Writer) ([]DatabaseStatus, error) {
	start := time.Now()
	last := map[string]string{}
	for {
		var all []DatabaseStatus
		ready := true
		for _, env := range flux.Environments {
			ns := flux.TenantNamespace(team, env)
			obj, err := dyn.Resource(clustersGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
			var st DatabaseStatus
			switch {
			case apierrors.IsNotFound(err):
				st = DatabaseStatus{Team: team, Name: name, Env: env, Namespace: ns, Phase: "not applied yet"}
			case err != nil:
				if ctx.Err() != nil {
					return nil, fmt.Errorf("waiting for database %s/%s: %w", team, name, ctx.Err())
				}
				return nil, err
			default:
				st = clusterStatus(obj, env)
			}
			if st.Phase != last[env] {
				fmt.Fprintf(progress, "database %s/%s in %s: %s (%s)\n", team, name, env, st.Phase, time.Since(start).Round(time.Second))
				last[env] = st.Phase
			}
			ready = ready && st.Ready
			all = append(all, st)
		}
		if ready {
			return all, nil
		}
		select {
		case <-ctx.Done():
			return all, fmt.Errorf("database %s/%s is not ready after %s: %s (see slipway kubectl -- get pods -n %s)", team, name, time.Since(start).Round(time.Second), describe(all), flux.TenantNamespace(team, "staging"))
		case <-time.After(2 * time.Second):
		}
	}
}

func describe(all []DatabaseStatus) string {
	var parts []string
	for _, s := range all {
		parts = append(parts, s.Env+": "+s.Phase)
	}
	return strings.Join(parts, "; ")
}

// clusterStatus reads a CNPG Cluster.
func clusterStatus(obj *unstructured.Unstructured, env string) DatabaseStatus {
	image, _, _ := unstructured.NestedString(obj.Object, "spec", "imageName")
	phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
	instances, _, _ := unstructured.NestedInt64(obj.Object, "spec", "instances")
	readyInstances, _, _ := unstructured.NestedInt64(obj.Object, "status", "readyInstances")
	if phase == "" {
		phase = "waiting for the operator"
	}
	name := obj.GetLabels()[database.DatabaseLabel]
	if name == "" {
		name = obj.GetName()
	}
	return DatabaseStatus{
		Team:           obj.GetLabels()[database.TeamLabel],
		Name:           name,
		Cluster:        obj.GetName(),
		Env:            env,
		Namespace:      obj.GetNamespace(),
		Image:          image,
		Version:        imageVersion(image),
		Phase:          phase,
		Instances:      instances,
		ReadyInstances: readyInstances,
		Ready:          phase == healthyPhase && readyInstances == instances && instances > 0,
		Secret:         database.ServiceName(name),
	}
}

// imageVersion is the tag of an image reference.
func imageVersion(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[i+1:]
	}
	return ""
}

// Databases lists the teams' databases in every environment (one team's
// when team is set): each Cluster, what it is to the app, its size and
// the environment's last backup.
func Databases(ctx context.Context, p *platform.Platform, team string) ([]DatabaseStatus, error) {
	o, err := newDBOps(p, nil)
	if err != nil {
		return nil, err
	}
	opts := metav1.ListOptions{LabelSelector: database.DatabaseLabel}
	if team != "" {
		opts.LabelSelector = database.DatabaseLabel + "," + database.TeamLabel + "=" + team
	}
	list, err := o.dyn.Resource(clustersGVR).List(ctx, opts)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the cluster has no CloudNativePG (is the platform started with databases? SLIPWAY_DATABASES=true)")
		}
		return nil, err
	}
	services, err := o.pg.kube.CoreV1().Services("").List(ctx, opts)
	if err != nil {
		return nil, err
	}
	roles := map[string]string{} // namespace/cluster -> role
	for _, svc := range services.Items {
		a := svc.Annotations
		for role, key := range map[string]string{"serving": database.ServingAnnotation, "previous": database.PreviousAnnotation, "upgrading": database.UpgradingAnnotation} {
			if a[key] != "" {
				roles[svc.Namespace+"/"+a[key]] = role
			}
		}
	}
	backups := map[string]*database.Backup{} // team/name/env -> newest
	var out []DatabaseStatus
	for i := range list.Items {
		obj := &list.Items[i]
		env := strings.TrimPrefix(obj.GetNamespace(), obj.GetLabels()[database.TeamLabel]+"-")
		st := clusterStatus(obj, env)
		st.Role = roles[st.Namespace+"/"+st.Cluster]
		if st.Ready {
			size, err := o.pg.sql(ctx, st.Namespace, st.Cluster, "postgres", fmt.Sprintf("select pg_database_size('%s')", database.SQLName(st.Name)))
			if err == nil {
				st.SizeBytes, _ = strconv.ParseInt(size, 10, 64)
			}
		}
		key := st.Team + "/" + st.Name + "/" + env
		if _, seen := backups[key]; !seen {
			backups[key] = nil
			if all, err := o.reg.Backups(ctx, st.Team, st.Name, env); err == nil && len(all) > 0 {
				backups[key] = &all[0]
			}
		}
		st.LastBackup = backups[key]
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Team != b.Team {
			return a.Team < b.Team
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Env != b.Env {
			return slices.Index(flux.Environments, a.Env) < slices.Index(flux.Environments, b.Env)
		}
		return a.Cluster < b.Cluster
	})
	return out, nil
}
