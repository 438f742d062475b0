package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// dbStatus is one line of `slipway db status -o json`.
type dbStatus struct {
	Team, Name, Env, Namespace, Image, Version, Phase, Secret, Cluster, Role string
	Instances, ReadyInstances                                                int64
	Ready                                                                    bool
	SizeBytes                                                                int64
	LastBackup                                                               *struct{ Tag, Env string }
}

// TestDatabases: ops gives dev2's quotes a PostgreSQL 15 database through
// the fleet and upgrades its engine to 17 with nothing lost, as the demo
// plays it (CloudNativePG's operator built from its module and applied by
// Flux; PostgreSQL images made from Debian's packages; a volume of the
// platform's StorageClass per instance). Then, from the side of what can
// go wrong: a backup is restored and holds the rows; an upgrade to an
// image without PostgreSQL's programs fails, says why, and leaves the
// database on 15 with every row, taking writes; a rollback puts a
// database back on 15; no team account reaches another's credentials or
// changes a database.
func TestDatabases(t *testing.T) {
	e := clusterEnv(t)
	// The default addresses, as `slipway demo` uses them: the example
	// charts name the registry 127.0.0.1:5000 for their test image.
	regAddr, gitAddr := "127.0.0.1:5000", "127.0.0.1:3000"
	for _, addr := range []string{regAddr, gitAddr} {
		if ln, err := net.Listen("tcp", addr); err != nil {
			t.Fatalf("TestDatabases needs %s free (the example charts use the default registry address): %v", addr, err)
		} else {
			ln.Close()
		}
	}
	// Without monitoring: TestLine plays the bake; here it would only
	// add minutes.
	e.vars = append(e.vars, "SLIPWAY_DATABASES=true", "SLIPWAY_MONITORING=false", "SLIPWAY_GIT_ADDR="+gitAddr, "SLIPWAY_REGISTRY_ADDR="+regAddr)
	start := time.Now()
	e.startUpWithin(45*time.Minute, "--registry-addr", regAddr, "--git-addr", gitAddr)
	t.Logf("platform with databases ready in %s (includes any first build)", time.Since(start).Round(time.Millisecond))

	// Refused before anything is committed: a version the platform does
	// not run, a team that is not onboarded, a bad name.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"db", "create", "dev2/quotes", "--version", "16"}, "PostgreSQL 15 and 17"},
		{[]string{"db", "create", "dev2/quotes", "--version", "15"}, `no tenant "dev2"`},
		{[]string{"db", "create", "dev2/Quotes_DB", "--version", "15"}, "lower-case"},
		{[]string{"db", "create", "dev2/quotes-pg17", "--version", "15"}, "the platform's"},
		{[]string{"db", "create", "quotes"}, "TEAM/NAME"},
		{[]string{"db", "upgrade", "dev2/quotes", "--to", "16"}, "PostgreSQL 15 and 17"},
		{[]string{"db", "rollback", "dev2/quotes"}, "--env"},
	} {
		r := e.run("", tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("slipway %s: exit %d, want a refusal saying %q:\n%s", strings.Join(tc.args, " "), r.code, tc.want, r.stderr)
		}
	}

	// The demo: quotes on PostgreSQL 15 from its first release, 20 quotes
	// stored in each environment, the engine upgraded in staging (dev2's
	// tests run against it) and prod while quotes is read, every quote
	// found, the upgrade confirmed, and a new version shipped through the
	// line against PostgreSQL 17.
	began := time.Now()
	demo := e.run("", "demo")
	t.Logf("slipway demo (%s):\n%s", time.Since(began).Round(time.Second), demo.stdout)
	if demo.code != 0 || !strings.Contains(demo.stdout, "every step passed") {
		t.Fatalf("slipway demo: exit %d\n%s\n%s", demo.code, demo.stdout, demo.stderr)
	}
	for _, want := range []string{"slipway db create dev2/quotes --version 15", "upgrades dev2/quotes in staging to PostgreSQL 17",
		"tests quotes against the upgraded database", "finds every quote in staging and prod on PostgreSQL 17",
		"reads unanswered during the database upgrade: dev2-staging/quotes", "reads unanswered during the database upgrade: dev2-prod/quotes",
		"writes held", "pushes quotes 1.4"} {
		if !strings.Contains(demo.stdout+demo.stderr, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	for _, m := range regexp.MustCompile(`reads unanswered during the database upgrade: \S+ \S+`).FindAllString(demo.stdout, -1) {
		t.Log(m)
	}
	psql := func(ns, pod, db, sql string) string {
		t.Helper()
		return strings.TrimSpace(e.mustKubectl("exec", "-n", ns, pod, "-c", "postgres", "--", "psql", "-X", "-d", db, "-tAc", sql))
	}
	// Checked here on its own: both environments run 17, hold the 20
	// quotes and the 3 the app starts with (staging the smoke test's
	// too: tests run there), and the 15 Clusters are gone with the
	// confirmation.
	var status []dbStatus
	if err := json.Unmarshal([]byte(e.mustRun("", "db", "status", "dev2", "-o", "json").stdout), &status); err != nil || len(status) != 2 {
		t.Fatalf("db status dev2 after the demo: %v\n%+v", err, status)
	}
	for _, st := range status {
		if st.Cluster != "quotes-pg17" || st.Role != "serving" || !strings.HasPrefix(st.Version, "17.") || !st.Ready || st.SizeBytes == 0 || st.LastBackup == nil || st.Secret != "quotes-db" {
			t.Errorf("dev2/quotes in %s after the upgrade: %+v", st.Env, st)
		}
		if v := psql(st.Namespace, "quotes-pg17-1", "quotes", "select version()"); !strings.HasPrefix(v, "PostgreSQL 17.") {
			t.Errorf("%s: select version() = %q", st.Namespace, v)
		}
		want := map[string]string{"staging": "24", "prod": "23"}[st.Env]
		if n := psql(st.Namespace, "quotes-pg17-1", "quotes", "select count(*) from quotes"); n != want {
			t.Errorf("%s: %s quotes on PostgreSQL 17, want %s", st.Namespace, n, want)
		}
		// Its data is on a volume of the platform's StorageClass, under
		// the state directory.
		pv := e.mustKubectl("get", "pvc", "quotes-pg17-1", "-n", st.Namespace, "-o", "jsonpath={.spec.storageClassName} {.spec.volumeName}")
		class, volume, _ := strings.Cut(pv, " ")
		if class != "slipway-local" {
			t.Errorf("%s: the claim's class is %q", st.Namespace, class)
		}
		if _, err := os.Stat(filepath.Join(e.home, "volumes", volume, "pgdata", "PG_VERSION")); err != nil {
			t.Errorf("%s: the volume's data is not under the state directory: %v", st.Namespace, err)
		}
		if out, err := e.kubectl("get", "clusters.postgresql.cnpg.io", "quotes", "-n", st.Namespace); err == nil {
			t.Errorf("%s: the PostgreSQL 15 Cluster is still there after the confirmation:\n%s", st.Namespace, out)
		}
	}

	// The backup the upgrade took restores, beside the live database,
	// with every row.
	var backups []struct{ Env, Tag string }
	if err := json.Unmarshal([]byte(e.mustRun("", "db", "backups", "dev2/quotes", "--env", "staging", "-o", "json").stdout), &backups); err != nil || len(backups) == 0 {
		t.Fatalf("db backups dev2/quotes: %v %+v", err, backups)
	}
	restored := e.mustRun("", "db", "restore", "dev2/quotes", backups[len(backups)-1].Tag, "--env", "staging", "--into", "quotes_restored")
	if !strings.Contains(restored.stdout, "public.quotes=23") && !strings.Contains(restored.stdout, "public.quotes=24") {
		t.Errorf("the restored backup: %s", restored.stdout)
	}
	if n := psql("dev2-staging", "quotes-pg17-1", "quotes_restored", "select count(*) from quotes where slug like 'q%'"); n != "20" {
		t.Errorf("the restored backup holds %s of the 20 quotes", n)
	}
	if r := e.run("", "db", "restore", "dev2/quotes", backups[0].Tag, "--env", "staging", "--into", "quotes"); r.code == 0 || !strings.Contains(r.stderr, "never overwritten") {
		t.Errorf("a restore over the live database: exit %d\n%s", r.code, r.stderr)
	}

	// A failed upgrade: the new image lacks PostgreSQL's programs (it is
	// the operator's own image, tagged as PostgreSQL 17). The database
	// stays on 15 with every row and takes writes again.
	e.mustRun("", "db", "create", "dev2/notes", "--version", "15")
	const rows = 50
	// As the app's own user, as an app makes its tables: the upgrade's
	// import reads the database as that user.
	psql("dev2-staging", "notes-1", "notes", fmt.Sprintf("set role notes; create table notes (id int primary key, text text); insert into notes select i, 'note ' || i from generate_series(1, %d) i", rows))
	broken := pushBrokenPostgres(t, e, regAddr)
	failed := e.run("", "db", "upgrade", "dev2/notes", "--to", "17", "--env", "staging", "--image", broken, "--wait", "5m")
	t.Logf("the failing upgrade:\n%s", failed.stderr)
	if failed.code == 0 || !strings.Contains(failed.stderr, "stays on PostgreSQL 15") || !strings.Contains(failed.stderr, "notes-pg17") {
		t.Errorf("an upgrade to an image without PostgreSQL: exit %d\n%s", failed.code, failed.stderr)
	}
	notesOn15 := func(when string) {
		t.Helper()
		if v := psql("dev2-staging", "notes-1", "notes", "show server_version"); !strings.HasPrefix(v, "15.") {
			t.Errorf("%s: notes runs %s", when, v)
		}
		if n := psql("dev2-staging", "notes-1", "notes", "select count(*) from notes"); n != fmt.Sprint(rows) {
			t.Errorf("%s: %s rows, want %d", when, n, rows)
		}
		// It takes writes again, as the app's own user.
		psql("dev2-staging", "notes-1", "notes", "set role notes; insert into notes values (1000 + (select count(*) from notes), 'after "+when+"'); delete from notes where id >= 1000")
	}
	notesOn15("the failed upgrade")
	eventually(t, "the failed upgrade's Cluster to go", 2*time.Minute, func() error {
		if out, err := e.kubectl("get", "clusters.postgresql.cnpg.io", "notes-pg17", "-n", "dev2-staging"); err == nil {
			return fmt.Errorf("still there:\n%s", out)
		}
		return nil
	})

	// A rollback: upgraded, then back on 15 with every row.
	e.mustRun("", "db", "upgrade", "dev2/notes", "--to", "17", "--env", "staging")
	if n := psql("dev2-staging", "notes-pg17-1", "notes", "select count(*) from notes"); n != fmt.Sprint(rows) {
		t.Errorf("notes on 17: %s rows, want %d", n, rows)
	}
	if r := e.run("", "db", "upgrade", "dev2/notes", "--to", "17", "--env", "staging"); r.code == 0 || !strings.Contains(r.stderr, "runs PostgreSQL 17 already") {
		t.Errorf("a second upgrade: exit %d\n%s", r.code, r.stderr)
	}
	e.mustRun("", "db", "rollback", "dev2/notes", "--env", "staging")
	notesOn15("the rollback")

	// From the attacker's side: dev1's accounts reach no credentials of
	// dev2's; dev2's staging and CI accounts reach staging's only; no
	// team account may delete or change a database, which ops owns.
	for _, tc := range []struct{ as, verb, res, ns, want string }{
		{"dev1-staging:dev1", "get", "secrets/quotes-db", "dev2-staging", "no"},
		{"dev1-ci:ci", "get", "secrets/quotes-db", "dev2-staging", "no"},
		{"dev1-prod:dev1", "get", "secrets/quotes-db", "dev2-prod", "no"},
		{"dev2-staging:dev2", "get", "secrets/quotes-db", "dev2-staging", "yes"},
		{"dev2-staging:dev2", "get", "secrets/quotes-db", "dev2-prod", "no"},
		{"dev2-ci:ci", "get", "secrets/quotes-db", "dev2-prod", "no"},
		{"dev2-staging:dev2", "delete", "clusters.postgresql.cnpg.io", "dev2-staging", "no"},
		{"dev2-prod:dev2", "patch", "clusters.postgresql.cnpg.io", "dev2-prod", "no"},
		{"dev2-ci:ci", "create", "clusters.postgresql.cnpg.io", "dev2-staging", "no"},
		{"dev1-staging:dev1", "delete", "persistentvolumeclaims", "dev2-staging", "no"},
		{"dev2-staging:dev2", "delete", "persistentvolumes", "", "no"},
	} {
		args := []string{tc.verb, tc.res, "--as=system:serviceaccount:" + tc.as}
		if tc.ns != "" {
			args = append(args, "-n", tc.ns)
		}
		if got := e.canI(args...); got != tc.want {
			t.Errorf("%s can-i %s %s -n %s: %s, want %s", tc.as, tc.verb, tc.res, tc.ns, got, tc.want)
		}
	}
	// The backups hold dev2's data: no team reads them from the registry.
	backupRef, _ := name.ParseReference(regAddr+"/slipway/backups/dev2/quotes:"+backups[0].Tag, name.Insecure)
	dev1 := strings.TrimSpace(e.mustRun("", "user", "set", "dev1", "--push", "dev1/").stdout)
	if _, err := remote.Head(backupRef, remote.WithAuth(&authn.Basic{Username: "dev1", Password: dev1}), remote.WithTransport(e.transport())); err == nil {
		t.Error("dev1 read dev2's database backup from the registry")
	}
}

// pushBrokenPostgres tags CNPG's operator image, which has no PostgreSQL
// in it, as a PostgreSQL 17 image, and returns its reference.
func pushBrokenPostgres(t *testing.T, e *env, regAddr string) string {
	t.Helper()
	admin := strings.TrimSpace(readFile(t, filepath.Join(e.home, "admin-password")))
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: "admin", Password: admin}), remote.WithTransport(e.transport())}
	src, err := name.ParseReference(regAddr+"/cnpg/manager:v1.30.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(src, opts...)
	if err != nil {
		t.Fatalf("reading the operator's image: %v", err)
	}
	dst, _ := name.ParseReference(regAddr+"/slipway/postgresql-broken:17.12", name.Insecure)
	if err := remote.WriteIndex(dst, idx, opts...); err != nil {
		t.Fatal(err)
	}
	digest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dst.String() + "@" + digest.String()
}
