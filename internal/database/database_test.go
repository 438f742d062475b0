package database

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/flux"
	golden "github.com/slipway-dev/slipway/internal/golden"
)

// The database's file through an upgrade's life, as golden files: made,
// an upgrade started in staging, switched, confirmed; and in prod,
// started, switched and rolled back.
func TestFileThroughAnUpgrade(t *testing.T) {
	dir := t.TempDir()
	d := Database{Team: "dev2", Name: "quotes", Major: 15, Image: "127.0.0.1:5000/slipway/postgresql:15.18@sha256:" + strings.Repeat("a", 64)}
	if err := Add(dir, d); err != nil {
		t.Fatal(err)
	}
	image17 := "127.0.0.1:5000/slipway/postgresql:17.12@sha256:" + strings.Repeat("b", 64)
	step := func(file string, change func(f *File) error) {
		t.Helper()
		f, err := ReadFile(dir, "dev2", "quotes")
		if err != nil {
			t.Fatal(err)
		}
		if change != nil {
			if err := change(f); err != nil {
				t.Fatal(err)
			}
			if err := f.Write(dir); err != nil {
				t.Fatal(err)
			}
		}
		golden.Check(t, filepath.Join("testdata", file), []byte(read(t, dir, "databases/dev2/quotes.yaml")))
	}
	step("created.yaml", nil)
	step("staging-upgrading.yaml", func(f *File) error {
		name, err := f.StartUpgrade("staging", 17, image17)
		if name != "quotes-pg17" {
			t.Errorf("the upgrade's Cluster is %q", name)
		}
		return err
	})
	step("staging-switched.yaml", func(f *File) error { return f.Switch("staging") })
	step("staging-confirmed.yaml", func(f *File) error {
		removed, err := f.Confirm("staging")
		if removed != "quotes" {
			t.Errorf("confirm removed %q", removed)
		}
		return err
	})
	step("prod-switched.yaml", func(f *File) error {
		if _, err := f.StartUpgrade("prod", 17, image17); err != nil {
			return err
		}
		return f.Switch("prod")
	})
	step("prod-rolled-back.yaml", func(f *File) error {
		removed, err := f.Rollback("prod")
		if removed != "quotes-pg17" {
			t.Errorf("rollback removed %q", removed)
		}
		return err
	})
	f, err := ReadFile(dir, "dev2", "quotes")
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"staging", "prod"} {
		st, err := f.State(env)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"staging": "quotes-pg17", "prod": "quotes"}[env]
		if st.Serving != want || st.Previous != "" || st.Upgrading != "" {
			t.Errorf("%s: %+v", env, st)
		}
	}
}

// Upgrades go one at a time and only up; confirm and rollback need an
// upgrade to act on.
func TestUpgradeStepsRefusedOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	if err := Add(dir, Database{Team: "dev2", Name: "quotes", Major: 17, Image: "r/p:17.12"}); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(dir, "dev2", "quotes")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.StartUpgrade("staging", 17, "r/p:17.12"); err == nil || !strings.Contains(err.Error(), "later major") {
		t.Errorf("an upgrade to the same major: %v", err)
	}
	if _, err := f.Confirm("staging"); err == nil {
		t.Error("confirmed an upgrade that never was")
	}
	if _, err := f.Rollback("staging"); err == nil {
		t.Error("rolled back an upgrade that never was")
	}
	if err := f.Switch("staging"); err == nil {
		t.Error("switched to no upgrade")
	}
	if _, err := f.StartUpgrade("staging", 18, "r/p:18.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.StartUpgrade("staging", 19, "r/p:19.1"); err == nil || !strings.Contains(err.Error(), "being upgraded") {
		t.Errorf("a second upgrade at once: %v", err)
	}
	if _, err := ReadFile(dir, "dev2", "notes"); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("a database that is not there: %v", err)
	}
}

func TestDatabaseNamesChecked(t *testing.T) {
	for _, d := range []Database{
		{Team: "dev2", Name: "Quotes", Major: 15},
		{Team: "dev2", Name: "quotes_db", Major: 15},
		{Team: "dev2", Name: "-quotes", Major: 15},
		{Team: "dev2", Name: strings.Repeat("q", 33), Major: 15},
		{Team: "dev2", Name: "quotes-pg17", Major: 15},
		{Team: "dev2", Name: "quotes-db", Major: 15},
		{Team: "dev2", Name: "../x", Major: 15},
		{Team: "Dev2", Name: "quotes", Major: 15},
		{Team: "dev2", Name: "quotes", Major: 16},
	} {
		if err := d.Check(); err == nil {
			t.Errorf("%+v: accepted", d)
		}
	}
	if err := (Database{Team: "dev2", Name: "quotes-2", Major: 17}).Check(); err != nil {
		t.Error(err)
	}
}

func TestAddListsEveryDatabaseAndRefusesAgain(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureDatabasesDir(dir); err != nil {
		t.Fatal(err)
	}
	if k := read(t, dir, "databases/kustomization.yaml"); !strings.Contains(k, "resources: []") {
		t.Errorf("empty databases directory:\n%s", k)
	}
	for _, d := range []Database{{Team: "dev2", Name: "quotes", Major: 15, Image: "r/p:15.18"}, {Team: "dev1", Name: "hello", Major: 17, Image: "r/p:17.12"}} {
		if err := Add(dir, d); err != nil {
			t.Fatal(err)
		}
	}
	if k := read(t, dir, "databases/kustomization.yaml"); !strings.Contains(k, "- dev1/hello.yaml\n- dev2/quotes.yaml\n") {
		t.Errorf("kustomization.yaml:\n%s", k)
	}
	before := read(t, dir, "databases/dev2/quotes.yaml")
	err := Add(dir, Database{Team: "dev2", Name: "quotes", Major: 17, Image: "r/p:17.12"})
	if !errors.Is(err, ErrExists) {
		t.Errorf("adding dev2/quotes again: %v", err)
	}
	if after := read(t, dir, "databases/dev2/quotes.yaml"); after != before {
		t.Errorf("the refused add changed the file:\n%s", after)
	}
}

func TestOperatorOverlayNamesTheImage(t *testing.T) {
	cfg := t.TempDir()
	for _, f := range []string{"default/kustomization.yaml", "manager/manager.yaml"} {
		p := filepath.Join(cfg, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("kind: X\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digest := "sha256:" + strings.Repeat("0", 64)
	files, err := Operator{ConfigDir: cfg, Image: "127.0.0.1:5000/cnpg/manager:v1.30.0@" + digest}.Files()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["infrastructure/cnpg/upstream/config/manager/manager.yaml"]; !ok {
		t.Errorf("the upstream configuration is not kept as it is: %v", files)
	}
	overlay := string(files["infrastructure/cnpg/kustomization.yaml"])
	for _, want := range []string{"newName: 127.0.0.1:5000/cnpg/manager", "newTag: v1.30.0", "digest: " + digest, "- upstream/config/default", "name: " + OperatorDeployment} {
		if !strings.Contains(overlay, want) {
			t.Errorf("overlay lacks %q:\n%s", want, overlay)
		}
	}
	if _, err := (Operator{ConfigDir: cfg, Image: "no spaces allowed here"}).Files(); err == nil {
		t.Error("a malformed image reference was accepted")
	}
	if _, err := (Operator{ConfigDir: t.TempDir(), Image: "r/x:1"}).Files(); err == nil {
		t.Error("a configuration without default/kustomization.yaml was accepted")
	}
}

func TestSyncWaitsForTheOperator(t *testing.T) {
	s := string(Sync(flux.SyncName))
	for _, want := range []string{"name: cnpg", "path: ./infrastructure/cnpg", "wait: true", "name: databases", "path: ./databases", "dependsOn:\n  - name: cnpg"} {
		if !strings.Contains(s, want) {
			t.Errorf("sync lacks %q:\n%s", want, s)
		}
	}
}

func read(t *testing.T, dir, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
