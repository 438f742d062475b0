package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Outage is the longest time an app did not answer during the upgrade.
type Outage struct {
	Namespace, App string
	// Longest is the longest run of failed probes, from the first failure
	// to the next answer; Failed counts failed probes of Probes.
	Longest        time.Duration
	Failed, Probes int
}

// upgradeTheCluster plays the cluster part of the ops track: ops plans the
// upgrade to the release the demo was given, performs it while both
// teams' apps are probed in staging and prod, checks every program
// reports the new release, and dev1 ships a version through the upgraded
// line.
func (d *Demo) upgradeTheCluster(ctx context.Context, res *Result) error {
	to := d.Upgrade
	if err := d.step("ops", "plans the upgrade: slipway cluster upgrade --plan --to "+to, func() error {
		out, err := d.slipway(ctx, "cluster", "upgrade", "--plan", "--to", to)
		fmt.Fprintln(d.Out, indent(out))
		return err
	}); err != nil {
		return err
	}
	targets, err := d.probeTargets(ctx)
	if err != nil {
		return err
	}
	stopProbes := startProbes(ctx, targets)
	err = d.step("ops", "upgrades the cluster: slipway cluster upgrade --to "+to, func() error {
		out, err := d.slipway(ctx, "cluster", "upgrade", "--to", to)
		fmt.Fprintln(d.Out, indent(out))
		return err
	})
	outages := stopProbes()
	res.Outages = outages
	var lines []string
	for _, o := range outages {
		lines = append(lines, fmt.Sprintf("%s/%s: unavailable for %s at most (%d of %d probes failed)", o.Namespace, o.App, o.Longest.Round(100*time.Millisecond), o.Failed, o.Probes))
	}
	fmt.Fprintln(d.Out, indent(strings.Join(lines, "\n")))
	if err != nil {
		return err
	}
	if err := d.step("ops", "checks every program reports "+to+": slipway kubectl get nodes, version", func() error {
		kubelet, err := d.slipway(ctx, "kubectl", "get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.kubeletVersion}")
		if err != nil {
			return err
		}
		proxy, err := kubeProxyVersion(ctx)
		if err != nil {
			return err
		}
		out2, err := d.slipway(ctx, "kubectl", "version", "-o", "json")
		if err != nil {
			return err
		}
		var v struct {
			ServerVersion struct{ GitVersion string } `json:"serverVersion"`
		}
		if err := json.Unmarshal([]byte(out2), &v); err != nil {
			return err
		}
		if kubelet != to || proxy != to || v.ServerVersion.GitVersion != to {
			return fmt.Errorf("after the upgrade: kubelet %q, kube-proxy %q, API server %q", kubelet, proxy, v.ServerVersion.GitVersion)
		}
		fmt.Fprintln(d.Out, indent("API server, kubelet and kube-proxy: "+to))
		return nil
	}); err != nil {
		return err
	}
	return d.ship(ctx, apps[0], "2.0", res)
}

// kubeProxyVersion reads the release kube-proxy reports in its metrics
// (the node object no longer carries it).
func kubeProxyVersion(ctx context.Context) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:10249/metrics", nil)
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("kube-proxy's metrics: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return "", err
	}
	m := buildVersion.FindSubmatch(body)
	if m == nil {
		return "", errors.New("kube-proxy's metrics carry no kubernetes_build_info")
	}
	return string(m[1]), nil
}

var buildVersion = regexp.MustCompile(`kubernetes_build_info\{[^}]*git_version="([^"]+)"`)

// probeTarget is one app's Service in one environment.
type probeTarget struct {
	namespace, app, url string
}

// probeTargets are both teams' apps in staging and prod, by their
// Services' cluster addresses, which kube-proxy routes from the host too.
func (d *Demo) probeTargets(ctx context.Context) ([]probeTarget, error) {
	var out []probeTarget
	for _, a := range apps {
		for _, env := range []string{"staging", "prod"} {
			ns := a.team + "-" + env
			addr, err := d.slipway(ctx, "kubectl", "-n", ns, "get", "service", a.name, "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].port}")
			if err != nil {
				return nil, err
			}
			f := strings.Fields(addr)
			if len(f) != 2 {
				return nil, fmt.Errorf("service %s/%s has no address: %q", ns, a.name, addr)
			}
			out = append(out, probeTarget{ns, a.name, "http://" + net.JoinHostPort(f[0], f[1]) + "/healthz"})
		}
	}
	return out, nil
}

// startProbes probes every target until the function it returns is
// called, which gives each one's outage. The apps answered again before
// what was measured ended (it waits for them); a moment more of probes
// shows they keep answering.
func startProbes(ctx context.Context, targets []probeTarget) func() []Outage {
	probeCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	outages := make([]Outage, len(targets))
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outages[i] = probe(probeCtx, t)
		}()
	}
	return func() []Outage {
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
		cancel()
		wg.Wait()
		return outages
	}
}

// probe asks the app every 200 ms, each request bounded by a second, until
// ctx ends, and measures the longest stretch without an answer.
func probe(ctx context.Context, t probeTarget) Outage {
	o := Outage{Namespace: t.namespace, App: t.app}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var downSince time.Time
	for ctx.Err() == nil {
		at := time.Now()
		ok := false
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
		if res, err := client.Do(req); err == nil {
			ok = res.StatusCode < 500
			res.Body.Close()
		}
		if ctx.Err() != nil {
			break
		}
		o.Probes++
		switch {
		case !ok:
			o.Failed++
			if downSince.IsZero() {
				downSince = at
			}
		case !downSince.IsZero():
			if d := at.Sub(downSince); d > o.Longest {
				o.Longest = d
			}
			downSince = time.Time{}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200*time.Millisecond - time.Since(at)):
		}
	}
	if !downSince.IsZero() {
		if d := time.Since(downSince); d > o.Longest {
			o.Longest = d
		}
	}
	return o
}
