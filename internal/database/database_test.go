package database

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestClustersOnePerEnvironment(t *testing.T) {
	d := Database{Team: "dev2", Name: "quotes", Major: 15, Image: "127.0.0.1:5000/slipway/postgresql:15.18@sha256:" + strings.Repeat("a", 64)}
	data, err := d.Clusters()
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "---\n")
	if len(docs) != 2 {
		t.Fatalf("want a Cluster per environment, got %d documents:\n%s", len(docs), data)
	}
	for i, ns := range []string{"dev2-staging", "dev2-prod"} {
		var c struct {
			APIVersion, Kind string
			Metadata         struct {
				Name, Namespace string
				Labels          map[string]string
			}
			Spec struct {
				Instances int
				ImageName string
				Storage   struct{ Size string }
			}
		}
		if err := yaml.Unmarshal([]byte(docs[i]), &c); err != nil {
			t.Fatal(err)
		}
		if c.APIVersion != "postgresql.cnpg.io/v1" || c.Kind != "Cluster" || c.Metadata.Name != "quotes" || c.Metadata.Namespace != ns ||
			c.Spec.ImageName != d.Image || c.Spec.Instances != 1 || c.Spec.Storage.Size != "1Gi" || c.Metadata.Labels["slipway.dev/team"] != "dev2" {
			t.Errorf("document %d: %+v", i, c)
		}
	}
}

func TestDatabaseNamesChecked(t *testing.T) {
	for _, d := range []Database{
		{Team: "dev2", Name: "Quotes", Major: 15},
		{Team: "dev2", Name: "quotes_db", Major: 15},
		{Team: "dev2", Name: "-quotes", Major: 15},
		{Team: "dev2", Name: strings.Repeat("q", 41), Major: 15},
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
	s := string(Sync())
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
