package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Alert is an alert as Alertmanager's API v2 shows it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		// State is active, suppressed (silenced or inhibited) or
		// unprocessed.
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// Matcher selects alerts by one label.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

// Silence mutes the alerts its matchers select, for a while.
type Silence struct {
	ID        string    `json:"id,omitempty"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	Status    *struct {
		State string `json:"state"`
	} `json:"status,omitempty"`
}

// Alertmanager reads and writes an Alertmanager's API v2.
type Alertmanager struct {
	// URL is its base URL (http://127.0.0.1:9093).
	URL    string
	Client *http.Client
}

func (a Alertmanager) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+"/api/v2/"+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("asking Alertmanager: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("Alertmanager answered %s: %s", res.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Alerts lists the alerts the filter matchers select (Alertmanager's
// syntax, such as team="dev1"), silenced and inhibited ones included.
func (a Alertmanager) Alerts(ctx context.Context, filter ...string) ([]Alert, error) {
	q := url.Values{}
	for _, f := range filter {
		q.Add("filter", f)
	}
	var out []Alert
	return out, a.do(ctx, http.MethodGet, "alerts?"+q.Encode(), nil, &out)
}

// Silences lists the silences the filter matchers select.
func (a Alertmanager) Silences(ctx context.Context, filter ...string) ([]Silence, error) {
	q := url.Values{}
	for _, f := range filter {
		q.Add("filter", f)
	}
	var out []Silence
	return out, a.do(ctx, http.MethodGet, "silences?"+q.Encode(), nil, &out)
}

// Silence returns one silence.
func (a Alertmanager) Silence(ctx context.Context, id string) (*Silence, error) {
	var out Silence
	return &out, a.do(ctx, http.MethodGet, "silence/"+url.PathEscape(id), nil, &out)
}

// CreateSilence adds a silence and returns its ID.
func (a Alertmanager) CreateSilence(ctx context.Context, s Silence) (string, error) {
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	s.ID = ""
	return out.SilenceID, a.do(ctx, http.MethodPost, "silences", s, &out)
}

// ExpireSilence ends a silence now.
func (a Alertmanager) ExpireSilence(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "silence/"+url.PathEscape(id), nil, nil)
}
