package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Prometheus reads a Prometheus server's HTTP API.
type Prometheus struct {
	// URL is its base URL (http://127.0.0.1:9090).
	URL    string
	Client *http.Client
}

// Point is one value of a series at a time; NaN where there was none.
type Point struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// MarshalJSON writes a missing value as null.
func (p Point) MarshalJSON() ([]byte, error) {
	v := "null"
	if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
		v = strconv.FormatFloat(p.Value, 'g', -1, 64)
	}
	return fmt.Appendf(nil, `{"time":%q,"value":%s}`, p.Time.UTC().Format(time.RFC3339), v), nil
}

// UnmarshalJSON reads a value written by MarshalJSON.
func (p *Point) UnmarshalJSON(data []byte) error {
	var raw struct {
		Time  time.Time `json:"time"`
		Value *float64  `json:"value"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	p.Time, p.Value = raw.Time, math.NaN()
	if raw.Value != nil {
		p.Value = *raw.Value
	}
	return nil
}

// QueryRange evaluates a PromQL expression that gives one series (or
// none) from start to end, every step; times without a value are NaN.
func (p Prometheus) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Point, error) {
	q := url.Values{
		"query": {query},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	var data struct {
		Result []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query_range?"+q.Encode(), &data); err != nil {
		return nil, err
	}
	values := map[int64]float64{}
	if len(data.Result) > 0 {
		for _, v := range data.Result[0].Values {
			ts, _ := v[0].(float64)
			s, _ := v[1].(string)
			f, err := strconv.ParseFloat(s, 64)
			if err == nil {
				values[int64(ts)] = f
			}
		}
	}
	var out []Point
	for t := start; !t.After(end); t = t.Add(step) {
		v, ok := values[t.Unix()]
		if !ok {
			v = math.NaN()
		}
		out = append(out, Point{Time: t, Value: v})
	}
	return out, nil
}

// AppSeries are the queries `slipway metrics` shows for an app in a
// namespace, by name, in the order shown. Request series come from the
// app's own metrics (http_requests_total, http_request_duration_seconds,
// scraped where the app declares a port named "metrics"); restarts and
// memory from the platform's pod series and cAdvisor.
func AppSeries(namespace, app string) [][2]string {
	sel := fmt.Sprintf(`namespace=%q, app=%q`, namespace, app)
	pods := fmt.Sprintf(`namespace=%q, pod=~%q`, namespace, app+"-.*")
	return [][2]string{
		{"requests/s", fmt.Sprintf(`sum(rate(http_requests_total{%s}[1m]))`, sel)},
		{"5xx ratio", fmt.Sprintf(`sum(rate(http_requests_total{%s, code=~"5.."}[1m])) / sum(rate(http_requests_total{%s}[1m]))`, sel, sel)},
		{"p50 latency s", fmt.Sprintf(`histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{%s}[1m])))`, sel)},
		{"p95 latency s", fmt.Sprintf(`histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{%s}[1m])))`, sel)},
		{"restarts", fmt.Sprintf(`sum(kube_pod_container_status_restarts_total{%s})`, pods)},
		// The pods' own cgroups (no container label): the kubelet's
		// cAdvisor reports them on every runtime, while containerd's
		// containers come without pod labels on a machine like this one.
		{"memory bytes", fmt.Sprintf(`sum(container_memory_working_set_bytes{%s, container=""})`, pods)},
	}
}

// Sparkline draws points as one line of block characters, scaled from
// the smallest to the largest value; a blank where there was no value.
func Sparkline(points []Point) string {
	const blocks = "▁▂▃▄▅▆▇█"
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range points {
		if !math.IsNaN(p.Value) {
			lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
		}
	}
	var b strings.Builder
	runes := []rune(blocks)
	for _, p := range points {
		switch {
		case math.IsNaN(p.Value):
			b.WriteRune(' ')
		case hi == lo:
			b.WriteRune(runes[0])
		default:
			b.WriteRune(runes[int((p.Value-lo)/(hi-lo)*float64(len(runes)-1)+0.5)])
		}
	}
	return b.String()
}

// get reads one answer of Prometheus's HTTP API into data (its "data"
// field).
func (p Prometheus) get(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return err
	}
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("asking Prometheus: %w", err)
	}
	defer res.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(&body); err != nil {
		return fmt.Errorf("reading Prometheus's answer: %w", err)
	}
	if body.Status != "success" {
		return fmt.Errorf("Prometheus: %s", body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// RuleAlert is an alert of Prometheus's rules as it holds it now:
// pending (its condition is true, not yet for the rule's "for") or
// firing.
type RuleAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

// Alerts lists the alerts of Prometheus's rules, pending and firing.
func (p Prometheus) Alerts(ctx context.Context) ([]RuleAlert, error) {
	var data struct {
		Alerts []RuleAlert `json:"alerts"`
	}
	err := p.get(ctx, "/api/v1/alerts", &data)
	return data.Alerts, err
}
