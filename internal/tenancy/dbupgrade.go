package tenancy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/database"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/gitrepo"
	"github.com/slipway-dev/slipway/internal/platform"
)

// An engine upgrade moves a database to a new major version of
// PostgreSQL by CNPG's logical import, one environment at a time:
//
//  1. a backup (pg_dump) of the serving Cluster goes to the registry;
//  2. the serving database stops taking writes (reads go on);
//  3. a Cluster of the new version, which imports the database from the
//     serving one, is committed to the fleet, and must become healthy;
//  4. every table must hold as many rows in the new Cluster as in the old;
//  5. the database's Service is switched to the new Cluster (a fleet
//     commit) and the app's sessions on the old one are ended, so that
//     its connections come back on the new one;
//  6. the old Cluster stays, read-only, until ops confirms (its data then
//     goes) or rolls back to it.
//
// CNPG's own major upgrade (pg_upgrade in place, since 1.26) was not
// taken: it upgrades the Cluster's own volume with --link, so once it has
// run there is no going back but by a restore, and it needs the old
// version's programs inside the new image (bookworm's PostgreSQL 15 needs
// libraries trixie's image does not have).
//
// Any failure before the switch leaves the database where it was: the
// new Cluster is removed from the fleet and writes are taken again.

// DatabaseUpgrade is the outcome of one environment's upgrade.
type DatabaseUpgrade struct {
	Env  string `json:"env"`
	From string `json:"from"`
	To   string `json:"to"`
	// FromVersion and ToVersion are PostgreSQL's own (15.18, 17.12).
	FromVersion string           `json:"fromVersion"`
	ToVersion   string           `json:"toVersion"`
	Backup      *database.Backup `json:"backup"`
	// Rows are the tables' row counts, the same in both Clusters.
	Rows string `json:"rows"`
	// WritesHeld is how long the database took no writes.
	WritesHeld time.Duration `json:"writesHeld"`
	Commits    []string      `json:"commits"`
}

// UpgradeOptions say how to upgrade.
type UpgradeOptions struct {
	Team, Name string
	// To is the new major version.
	To int
	// Envs are the environments, in order (default: staging, then prod).
	Envs []string
	// Image replaces the platform's image of To (an image being tried).
	Image string
	// Wait bounds each environment's upgrade.
	Wait     time.Duration
	Progress io.Writer
}

// dbOps is what the database workflows use: the fleet, the cluster, the
// instances' own programs and the registry.
type dbOps struct {
	p        *platform.Platform
	fleet    gitrepo.Remote
	dyn      dynamic.Interface
	pg       *postgres
	reg      database.Registry
	progress io.Writer
}

func newDBOps(p *platform.Platform, progress io.Writer) (*dbOps, error) {
	if progress == nil {
		progress = io.Discard
	}
	fleet, err := p.FleetRemote()
	if err != nil {
		return nil, err
	}
	dyn, err := dynamicClient(p)
	if err != nil {
		return nil, err
	}
	pg, err := newPostgres(p)
	if err != nil {
		return nil, err
	}
	password, err := p.AdminPassword()
	if err != nil {
		return nil, err
	}
	host := p.RegistryAddr()
	reg := database.Registry{Host: host, Username: "admin", Password: password,
		PlainHTTP: credentials.Scheme(context.Background(), host, false) == "http"}
	return &dbOps{p: p, fleet: fleet, dyn: dyn, pg: pg, reg: reg, progress: progress}, nil
}

func (o *dbOps) say(format string, args ...any) { fmt.Fprintf(o.progress, format+"\n", args...) }

// opsOn is dbOps for one environment's database, and its state.
func opsOn(ctx context.Context, p *platform.Platform, team, name, env string, progress io.Writer) (*dbOps, database.EnvState, error) {
	o, err := newDBOps(p, progress)
	if err != nil {
		return nil, database.EnvState{}, err
	}
	st, err := o.state(ctx, team, name, env)
	return o, st, err
}

// state reads one environment's database from the fleet.
func (o *dbOps) state(ctx context.Context, team, name, env string) (database.EnvState, error) {
	var st database.EnvState
	err := o.fleet.Read(ctx, func(dir string) error {
		f, err := database.ReadFile(dir, team, name)
		if err != nil {
			return err
		}
		st, err = f.State(env)
		return err
	})
	return st, err
}

// edit commits one change of a database's file and applies it.
func (o *dbOps) edit(ctx context.Context, team, name, message string, change func(f *database.File) error) (string, error) {
	commit, err := o.fleet.Change(ctx, gitrepo.Platform, message, func(dir string) error {
		f, err := database.ReadFile(dir, team, name)
		if err != nil {
			return err
		}
		if err := change(f); err != nil {
			return err
		}
		return f.Write(dir)
	})
	if err != nil {
		return "", err
	}
	o.say("committed %.12s to %s: %s", commit, platform.FleetRepo, message)
	return commit, applyDatabases(ctx, o.dyn, o.p.FleetSync(), o.progress)
}

// serverVersion is the running server's version (15.18), without the
// distribution's suffix.
func (o *dbOps) serverVersion(ctx context.Context, ns, cluster string) (string, error) {
	v, err := o.pg.sql(ctx, ns, cluster, "postgres", "show server_version")
	if f := strings.Fields(v); err == nil && len(f) > 0 {
		v = f[0]
	}
	return v, err
}

// holdWrites makes the database refuse writes and ends the sessions that
// were open (they would keep writing); new sessions are read-only.
func (o *dbOps) holdWrites(ctx context.Context, ns, cluster, db string) error {
	_, err := o.pg.sql(ctx, ns, cluster, "postgres", fmt.Sprintf(
		`alter database %s set default_transaction_read_only = on; select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = '%s' and backend_type = 'client backend' and pid <> pg_backend_pid()`, db, db))
	return err
}

// takeWrites undoes holdWrites.
func (o *dbOps) takeWrites(ctx context.Context, ns, cluster, db string) error {
	_, err := o.pg.sql(ctx, ns, cluster, "postgres", fmt.Sprintf(`alter database %s reset default_transaction_read_only`, db))
	return err
}

// endSessions ends the clients' sessions on a database, so that their
// pools connect again (through the Service, to wherever it now points).
func (o *dbOps) endSessions(ctx context.Context, ns, cluster, db string) error {
	_, err := o.pg.sql(ctx, ns, cluster, "postgres", fmt.Sprintf(
		`select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = '%s' and backend_type = 'client backend' and pid <> pg_backend_pid()`, db))
	return err
}

// rowCounts are the user tables' row counts, as "schema.table=N,...".
func (o *dbOps) rowCounts(ctx context.Context, ns, cluster, db string) (string, error) {
	return o.pg.sql(ctx, ns, cluster, db, `select coalesce(string_agg(format('%s.%s=%s', n.nspname, c.relname,
		(xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text), ',' order by n.nspname, c.relname), '')
		from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'`)
}

// backup dumps the database of a Cluster and stores it in the registry.
func (o *dbOps) backup(ctx context.Context, team, name, env, cluster string) (*database.Backup, error) {
	ns := flux.TenantNamespace(team, env)
	version, err := o.serverVersion(ctx, ns, cluster)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "slipway-dump-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	taken := time.Now()
	if err := o.pg.exec(ctx, ns, cluster, []string{"pg_dump", "-Fc", "-d", database.SQLName(name)}, nil, tmp); err != nil {
		return nil, fmt.Errorf("backing up %s/%s in %s: %w", team, name, env, err)
	}
	b, err := o.reg.PushBackup(ctx, team, name, env, cluster, version, tmp, taken)
	if err != nil {
		return nil, err
	}
	o.say("backed up %s/%s in %s (PostgreSQL %s, %d bytes): %s", team, name, env, version, b.Size, b.Ref)
	return b, nil
}

// UpgradeDatabase upgrades a database's engine, one environment after the
// other; it stops at the first that fails, which is left as it was.
func UpgradeDatabase(ctx context.Context, p *platform.Platform, opts UpgradeOptions) ([]DatabaseUpgrade, error) {
	if err := database.CheckMajor(opts.To); err != nil {
		return nil, err
	}
	envs := opts.Envs
	if len(envs) == 0 {
		envs = flux.Environments
	}
	for _, env := range envs {
		if !slices.Contains(flux.Environments, env) {
			return nil, fmt.Errorf("environment %q: use %s", env, strings.Join(flux.Environments, " or "))
		}
	}
	image := opts.Image
	if image == "" {
		images, err := platform.ReadPostgresImages(p.Config)
		if err != nil {
			return nil, err
		}
		if image = images[opts.To]; image == "" {
			return nil, fmt.Errorf("the platform has no image of PostgreSQL %d", opts.To)
		}
	}
	o, err := newDBOps(p, opts.Progress)
	if err != nil {
		return nil, err
	}
	var done []DatabaseUpgrade
	for _, env := range envs {
		u, err := o.upgradeEnv(ctx, opts, env, image)
		if err != nil {
			return done, err
		}
		done = append(done, *u)
	}
	return done, nil
}

func (o *dbOps) upgradeEnv(ctx context.Context, opts UpgradeOptions, env, image string) (*DatabaseUpgrade, error) {
	team, name := opts.Team, opts.Name
	ns, db := flux.TenantNamespace(team, env), database.SQLName(name)
	st, err := o.state(ctx, team, name, env)
	if err != nil {
		return nil, err
	}
	u := &DatabaseUpgrade{Env: env, From: st.Serving}
	if st.Majors[st.Serving] >= opts.To {
		return nil, fmt.Errorf("%s/%s in %s runs PostgreSQL %d already: nothing to upgrade", team, name, env, st.Majors[st.Serving])
	}
	switch {
	case st.Upgrading != "":
		return nil, fmt.Errorf("%s/%s in %s is being upgraded to %s already (or an upgrade stopped half-way): roll it back first (slipway db rollback %s/%s --env %s)", team, name, env, st.Upgrading, team, name, env)
	case st.Previous != "":
		return nil, fmt.Errorf("%s/%s in %s still keeps %s from its last upgrade: confirm or roll back that one first (slipway db confirm|rollback %s/%s --env %s)", team, name, env, st.Previous, team, name, env)
	}
	if u.FromVersion, err = o.serverVersion(ctx, ns, st.Serving); err != nil {
		return nil, fmt.Errorf("reading %s/%s in %s: %w", team, name, env, err)
	}
	o.say("upgrading %s/%s in %s: PostgreSQL %s (Cluster %s) to %d", team, name, env, u.FromVersion, st.Serving, opts.To)
	if u.Backup, err = o.backup(ctx, team, name, env, st.Serving); err != nil {
		return nil, err
	}
	if err := o.holdWrites(ctx, ns, st.Serving, db); err != nil {
		return nil, fmt.Errorf("holding writes on %s/%s in %s: %w", team, name, env, err)
	}
	held := time.Now()
	o.say("writes held on %s in %s; reads go on", st.Serving, env)

	// Until the switch, a failure puts everything back.
	undo := func(cause error, added string) error {
		ctx := context.WithoutCancel(ctx)
		var problems []string
		if added != "" {
			if _, err := o.edit(ctx, team, name, fmt.Sprintf("databases: %s/%s in %s stays on %s (the upgrade failed)", team, name, env, st.Serving), func(f *database.File) error {
				_, err := f.Rollback(env)
				return err
			}); err != nil {
				problems = append(problems, "removing "+added+": "+err.Error())
			} else if err := o.waitGone(ctx, ns, added); err != nil {
				problems = append(problems, err.Error())
			}
		}
		if err := o.takeWrites(ctx, ns, st.Serving, db); err != nil {
			problems = append(problems, "taking writes again: "+err.Error())
		}
		msg := fmt.Sprintf("upgrading %s/%s in %s: %v\nthe database stays on PostgreSQL %s (Cluster %s) with every row; backup %s", team, name, env, cause, u.FromVersion, st.Serving, u.Backup.Ref)
		if len(problems) > 0 {
			msg += "\nputting it back also failed: " + strings.Join(problems, "; ")
		}
		return errors.New(msg)
	}

	wctx, cancel := context.WithTimeout(ctx, opts.Wait)
	defer cancel()
	var to string
	commit, err := o.edit(wctx, team, name, fmt.Sprintf("databases: upgrade %s/%s in %s to PostgreSQL %d (import from %s)", team, name, env, opts.To, st.Serving), func(f *database.File) error {
		var err error
		to, err = f.StartUpgrade(env, opts.To, image)
		return err
	})
	if err != nil {
		return nil, undo(err, to)
	}
	u.To, u.Commits = to, append(u.Commits, commit)
	if err := o.waitCluster(wctx, ns, to); err != nil {
		return nil, undo(err, to)
	}
	if u.ToVersion, err = o.serverVersion(wctx, ns, to); err != nil {
		return nil, undo(err, to)
	}
	before, err := o.rowCounts(wctx, ns, st.Serving, db)
	if err != nil {
		return nil, undo(err, to)
	}
	after, err := o.rowCounts(wctx, ns, to, db)
	if err != nil {
		return nil, undo(err, to)
	}
	if before != after {
		return nil, undo(fmt.Errorf("the new Cluster's rows differ from the old one's: %s, not %s", after, before), to)
	}
	u.Rows = after
	o.say("%s holds every row (%s) on PostgreSQL %s", to, orNone(after), u.ToVersion)
	// The import may carry the database's settings over, the hold too.
	if err := o.takeWrites(wctx, ns, to, db); err != nil {
		return nil, undo(err, to)
	}
	if commit, err = o.edit(wctx, team, name, fmt.Sprintf("databases: %s/%s in %s now served by %s (PostgreSQL %s); %s kept until confirmed", team, name, env, to, u.ToVersion, st.Serving), func(f *database.File) error {
		return f.Switch(env)
	}); err != nil {
		return nil, undo(err, to)
	}
	u.Commits = append(u.Commits, commit)
	if err := o.waitService(wctx, ns, database.ServiceName(name), to); err != nil {
		return nil, fmt.Errorf("%w\nthe fleet sends %s/%s in %s to %s; roll back with slipway db rollback %s/%s --env %s", err, team, name, env, to, team, name, env)
	}
	if err := o.endSessions(wctx, ns, st.Serving, db); err != nil {
		o.say("ending the app's sessions on %s: %v (they end by themselves within minutes)", st.Serving, err)
	}
	u.WritesHeld = time.Since(held).Round(time.Millisecond)
	o.say("%s/%s in %s runs on PostgreSQL %s (%s); writes were held %s; %s is kept, read-only, until slipway db confirm %s/%s --env %s (or rollback)",
		team, name, env, u.ToVersion, to, u.WritesHeld, st.Serving, team, name, env)
	return u, nil
}

// waitCluster waits until a Cluster is healthy, and fails as soon as one
// of its pods does (an image without PostgreSQL's programs, an import
// that errs), with what the pod said.
func (o *dbOps) waitCluster(ctx context.Context, ns, cluster string) error {
	start, last := time.Now(), ""
	for {
		obj, err := o.dyn.Resource(clustersGVR).Namespace(ns).Get(ctx, cluster, metav1.GetOptions{})
		phase := "not applied yet"
		switch {
		case err == nil:
			st := clusterStatus(obj, "")
			if st.Ready {
				o.say("Cluster %s in %s: %s (%s)", cluster, ns, st.Phase, time.Since(start).Round(time.Second))
				return nil
			}
			phase = st.Phase
		case !apierrors.IsNotFound(err):
			if ctx.Err() != nil {
				return fmt.Errorf("Cluster %s in %s is not healthy after %s: %s", cluster, ns, time.Since(start).Round(time.Second), last)
			}
			return err
		}
		if phase != last {
			o.say("Cluster %s in %s: %s (%s)", cluster, ns, phase, time.Since(start).Round(time.Second))
			last = phase
		}
		if why := o.failedPod(ctx, ns, cluster); why != "" {
			return fmt.Errorf("Cluster %s in %s failed: %s", cluster, ns, why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Cluster %s in %s is not healthy after %s: %s", cluster, ns, time.Since(start).Round(time.Second), last)
		case <-time.After(2 * time.Second):
		}
	}
}

// failedPod says why a pod of the Cluster failed, if one did.
func (o *dbOps) failedPod(ctx context.Context, ns, cluster string) string {
	pods, err := o.pg.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "cnpg.io/cluster=" + cluster})
	if err != nil {
		return ""
	}
	for _, pod := range pods.Items {
		for _, cs := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
			why := ""
			switch {
			case cs.State.Waiting != nil && slices.Contains([]string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError", "CreateContainerConfigError", "CrashLoopBackOff"}, cs.State.Waiting.Reason):
				why = cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
			case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
				why = fmt.Sprintf("exit status %d", cs.State.Terminated.ExitCode)
			case cs.LastTerminationState.Terminated != nil && cs.LastTerminationState.Terminated.ExitCode != 0 && cs.RestartCount > 1:
				why = fmt.Sprintf("restarted %d times, last exit status %d", cs.RestartCount, cs.LastTerminationState.Terminated.ExitCode)
			}
			if why != "" {
				return fmt.Sprintf("pod %s, container %s: %s%s", pod.Name, cs.Name, why, o.logTail(ctx, ns, pod.Name, cs.Name))
			}
		}
	}
	return ""
}

// logTail is the end of a container's log, as lines to append. CNPG logs
// JSON: of those lines, the errors' message and error are kept.
func (o *dbOps) logTail(ctx context.Context, ns, pod, container string) string {
	lines := int64(8)
	data, err := o.pg.kube.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, TailLines: &lines, LimitBytes: ptr.To(int64(16 << 10))}).DoRaw(ctx)
	if err != nil {
		return ""
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var entry struct{ Level, Msg, Error string }
		switch {
		case strings.TrimSpace(line) == "":
		case json.Unmarshal([]byte(line), &entry) != nil:
			out = append(out, line)
		case entry.Level == "error":
			out = append(out, strings.TrimSuffix(entry.Msg+": "+entry.Error, ": "))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "\n  " + strings.Join(out, "\n  ")
}

// waitGone waits until a Cluster the fleet no longer holds is deleted, so
// that an upgrade tried again makes its Cluster anew.
func (o *dbOps) waitGone(ctx context.Context, ns, cluster string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		_, err := o.dyn.Resource(clustersGVR).Namespace(ns).Get(ctx, cluster, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Cluster %s in %s is not deleted yet (Flux prunes it; see slipway get kustomizations -n %s)", cluster, ns, flux.Namespace)
		case <-time.After(time.Second):
		}
	}
}

// waitService waits until the database's Service sends connections to
// the primary of cluster (its endpoints are that pod's).
func (o *dbOps) waitService(ctx context.Context, ns, service, cluster string) error {
	for {
		pod, err := o.pg.primary(ctx, ns, cluster)
		if err != nil {
			return err
		}
		eps, err := o.pg.kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + service})
		if err == nil {
			for _, s := range eps.Items {
				for _, e := range s.Endpoints {
					if e.TargetRef != nil && e.TargetRef.Name == pod && e.Conditions.Ready != nil && *e.Conditions.Ready {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Service %s in %s does not send connections to %s yet", service, ns, pod)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "no tables"
	}
	return s
}

// DatabaseRollback is what a rollback did in one environment.
type DatabaseRollback struct {
	Env string `json:"env"`
	// Serving is the Cluster the app is back on; Removed the one that went.
	Serving string `json:"serving"`
	Removed string `json:"removed"`
	// Backup holds the removed Cluster's data, writes made since the
	// upgrade included (they are not carried back).
	Backup *database.Backup `json:"backup,omitempty"`
	Commit string           `json:"commit"`
}

// RollbackDatabase puts an environment's database back on the Cluster its
// last upgrade left: the app is sent back to it, writes are taken again
// there, and the upgraded Cluster goes, after a backup of it (writes made
// since the upgrade are in that backup, not in the database).
func RollbackDatabase(ctx context.Context, p *platform.Platform, team, name, env string, wait time.Duration, progress io.Writer) (*DatabaseRollback, error) {
	o, st, err := opsOn(ctx, p, team, name, env, progress)
	if err != nil {
		return nil, err
	}
	ns, db := flux.TenantNamespace(team, env), database.SQLName(name)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r := &DatabaseRollback{Env: env}
	switch {
	case st.Upgrading != "":
		// An upgrade that stopped before its switch: the app never left.
		r.Serving, r.Removed = st.Serving, st.Upgrading
	case st.Previous != "":
		r.Serving, r.Removed = st.Previous, st.Serving
		if r.Backup, err = o.backup(ctx, team, name, env, st.Serving); err != nil {
			return nil, fmt.Errorf("%w\nnothing was rolled back", err)
		}
	default:
		return nil, fmt.Errorf("%s/%s in %s has no upgrade to roll back", team, name, env)
	}
	if err := o.takeWrites(ctx, ns, r.Serving, db); err != nil {
		return nil, fmt.Errorf("taking writes again on %s: %w; nothing was rolled back", r.Serving, err)
	}
	r.Commit, err = o.edit(ctx, team, name, fmt.Sprintf("databases: roll %s/%s in %s back to %s (%s goes)", team, name, env, r.Serving, r.Removed), func(f *database.File) error {
		_, err := f.Rollback(env)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := o.waitService(ctx, ns, database.ServiceName(name), r.Serving); err != nil {
		return nil, err
	}
	if err := o.waitGone(ctx, ns, r.Removed); err != nil {
		return nil, err
	}
	o.say("%s/%s in %s is served by %s again; %s is removed", team, name, env, r.Serving, r.Removed)
	return r, nil
}

// ConfirmDatabase ends an environment's upgrade: the Cluster it kept
// goes, and its data with it (its backup stays in the registry).
func ConfirmDatabase(ctx context.Context, p *platform.Platform, team, name, env string, wait time.Duration, progress io.Writer) (string, error) {
	o, st, err := opsOn(ctx, p, team, name, env, progress)
	if err != nil {
		return "", err
	}
	if st.Previous == "" {
		return "", fmt.Errorf("%s/%s in %s has no upgrade to confirm", team, name, env)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	commit, err := o.edit(ctx, team, name, fmt.Sprintf("databases: confirm the upgrade of %s/%s in %s (%s goes)", team, name, env, st.Previous), func(f *database.File) error {
		_, err := f.Confirm(env)
		return err
	})
	if err != nil {
		return "", err
	}
	o.say("%s/%s in %s: %s and its data are removed; %s serves", team, name, env, st.Previous, st.Serving)
	return commit, nil
}

// BackupDatabase backs up an environment's database now.
func BackupDatabase(ctx context.Context, p *platform.Platform, team, name, env string, progress io.Writer) (*database.Backup, error) {
	o, st, err := opsOn(ctx, p, team, name, env, progress)
	if err != nil {
		return nil, err
	}
	return o.backup(ctx, team, name, env, st.Serving)
}

// DatabaseBackups lists a database's backups, newest first.
func DatabaseBackups(ctx context.Context, p *platform.Platform, team, name, env string) ([]database.Backup, error) {
	o, err := newDBOps(p, nil)
	if err != nil {
		return nil, err
	}
	return o.reg.Backups(ctx, team, name, env)
}

// RestoreDatabase restores a backup into a new database beside the live
// one, in the serving Cluster of env: the live data is not touched, and
// the restored copy can be read and compared (or dropped). It returns the
// restored tables' row counts.
func RestoreDatabase(ctx context.Context, p *platform.Platform, team, name, env, tag, into string, progress io.Writer) (string, error) {
	if !validSQLName(into) {
		return "", fmt.Errorf("database name %q: use lower-case letters, digits and underscores, starting with a letter, at most 63", into)
	}
	if into == database.SQLName(name) || into == "postgres" || strings.HasPrefix(into, "template") {
		return "", fmt.Errorf("restore into a new database, not %q: the live data is never overwritten", into)
	}
	o, st, err := opsOn(ctx, p, team, name, env, progress)
	if err != nil {
		return "", err
	}
	ns := flux.TenantNamespace(team, env)
	tmp, err := os.CreateTemp("", "slipway-restore-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	b, err := o.reg.FetchBackup(ctx, team, name, tag, tmp)
	if err != nil {
		return "", err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := o.pg.sql(ctx, ns, st.Serving, "postgres", fmt.Sprintf("create database %s owner %s", into, database.SQLName(name))); err != nil {
		return "", fmt.Errorf("making database %s: %w", into, err)
	}
	o.say("restoring %s (%d bytes, %s) into database %s of %s in %s", b.Ref, b.Size, b.Taken.Format(time.RFC3339), into, st.Serving, env)
	if err := o.pg.exec(ctx, ns, st.Serving, []string{"pg_restore", "--no-owner", "--role=" + database.SQLName(name), "--exit-on-error", "-d", into}, tmp, io.Discard); err != nil {
		return "", fmt.Errorf("restoring %s into %s: %w (drop it with slipway kubectl exec ... dropdb %s)", tag, into, err, into)
	}
	return o.rowCounts(ctx, ns, st.Serving, into)
}

func validSQLName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
