package release

import (
	"context"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/gitrepo"
)

// Promotion asks for an app's tested version to move on.
type Promotion struct {
	Team, App, From, To string
	// Version, when set, must be the version running in From.
	Version string
	By      string
	// Sync names the fleet's sync GitRepository in flux-system, asked to
	// fetch the promotion at once; empty means flux.SyncName.
	Sync string
}

// Promoted says what was promoted.
type Promoted struct {
	Team    string    `json:"team"`
	Version string    `json:"version"`
	Image   string    `json:"image"`
	Commit  string    `json:"commit"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	TestAt  time.Time `json:"testedAt"`
}

// Promote commits the version running in From to To's overlay in the
// fleet repository, pinned exactly, and asks Flux to apply it. Only a
// version that became ready (slipway wait) and passed its tests (slipway
// test) there, with the very image still running, may go.
// Without a team, the one team with a release of that name in From is
// meant.
func Promote(ctx context.Context, c *Clients, fleet gitrepo.Remote, p Promotion) (*Promoted, error) {
	if p.Team == "" {
		ns, err := Locate(ctx, c, "", p.App, p.From)
		if err != nil {
			return nil, err
		}
		p.Team = flux.TenantTeam(ns, p.From)
	}
	from := flux.TenantNamespace(p.Team, p.From)
	o, hr, err := flux.Get(ctx, c.Dyn, flux.HelmRelease, from, p.App)
	if err != nil {
		return nil, fmt.Errorf("reading %s in %s: %w", p.App, from, err)
	}
	snap, ok := latest(hr)
	if !ok || snap.Status != "deployed" || o.Ready != "True" {
		return nil, fmt.Errorf("%s is not deployed and ready in %s (Flux: %s): nothing promoted", p.App, from, o.Message)
	}
	version := snap.ChartVersion
	if p.Version != "" && p.Version != version {
		return nil, fmt.Errorf("%s runs %s in %s, not %s: only the version running there, tested, can be promoted", p.App, version, from, p.Version)
	}
	recs, err := Records(ctx, c, from, p.App)
	if err != nil {
		return nil, err
	}
	var rec *Record
	for i := range recs {
		if recs[i].Version == version {
			rec = &recs[i]
		}
	}
	switch {
	case rec == nil || rec.ReadyAt.IsZero():
		return nil, fmt.Errorf("%s %s in %s was never confirmed ready (run slipway wait %s --env %s --version %s): nothing promoted", p.App, version, from, p.App, p.From, version)
	case rec.Test == nil:
		return nil, fmt.Errorf("%s %s in %s has not been tested (run slipway test %s --env %s): nothing promoted", p.App, version, from, p.App, p.From)
	case !rec.Test.Passed:
		return nil, fmt.Errorf("%s %s in %s failed its tests at %s (%s): nothing promoted", p.App, version, from, rec.Test.At.Format(time.RFC3339), failedChecks(rec.Test))
	}
	image, err := readyImage(ctx, c, from, p.App)
	if err != nil {
		return nil, err
	}
	if image != rec.Image {
		return nil, fmt.Errorf("%s %s in %s now runs %s, not the image that was tested (%s): test again", p.App, version, from, image, rec.Image)
	}
	now := time.Now().UTC()
	message := fmt.Sprintf("promote %s/%s %s from %s to %s\n\nimage: %s\ntested: %s by %s\npromoted by: %s\n",
		p.Team, p.App, version, p.From, p.To, image, rec.Test.At.Format(time.RFC3339), orNone(rec.Test.By), orNone(p.By))
	commit, err := fleet.Change(ctx, gitrepo.Platform, message, func(dir string) error {
		return flux.SetRelease(dir, flux.Release{Team: p.Team, App: p.App, Env: p.To, Version: version, Annotations: map[string]string{
			"slipway.dev/image":         image,
			"slipway.dev/promoted-by":   p.By,
			"slipway.dev/promoted-at":   now.Format(time.RFC3339),
			"slipway.dev/promoted-from": p.From,
			"slipway.dev/tested-at":     rec.Test.At.Format(time.RFC3339),
		}})
	})
	if err != nil {
		return nil, fmt.Errorf("committing the promotion to the fleet repository: %w", err)
	}
	to := flux.TenantNamespace(p.Team, p.To)
	if err := update(ctx, c, to, p.App, version, func(r *Record) {
		r.Image, r.PromotedAt, r.PromotedBy, r.PromotedFrom, r.Commit = image, now, p.By, p.From, commit
	}); err != nil {
		return nil, err
	}
	// Apply it now, not at the next interval.
	sync := p.Sync
	if sync == "" {
		sync = flux.SyncName
	}
	if _, err := flux.RequestReconcile(ctx, c.Dyn, flux.GitRepository, flux.Namespace, sync); err == nil {
		_, _ = flux.RequestReconcile(ctx, c.Dyn, flux.Kustomization, flux.Namespace, "tenants-"+p.To)
	}
	return &Promoted{Team: p.Team, Version: version, Image: image, Commit: commit, From: p.From, To: p.To, TestAt: rec.Test.At}, nil
}

func failedChecks(t *Test) string {
	var out []string
	for _, c := range t.Checks {
		if !c.Passed {
			out = append(out, c.Name+": "+c.Message)
		}
	}
	if len(out) == 0 {
		return "no check passed"
	}
	return fmt.Sprint(out)
}
