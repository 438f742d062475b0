package database

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/slipway-dev/slipway/internal/flux"
)

// File is a database's file in the fleet: its Clusters and Services, in
// every environment, as YAML documents.
type File struct {
	Team, Name string
	Docs       []*unstructured.Unstructured
}

// ErrNoDatabase says the fleet has no such database.
var ErrNoDatabase = errors.New("no such database")

// ReadFile reads a database's file from a work tree of the fleet.
func ReadFile(dir, team, name string) (*File, error) {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(Path(team, name))))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s/%s: %w (slipway db status lists them)", team, name, ErrNoDatabase)
	}
	if err != nil {
		return nil, err
	}
	f := &File{Team: team, Name: name}
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", Path(team, name), err)
		}
		if obj != nil {
			f.Docs = append(f.Docs, &unstructured.Unstructured{Object: obj})
		}
	}
	return f, nil
}

// add appends an object, as YAML would read it back (plain maps and
// lists), so that the unstructured helpers can walk it.
func (f *File) add(obj map[string]any) {
	data, err := json.Marshal(obj)
	if err != nil {
		panic(err) // made of maps, strings and numbers: always marshals
	}
	var plain map[string]any
	if err := json.Unmarshal(data, &plain); err != nil {
		panic(err)
	}
	f.Docs = append(f.Docs, &unstructured.Unstructured{Object: plain})
}

// Marshal is the file's content.
func (f *File) Marshal() ([]byte, error) {
	var out []byte
	for i, d := range f.Docs {
		data, err := yaml.Marshal(d.Object)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, data...)
	}
	return out, nil
}

// Write writes the file back into a work tree of the fleet.
func (f *File) Write(dir string) error {
	data, err := f.Marshal()
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# Database %s of team %s: a CloudNativePG Cluster per environment and the Service the app reaches it by (slipway db).\n", f.Name, f.Team)
	return writeFile(dir, Path(f.Team, f.Name), append([]byte(header), data...))
}

func (f *File) find(kind, ns, name string) int {
	for i, d := range f.Docs {
		if d.GetKind() == kind && d.GetNamespace() == ns && d.GetName() == name {
			return i
		}
	}
	return -1
}

func (f *File) remove(kind, ns, name string) {
	if i := f.find(kind, ns, name); i >= 0 {
		f.Docs = append(f.Docs[:i], f.Docs[i+1:]...)
	}
}

// EnvState is one environment's database as the fleet says it.
type EnvState struct {
	Env, Namespace string
	// Serving is the Cluster the app's Service sends it to.
	Serving string
	// Previous is the Cluster an upgrade left behind until ops confirms
	// it or rolls back to it.
	Previous string
	// Upgrading is the Cluster an upgrade is filling.
	Upgrading string
	// Majors are the PostgreSQL major versions of the Clusters by name.
	Majors map[string]int
}

// State reads one environment's state.
func (f *File) State(env string) (EnvState, error) {
	ns := flux.TenantNamespace(f.Team, env)
	st := EnvState{Env: env, Namespace: ns, Majors: map[string]int{}}
	i := f.find("Service", ns, ServiceName(f.Name))
	if i < 0 {
		return st, fmt.Errorf("%s has no Service %s in %s: it was made before upgrades existed or edited by hand; recreate it", Path(f.Team, f.Name), ServiceName(f.Name), ns)
	}
	a := f.Docs[i].GetAnnotations()
	st.Serving, st.Previous, st.Upgrading = a[ServingAnnotation], a[PreviousAnnotation], a[UpgradingAnnotation]
	for _, d := range f.Docs {
		if d.GetKind() == "Cluster" && d.GetNamespace() == ns {
			major, _ := strconv.Atoi(d.GetLabels()[MajorLabel])
			st.Majors[d.GetName()] = major
		}
	}
	if _, ok := st.Majors[st.Serving]; !ok {
		return st, fmt.Errorf("%s: the Service in %s names Cluster %q, which the file does not hold", Path(f.Team, f.Name), ns, st.Serving)
	}
	return st, nil
}

func (f *File) service(ns string) *unstructured.Unstructured {
	return f.Docs[f.find("Service", ns, ServiceName(f.Name))]
}

func (f *File) annotate(ns, key, value string) {
	svc := f.service(ns)
	a := svc.GetAnnotations()
	if value == "" {
		delete(a, key)
	} else {
		a[key] = value
	}
	svc.SetAnnotations(a)
}

// StartUpgrade adds, in env, a Cluster of the new major version that
// imports the database from the serving one. The app stays where it is.
func (f *File) StartUpgrade(env string, major int, image string) (string, error) {
	st, err := f.State(env)
	if err != nil {
		return "", err
	}
	switch {
	case st.Upgrading != "":
		return "", fmt.Errorf("%s/%s in %s is being upgraded to %s already: roll it back first (slipway db rollback %s/%s --env %s)", f.Team, f.Name, env, st.Upgrading, f.Team, f.Name, env)
	case st.Previous != "":
		return "", fmt.Errorf("%s/%s in %s still keeps %s from its last upgrade: confirm or roll back that one first (slipway db confirm|rollback %s/%s --env %s)", f.Team, f.Name, env, st.Previous, f.Team, f.Name, env)
	case st.Majors[st.Serving] >= major:
		return "", fmt.Errorf("%s/%s in %s runs PostgreSQL %d: an upgrade goes to a later major version", f.Team, f.Name, env, st.Majors[st.Serving])
	}
	from := f.Docs[f.find("Cluster", st.Namespace, st.Serving)]
	size, _, _ := unstructured.NestedString(from.Object, "spec", "storage", "size")
	name := UpgradeClusterName(f.Name, major)
	if _, ok := st.Majors[name]; ok {
		return "", fmt.Errorf("%s already holds a Cluster %s in %s", Path(f.Team, f.Name), name, env)
	}
	d := Database{Team: f.Team, Name: f.Name, Major: major, Image: image, Size: size}
	f.add(d.cluster(name, st.Namespace, st.Serving))
	f.annotate(st.Namespace, UpgradingAnnotation, name)
	return name, nil
}

// Switch sends the app to the upgraded Cluster and keeps the one it
// leaves as the previous one.
func (f *File) Switch(env string) error {
	st, err := f.State(env)
	if err != nil {
		return err
	}
	if st.Upgrading == "" {
		return fmt.Errorf("%s/%s in %s has no upgrade in progress", f.Team, f.Name, env)
	}
	if err := unstructured.SetNestedField(f.service(st.Namespace).Object, selector(st.Upgrading), "spec", "selector"); err != nil {
		return err
	}
	f.annotate(st.Namespace, ServingAnnotation, st.Upgrading)
	f.annotate(st.Namespace, PreviousAnnotation, st.Serving)
	f.annotate(st.Namespace, UpgradingAnnotation, "")
	return nil
}

// Rollback undoes env's upgrade: the app goes back to the previous
// Cluster and the upgraded one is removed (an upgrade that never
// switched just loses its new Cluster). It returns the Cluster removed.
func (f *File) Rollback(env string) (string, error) {
	st, err := f.State(env)
	if err != nil {
		return "", err
	}
	switch {
	case st.Upgrading != "":
		f.remove("Cluster", st.Namespace, st.Upgrading)
		f.annotate(st.Namespace, UpgradingAnnotation, "")
		return st.Upgrading, nil
	case st.Previous != "":
		if err := unstructured.SetNestedField(f.service(st.Namespace).Object, selector(st.Previous), "spec", "selector"); err != nil {
			return "", err
		}
		f.remove("Cluster", st.Namespace, st.Serving)
		f.annotate(st.Namespace, ServingAnnotation, st.Previous)
		f.annotate(st.Namespace, PreviousAnnotation, "")
		return st.Serving, nil
	}
	return "", fmt.Errorf("%s/%s in %s has no upgrade to roll back (it keeps no previous Cluster)", f.Team, f.Name, env)
}

// Confirm ends env's upgrade: the previous Cluster and its data go. It
// returns the Cluster removed.
func (f *File) Confirm(env string) (string, error) {
	st, err := f.State(env)
	if err != nil {
		return "", err
	}
	if st.Previous == "" {
		return "", fmt.Errorf("%s/%s in %s has no upgrade to confirm", f.Team, f.Name, env)
	}
	f.remove("Cluster", st.Namespace, st.Previous)
	f.annotate(st.Namespace, PreviousAnnotation, "")
	return st.Previous, nil
}
