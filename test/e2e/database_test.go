package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dbStatus is one line of `slipway db status -o json`.
type dbStatus struct {
	Team, Name, Env, Namespace, Image, Version, Phase, Secret string
	Instances, ReadyInstances                                 int64
	Ready                                                     bool
}

// TestDatabases: ops gives a team PostgreSQL databases through the fleet.
// CloudNativePG's operator, built from its module, is applied by Flux from
// the fleet; the PostgreSQL images are made from Debian's packages; each
// database is a CNPG Cluster in the team's staging and prod namespaces on
// a volume of the platform's StorageClass. Teams reach their own
// database's credentials and nothing of another team's, and cannot remove
// a database (ops owns them).
func TestDatabases(t *testing.T) {
	e := clusterEnv(t)
	e.vars = append(e.vars, "SLIPWAY_DATABASES=true")
	gitAddr := freeAddr(t)
	start := time.Now()
	e.startUpWithin(45*time.Minute, "--registry-addr", freeAddr(t), "--git-addr", gitAddr)
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
		{[]string{"db", "create", "quotes"}, "TEAM/NAME"},
	} {
		r := e.run("", tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("slipway %s: exit %d, want a refusal saying %q:\n%s", strings.Join(tc.args, " "), r.code, tc.want, r.stderr)
		}
	}

	e.mustRun("", "tenant", "create", "dev1")
	e.mustRun("", "tenant", "create", "dev2")

	create := func(name, version string) []dbStatus {
		t.Helper()
		began := time.Now()
		r := e.mustRun("", "db", "create", "dev2/"+name, "--version", version, "--wait", "8m", "-o", "json")
		t.Logf("db create dev2/%s --version %s: serving in both environments after %s", name, version, time.Since(began).Round(time.Second))
		var created struct {
			Commit string
			Status []dbStatus
		}
		if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
			t.Fatalf("db create -o json: %v\n%s", err, r.stdout)
		}
		if created.Commit == "" || len(created.Status) != 2 {
			t.Fatalf("db create -o json: %+v", created)
		}
		return created.Status
	}
	psql := func(ns, pod, sql string) string {
		t.Helper()
		return strings.TrimSpace(e.mustKubectl("exec", "-n", ns, pod, "-c", "postgres", "--", "psql", "-d", "app", "-tAc", sql))
	}

	for _, st := range create("quotes", "15") {
		if !st.Ready || !strings.HasPrefix(st.Version, "15.") || st.Secret != "quotes-app" {
			t.Errorf("dev2/quotes in %s: %+v", st.Env, st)
		}
		// The server is the one the image names, and the app's database
		// takes rows.
		if v := psql(st.Namespace, "quotes-1", "select version()"); !strings.HasPrefix(v, "PostgreSQL "+st.Version+" ") {
			t.Errorf("%s: select version() = %q, want PostgreSQL %s", st.Namespace, v, st.Version)
		}
		psql(st.Namespace, "quotes-1", "create table quotes (id serial primary key, text text not null); insert into quotes (text) values ('in "+st.Env+"')")
		if got := psql(st.Namespace, "quotes-1", "select text from quotes"); got != "in "+st.Env {
			t.Errorf("%s: the row read back is %q", st.Namespace, got)
		}
		// Its data is on a volume of the platform's StorageClass.
		pv := e.mustKubectl("get", "pvc", "quotes-1", "-n", st.Namespace, "-o", "jsonpath={.spec.storageClassName} {.spec.volumeName}")
		class, volume, _ := strings.Cut(pv, " ")
		if class != "slipway-local" {
			t.Errorf("%s: the claim's class is %q", st.Namespace, class)
		}
		if _, err := os.Stat(filepath.Join(e.home, "volumes", volume, "pgdata", "PG_VERSION")); err != nil {
			t.Errorf("%s: the volume's data is not under the state directory: %v", st.Namespace, err)
		}
	}
	// The same database again is refused, and nothing changes.
	if r := e.run("", "db", "create", "dev2/quotes", "--version", "17"); r.code == 0 || !strings.Contains(r.stderr, "database exists") {
		t.Errorf("a second db create dev2/quotes: exit %d\n%s", r.code, r.stderr)
	}
	for _, st := range create("notes", "17") {
		if !st.Ready || !strings.HasPrefix(st.Version, "17.") {
			t.Errorf("dev2/notes in %s: %+v", st.Env, st)
		}
		if v := psql(st.Namespace, "notes-1", "select version()"); !strings.HasPrefix(v, "PostgreSQL 17.") {
			t.Errorf("%s: select version() = %q", st.Namespace, v)
		}
	}
	var list []dbStatus
	if err := json.Unmarshal([]byte(e.mustRun("", "db", "status", "dev2", "-o", "json").stdout), &list); err != nil || len(list) != 4 {
		t.Fatalf("db status dev2: %v %+v", err, list)
	}
	if out := e.mustRun("", "db", "status").stdout; !strings.Contains(out, "dev2/notes") || !strings.Contains(out, "Cluster in healthy state") {
		t.Errorf("db status:\n%s", out)
	}

	// From the attacker's side: dev1's accounts reach no credentials of
	// dev2's; dev2's staging and CI accounts reach staging's only; no
	// team account may delete or change a database, which ops owns.
	for _, tc := range []struct{ as, verb, res, ns, want string }{
		{"dev1-staging:dev1", "get", "secrets/quotes-app", "dev2-staging", "no"},
		{"dev1-ci:ci", "get", "secrets/quotes-app", "dev2-staging", "no"},
		{"dev1-prod:dev1", "get", "secrets/quotes-app", "dev2-prod", "no"},
		{"dev2-staging:dev2", "get", "secrets/quotes-app", "dev2-staging", "yes"},
		{"dev2-staging:dev2", "get", "secrets/quotes-app", "dev2-prod", "no"},
		{"dev2-ci:ci", "get", "secrets/quotes-app", "dev2-prod", "no"},
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
}
