package flux

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// The fleet repository's tenant layout, all Kustomize:
//
//	tenants/base/<team>/            the team's account, its rights and its chart source
//	tenants/<env>/<team>/           overlay: namespace <team>-<env>, the base, and releases
//	tenants/<env>/kustomization.yaml  every team of that environment
//
// Staging releases follow a semver range; prod releases pin the exact
// version `slipway promote` wrote.

var teamRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// ValidTeam checks a team name: it becomes namespaces, an account and a
// registry prefix.
func ValidTeam(team string) error {
	if !teamRe.MatchString(team) {
		return fmt.Errorf("team name %q: use lower-case letters, digits and -, starting with a letter", team)
	}
	return nil
}

// TenantNamespace is a team's namespace in an environment.
func TenantNamespace(team, env string) string { return team + "-" + env }

// TenantTeam is the team a namespace of env belongs to: TenantNamespace
// read backwards.
func TenantTeam(ns, env string) string { return strings.TrimSuffix(ns, "-"+env) }

// Tenant is a team as the fleet repository knows it.
type Tenant struct {
	Team string
	// ChartsURL is the OCI repository of the team's charts as the cluster
	// reaches it (oci://REGISTRY/TEAM/charts).
	ChartsURL string
	// PlatformCA: the registry presents a certificate of the platform's
	// CA (see HelmRepositoryObject).
	PlatformCA bool
	// EventsURL, when set, is the platform's Flux event endpoint for the
	// team: the tenant gets its notification objects (see
	// TenantNotificationObjects).
	EventsURL string
}

// AddTenant writes a team's base and overlays. It is idempotent.
func AddTenant(dir string, t Tenant) error {
	if err := ValidTeam(t.Team); err != nil {
		return err
	}
	base := filepath.Join(dir, "tenants", "base", t.Team)
	sa, rb := AccountObjects(t.Team)
	if err := writeFile(dir, "tenants/base/"+t.Team+"/account.yaml", mustMarshal(sa, rb)); err != nil {
		return err
	}
	if t.ChartsURL != "" {
		if err := AddSource(dir, t.Team, "charts", t.ChartsURL, t.PlatformCA); err != nil {
			return err
		}
	}
	if err := writeKustomization(base, ""); err != nil {
		return err
	}
	for _, env := range Environments {
		overlay := "tenants/" + env + "/" + t.Team
		if err := writeFile(dir, overlay+"/namespace.yaml", mustMarshal(NamespaceObject(t.Team, env))); err != nil {
			return err
		}
		if err := writeFile(dir, overlay+"/ci-access.yaml", mustMarshal(CIAccessObject(t.Team, env))); err != nil {
			return err
		}
		if t.EventsURL != "" {
			if err := writeFile(dir, NotificationsPath(t.Team, env), mustMarshal(TenantNotificationObjects(t.Team, env, t.EventsURL)...)); err != nil {
				return err
			}
		}
		if err := writeKustomization(filepath.Join(dir, filepath.FromSlash(overlay)), TenantNamespace(t.Team, env)); err != nil {
			return err
		}
		if err := writeEnvKustomization(dir, env); err != nil {
			return err
		}
	}
	ci := "tenants/" + CIOverlay + "/" + t.Team
	if err := writeFile(dir, ci+"/namespace.yaml", mustMarshal(NamespaceObject(t.Team, CIOverlay))); err != nil {
		return err
	}
	if err := writeFile(dir, ci+"/account.yaml", mustMarshal(CIAccountObject(t.Team))); err != nil {
		return err
	}
	if err := writeKustomization(filepath.Join(dir, filepath.FromSlash(ci)), ""); err != nil {
		return err
	}
	return writeEnvKustomization(dir, CIOverlay)
}

// RemoveTenant deletes a team's files; Flux then prunes its objects.
func RemoveTenant(dir, team string) error {
	if err := ValidTeam(team); err != nil {
		return err
	}
	found := false
	for _, d := range append([]string{"base"}, Overlays...) {
		p := filepath.Join(dir, "tenants", d, team)
		if _, err := os.Stat(p); err == nil {
			found = true
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("there is no tenant %s in the fleet repository", team)
	}
	for _, env := range Overlays {
		if err := writeEnvKustomization(dir, env); err != nil {
			return err
		}
	}
	return nil
}

// Tenants lists the teams in the fleet repository.
func Tenants(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "tenants", "base"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// AddSource writes an OCI HelmRepository for a team's charts into its base.
func AddSource(dir, team, name, url string, platformCA bool) error {
	if _, err := os.Stat(filepath.Join(dir, "tenants", "base", team)); err != nil {
		if name != "charts" { // AddTenant makes the base with its first source
			return fmt.Errorf("there is no tenant %s: create it first (slipway tenant create %s)", team, team)
		}
	}
	if !strings.HasPrefix(url, "oci://") {
		return fmt.Errorf("source URL %q: want oci://REGISTRY/PATH", url)
	}
	if err := writeFile(dir, "tenants/base/"+team+"/source-"+name+".yaml", mustMarshal(HelmRepositoryObject(name, url, platformCA))); err != nil {
		return err
	}
	return writeKustomization(filepath.Join(dir, "tenants", "base", team), "")
}

// TrustPlatformCA rewrites the tenants' chart sources written when the
// platform's registry spoke plain HTTP (insecure: true) to verify its
// certificate with the platform's CA instead. It returns the files it
// changed.
func TrustPlatformCA(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tenants", "base", "*", "source-*.yaml"))
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var repo sourcev1.HelmRepository
		if err := yaml.Unmarshal(data, &repo); err != nil || repo.Kind != sourcev1.HelmRepositoryKind || !repo.Spec.Insecure {
			continue // not a source of Slipway's writing: left as it is
		}
		rel, _ := filepath.Rel(dir, f)
		if err := writeFile(dir, filepath.ToSlash(rel), mustMarshal(HelmRepositoryObject(repo.Name, repo.Spec.URL, true))); err != nil {
			return nil, err
		}
		changed = append(changed, rel)
	}
	return changed, nil
}

// Release is one app's HelmRelease in one environment.
type Release struct {
	Team, App, Env string
	// Chart is the chart's name in the source (default: App).
	Chart string
	// Source is the HelmRepository's name (default: charts).
	Source string
	// Version is a semver range (staging) or an exact version (prod).
	Version string
	// Annotations record, for prod, who promoted what and when.
	Annotations map[string]string
}

func (r Release) withDefaults() Release {
	if r.Chart == "" {
		r.Chart = r.App
	}
	if r.Source == "" {
		r.Source = "charts"
	}
	return r
}

// ReleasePath is the file a release lives in.
func ReleasePath(team, env, app string) string {
	return "tenants/" + env + "/" + team + "/release-" + app + ".yaml"
}

// SetRelease writes (or rewrites) a release into its environment overlay.
func SetRelease(dir string, r Release) error {
	overlay := filepath.Join(dir, "tenants", r.Env, r.Team)
	if _, err := os.Stat(overlay); err != nil {
		return fmt.Errorf("there is no tenant %s in %s: create it first (slipway tenant create %s)", r.Team, r.Env, r.Team)
	}
	if err := writeFile(dir, ReleasePath(r.Team, r.Env, r.App), mustMarshal(HelmReleaseObject(r))); err != nil {
		return err
	}
	return writeKustomization(overlay, TenantNamespace(r.Team, r.Env))
}

// writeKustomization lists every other YAML file of a directory (and, in
// an overlay, the team's base) and sets the overlay's namespace.
func writeKustomization(dir, namespace string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var resources []string
	if namespace != "" {
		resources = append(resources, "../../base/"+filepath.Base(dir))
	}
	resources = append(resources, yamlFiles(entries, false)...)
	sort.Strings(resources)
	return os.WriteFile(filepath.Join(dir, "kustomization.yaml"),
		kustomizationFile("# Written by slipway; lists every file of this directory.", namespace, resources), 0o644)
}

// writeEnvKustomization lists every team of an environment (its
// directories) and keeps any other YAML file ops put there by hand.
func writeEnvKustomization(dir, env string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "tenants", env))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return writeFile(dir, "tenants/"+env+"/kustomization.yaml",
		kustomizationFile("# The "+env+" overlay: one entry per team, written by slipway tenant create.", "", yamlFiles(entries, true)))
}

// yamlFiles names the YAML files of a directory listing other than its
// kustomization.yaml, and its subdirectories when dirs is set, in the
// listing's order.
func yamlFiles(entries []os.DirEntry, dirs bool) []string {
	var out []string
	for _, e := range entries {
		if (dirs && e.IsDir()) || (!e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml") {
			out = append(out, e.Name())
		}
	}
	return out
}

// kustomizationFile renders a kustomization.yaml under a comment line.
func kustomizationFile(comment, namespace string, resources []string) []byte {
	var b strings.Builder
	b.WriteString(comment + "\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
	if namespace != "" {
		b.WriteString("namespace: " + namespace + "\n")
	}
	if len(resources) == 0 {
		b.WriteString("resources: []\n")
		return []byte(b.String())
	}
	b.WriteString("resources:\n")
	for _, r := range resources {
		b.WriteString("- " + r + "\n")
	}
	return []byte(b.String())
}

// TenantObjects are a tenant's objects as its overlays add them up, for
// --dry-run.
func TenantObjects(t Tenant) []runtime.Object {
	var out []runtime.Object
	for _, env := range Environments {
		ns := TenantNamespace(t.Team, env)
		sa, rb := AccountObjects(t.Team)
		ci := CIAccessObject(t.Team, env)
		withNamespace(ns, sa, rb, ci)
		out = append(out, NamespaceObject(t.Team, env), sa, rb, ci)
		if t.ChartsURL != "" {
			repo := HelmRepositoryObject("charts", t.ChartsURL, t.PlatformCA)
			withNamespace(ns, repo)
			out = append(out, repo)
		}
		if t.EventsURL != "" {
			for _, o := range TenantNotificationObjects(t.Team, env, t.EventsURL) {
				o.(metav1.Object).SetNamespace(ns)
				out = append(out, o)
			}
		}
	}
	return append(out, NamespaceObject(t.Team, CIOverlay), CIAccountObject(t.Team))
}

// SourceObjects are a chart source as each of the team's overlays has it,
// for --dry-run.
func SourceObjects(team, name, url string, platformCA bool) []runtime.Object {
	var out []runtime.Object
	for _, env := range Environments {
		repo := HelmRepositoryObject(name, url, platformCA)
		withNamespace(TenantNamespace(team, env), repo)
		out = append(out, repo)
	}
	return out
}

// ReleaseObjects is a release in its namespace, for --dry-run.
func ReleaseObjects(r Release) []runtime.Object {
	hr := HelmReleaseObject(r)
	withNamespace(TenantNamespace(r.Team, r.Env), hr)
	return []runtime.Object{hr}
}
