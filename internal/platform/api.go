package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/release"
)

// APIPath is where the platform's API answers, on the git server's
// addresses (the host's and the node's). No repository path can start
// with "-", so it never hides one.
const APIPath = "/-/api/v1/"

// PromotionRequest asks the platform to promote an app's tested version.
type PromotionRequest struct {
	// Team may be empty: the one team with a release of that name in From.
	Team    string `json:"team,omitempty"`
	App     string `json:"app"`
	From    string `json:"from"`
	To      string `json:"to"`
	Version string `json:"version,omitempty"`
	// For names the person the caller acts for (a pipeline's requester);
	// it is recorded, not trusted.
	For string `json:"for,omitempty"`
}

// apiError is the body of every refusal.
type apiError struct {
	Error string `json:"error"`
}

// maxRequestBytes bounds a request body.
const maxRequestBytes = 64 << 10

// promoteTimeout bounds one promotion (the checks and the fleet commit).
const promoteTimeout = 2 * time.Minute

// API serves the platform's API. Promotions go through it so that the one
// writer of prod is the platform: it checks who asks (the platform's users,
// by Basic authentication), that the caller belongs to the app's team (ops
// may promote anything), and the evidence in the platform's own records,
// then commits to the fleet repository as itself, naming who asked.
type API struct {
	Config config.Config
	Users  *auth.Store
	// Promote does the promotion once the caller is allowed; nil means
	// release.Promote on the local cluster and fleet repository.
	Promote func(ctx context.Context, p release.Promotion) (*release.Promoted, error)
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == APIPath+"promotions" && r.Method == http.MethodPost {
		a.promote(w, r)
		return
	}
	writeJSON(w, http.StatusNotFound, apiError{"no such API: POST " + APIPath + "promotions is the one there is"})
}

func (a *API) promote(w http.ResponseWriter, r *http.Request) {
	name, password, ok := r.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="slipway"`)
		writeJSON(w, http.StatusUnauthorized, apiError{"log in: the platform's API needs a user and password"})
		return
	}
	user, err := a.Users.Authenticate(name, password)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="slipway"`)
		writeJSON(w, http.StatusUnauthorized, apiError{err.Error()})
		return
	}
	var req PromotionRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"reading the request: " + err.Error()})
		return
	}
	if err := req.validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	// Without a team, a team's user means its own team; ops's release is
	// found by the app's name.
	if req.Team == "" && !user.Admin {
		if len(user.Push) != 1 || flux.ValidTeam(strings.TrimSuffix(user.Push[0], "/")) != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"say which team's app with --team"})
			return
		}
		req.Team = strings.TrimSuffix(user.Push[0], "/")
	}
	if !user.Admin && !user.CanPush(req.Team+"/") {
		writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf("user %s does not belong to team %s: only the team (or ops) may promote its apps; nothing promoted", user.Name, req.Team)})
		return
	}
	by := user.Name
	if req.For != "" && req.For != user.Name {
		by = user.Name + " for " + req.For
	}
	promote := a.Promote
	if promote == nil {
		promote = a.promoteLocally
	}
	ctx, cancel := context.WithTimeout(r.Context(), promoteTimeout)
	defer cancel()
	res, err := promote(ctx, release.Promotion{Team: req.Team, App: req.App, From: req.From, To: req.To, Version: req.Version, By: by})
	if err != nil {
		writeJSON(w, http.StatusConflict, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (req PromotionRequest) validate() error {
	if req.Team != "" {
		if err := flux.ValidTeam(req.Team); err != nil {
			return err
		}
	}
	if req.App == "" {
		return errors.New("name the app")
	}
	for _, env := range []string{req.From, req.To} {
		if !slices.Contains(flux.Environments, env) {
			return fmt.Errorf("environment %q: want one of %v", env, flux.Environments)
		}
	}
	if req.From == req.To {
		return errors.New("--from and --to name the same environment")
	}
	return nil
}

// promoteLocally promotes on this platform's cluster and fleet repository,
// as the platform (cluster-admin, fleet as ops).
func (a *API) promoteLocally(ctx context.Context, p release.Promotion) (*release.Promoted, error) {
	kubeconfig := ClusterOptions(a.Config).AdminKubeconfig()
	c, err := release.Connect(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("the platform has no cluster to promote in: %w", err)
	}
	fleet, err := fleetRemote(a.Config)
	if err != nil {
		return nil, err
	}
	return release.Promote(ctx, c, fleet, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RequestPromotion asks the running platform's API for a promotion, as
// the user given.
func (p *Platform) RequestPromotion(ctx context.Context, user, password string, req PromotionRequest) (*release.Promoted, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.GitURL()+APIPath+"promotions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if user != "" {
		hr.SetBasicAuth(user, password)
	}
	hr.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("asking the platform to promote: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxRequestBytes))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("the platform refused the promotion: %s", e.Error)
		}
		return nil, fmt.Errorf("the platform refused the promotion: %s", res.Status)
	}
	var out release.Promoted
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("reading the platform's answer: %w", err)
	}
	return &out, nil
}
