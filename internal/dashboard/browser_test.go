package dashboard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/internal/ci/runner"
	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/lineview"
	"github.com/slipway-dev/slipway/internal/release"
	"github.com/slipway-dev/slipway/internal/testutil/browsertest"
)

// dev1 signs in with the keyboard alone, sees its team's events, sees a
// new one arrive live, and is refused dev2's view; at a phone's width
// the page still shows the events. No console errors on the way.
func TestBrowserTimeline(t *testing.T) {
	for _, size := range browsertest.Sizes {
		t.Run(size.Name, func(t *testing.T) {
			f := newFixture(t)
			ctx, consoleErrors := browsertest.Start(t, size.Width, size.Height)
			err := chromedp.Do(ctx,
				// Headless Chromium's window is at least 500 wide: a
				// phone's viewport is emulated.
				chromedp.EmulateViewport(size.Width, size.Height),
				chromedp.Navigate(f.srv.URL+Path+"timeline"),
				chromedp.WaitVisible(chromedp.ID("user")),
				// Keyboard only: the user field has the focus, Tab goes to
				// the password, Enter sends the form.
				chromedp.KeyEvent("dev1"),
				chromedp.KeyEvent("\t"),
				chromedp.KeyEvent("dev1-password"),
				chromedp.KeyEvent("\r"),
				chromedp.WaitVisible(chromedp.ID("events")),
			)
			if err != nil {
				t.Fatal(err)
			}
			text := func(sel chromedp.CSS) string { t.Helper(); return browsertest.Text(t, ctx, sel) }
			if h := text("h1"); h != "Timeline of dev1" {
				t.Errorf("heading %q", h)
			}
			if page := text("#events"); !strings.Contains(page, "dev1 pushed hello") || strings.Contains(page, "dev2") {
				t.Errorf("dev1's timeline:\n%s", page)
			}
			// Live: the stream is open once the page says so; a new event
			// of dev1's goes on top, dev2's never shows.
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.Search(`//span[@id="live" and text()="Live."]`))); err != nil {
				t.Fatal(err)
			}
			for _, e := range []events.Event{
				{Source: events.SourceGit, Team: "dev2", Message: "dev2 pushed secretly"},
				{Source: events.SourcePipeline, Team: "dev1", Severity: "error", Message: "run 8 of hello failed"},
			} {
				e.Time = time.Now()
				if e.Severity == "" {
					e.Severity = "info"
				}
				if err := f.timeline.Append(e); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.Search(`//tbody[@id="events"]/tr[1][contains(., "run 8 of hello failed")]`))); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(text("#events"), "secretly") {
				t.Error("dev2's event reached dev1's page")
			}
			browsertest.Screenshot(t, ctx, "timeline-dev1-"+size.Name)

			if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+Path+"timeline?team=dev2")); err != nil {
				t.Fatal(err)
			}
			if h := text("h1"); h != "Not yours" {
				t.Errorf("dev1 opening dev2's timeline sees %q", h)
			}
			browsertest.Screenshot(t, ctx, "refused-dev1-"+size.Name)
			if errs := browsertest.Unexpected(consoleErrors()); len(errs) > 0 {
				t.Errorf("console errors: %v", errs)
			}
		})
	}
}

// BenchmarkTimelineFirstPaint measures how soon Chromium paints the
// Timeline of ops with a full page of events (200), signed in, on
// loopback: the first contentful paint as the browser reports it, and
// the time until the page's own script has run.
//
//	go test -run '^$' -bench TimelineFirstPaint -benchtime 20x ./internal/dashboard
func BenchmarkTimelineFirstPaint(b *testing.B) {
	f := newFixture(b)
	for i := range maxTimeline {
		team := []string{"dev1", "dev2"}[i%2]
		e := events.Event{Time: time.Now(), Source: events.SourcePipeline, Team: team, Severity: "info",
			Kind: "Pipeline", Name: team + "/app", Message: fmt.Sprintf("run %d of %s/app succeeded", i, team)}
		if err := f.timeline.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	ctx, _ := browsertest.Start(b, 1280, 800)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+Path+"login?next="+Path+"timeline"),
		chromedp.SendKeys(chromedp.ID("user"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "admin-password\r"),
		chromedp.WaitVisible(chromedp.ID("events")),
	); err != nil {
		b.Fatal(err)
	}
	measurePaint(b, ctx, f.srv.URL+Path+"timeline", "events")
}

// dev1's Line page shows its app and not dev2's, takes a new version as
// it is recorded, opens the run of a version and sees its log written
// live and its end; dev2's run is refused. At both widths, no console
// errors (the refusal's 403 aside).
func TestBrowserLineAndRun(t *testing.T) {
	for _, size := range browsertest.Sizes {
		t.Run(size.Name, func(t *testing.T) {
			rf := newRunsFixture(t)
			ctx, consoleErrors := browsertest.Start(t, size.Width, size.Height)
			if err := chromedp.Do(ctx,
				chromedp.EmulateViewport(size.Width, size.Height),
				chromedp.Navigate(rf.srv.URL+Path),
				chromedp.SendKeys(chromedp.ID("user"), "dev1"),
				chromedp.SendKeys(chromedp.ID("password"), "dev1-password\r"),
				chromedp.WaitVisible(chromedp.ID("apps")),
				chromedp.WaitVisible(chromedp.Search(`//span[@id="live" and text()="Live."]`)),
			); err != nil {
				t.Fatal(err)
			}
			text := func(sel chromedp.CSS) string { t.Helper(); return browsertest.Text(t, ctx, sel) }
			if h := text("h1"); h != "Line of dev1" {
				t.Errorf("heading %q", h)
			}
			if page := text("#apps"); !strings.Contains(page, "dev1/hello") || strings.Contains(page, "quotes") {
				t.Errorf("dev1's line:\n%s", page)
			}
			// A run of a new version ends: its row comes with the event.
			next := &runner.Run{Pipeline: "dev1/hello", Reason: "IndividualCI", Commit: strings.Repeat("c", 40), RequestedBy: "dev1",
				Status: runner.Succeeded, QueuedAt: time.Now(), FinishedAt: time.Now(), Stages: []runner.StageResult{{Name: "Build", Status: runner.Succeeded,
					Jobs: []runner.JobResult{{Name: "build", Status: runner.Succeeded, Steps: []runner.StepResult{{DisplayName: "chart", Status: runner.Succeeded,
						Outputs: map[string]string{"version": "1.0.9"}}}}}}}}
			if err := rf.store.New(next); err != nil {
				t.Fatal(err)
			}
			if err := rf.timeline.Append(events.Event{Time: time.Now(), Source: events.SourcePipeline, Team: "dev1", Severity: "info", Message: "run succeeded"}); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.Search(`//tr[@data-version="1.0.9"]`))); err != nil {
				t.Fatal(err)
			}
			browsertest.Screenshot(t, ctx, "line-dev1-"+size.Name)

			// The running run: its log so far, then a line as it is written,
			// then its end.
			if err := chromedp.Do(ctx,
				chromedp.Navigate(rf.srv.URL+Path+"runs/"+strconv.Itoa(rf.dev1.ID)),
				chromedp.WaitVisible(chromedp.Search(`//pre[contains(., "=== RUN TestHello")]`)),
			); err != nil {
				t.Fatal(err)
			}
			rf.writeLog(t, rf.dev1, "logs/1.log", "--- PASS: TestHello (0.00s)\n")
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.Search(`//pre[contains(., "--- PASS: TestHello")]`))); err != nil {
				t.Fatal(err)
			}
			// Keyboard only: Tab reaches Cancel, Enter asks for it.
			for i := 0; ; i++ {
				focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
				if err != nil {
					t.Fatal(err)
				}
				if focused == "cancel" {
					break
				}
				if i == 40 {
					t.Fatal("Tab never reaches the Cancel button")
				}
				if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(ctx, chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.Search(`//span[@id="action-result" and contains(., "asked run")]`))); err != nil {
				t.Fatal(err)
			}
			if !rf.store.CancelRequested(rf.dev1.ID) {
				t.Error("Cancel by keyboard did not reach the runner")
			}
			rf.dev1.Status, rf.dev1.FinishedAt = runner.Succeeded, time.Now()
			rf.dev1.Stages[0].Status, rf.dev1.Stages[0].Jobs[0].Status, rf.dev1.Stages[0].Jobs[0].Steps[0].Status = runner.Succeeded, runner.Succeeded, runner.Succeeded
			if err := rf.store.Save(rf.dev1); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.Search(`//span[@id="live" and contains(., "finished")]`))); err != nil {
				t.Fatal(err)
			}
			if s := text("#run-status"); s != "succeeded" {
				t.Errorf("the run's status on its page: %q", s)
			}
			browsertest.Screenshot(t, ctx, "run-dev1-"+size.Name)

			// The release's page says why it is not Ready, in words.
			if err := chromedp.Do(ctx, chromedp.Navigate(rf.srv.URL+Path+"releases/dev1/hello"), chromedp.WaitVisible(chromedp.CSS(".why"))); err != nil {
				t.Fatal(err)
			}
			if why := text(".why"); !strings.Contains(why, "the previous one keeps serving") {
				t.Errorf("the release page's reason: %q", why)
			}
			browsertest.Screenshot(t, ctx, "release-dev1-"+size.Name)

			if err := chromedp.Do(ctx, chromedp.Navigate(rf.srv.URL+Path+"runs/"+strconv.Itoa(rf.dev2.ID))); err != nil {
				t.Fatal(err)
			}
			if h := text("h1"); h != "Not yours" || strings.Contains(text("main"), "secret sauce") {
				t.Errorf("dev1 opening dev2's run sees %q", h)
			}
			if errs := browsertest.Unexpected(consoleErrors()); len(errs) > 0 {
				t.Errorf("console errors: %v", errs)
			}
		})
	}
}

// BenchmarkLineFirstPaint measures how soon Chromium paints ops's Line
// page with two teams of 50 versions each (the most an app's line keeps),
// every version run, Ready and tested in staging and promoted to prod,
// signed in, on loopback.
//
//	go test -run '^$' -bench LineFirstPaint -benchtime 20x ./internal/dashboard
func BenchmarkLineFirstPaint(b *testing.B) {
	store := &runner.Store{Dir: b.TempDir()}
	var states []release.EnvState
	t0 := time.Now().Add(-50 * time.Hour)
	for _, team := range []string{"dev1", "dev2"} {
		staging := release.EnvState{Team: team, App: "app", Env: "staging", Ready: true}
		prod := release.EnvState{Team: team, App: "app", Env: "prod", Ready: true}
		for i := range lineview.MaxVersions {
			at := t0.Add(time.Duration(i) * time.Hour)
			version := fmt.Sprintf("1.0.%d", i)
			r := &runner.Run{Pipeline: team + "/app", Reason: "IndividualCI", Commit: fmt.Sprintf("%040x", i), RequestedBy: team,
				Status: runner.Succeeded, QueuedAt: at, FinishedAt: at.Add(time.Minute)}
			for _, stage := range []string{"Build", "Staging", "Prod"} {
				r.Stages = append(r.Stages, runner.StageResult{Name: stage, Status: runner.Succeeded, Jobs: []runner.JobResult{{Name: "job", Status: runner.Succeeded,
					Steps: []runner.StepResult{{DisplayName: "step", Status: runner.Succeeded, Outputs: map[string]string{"version": version,
						"image": "127.0.0.1:5000/" + team + "/app@sha256:" + fmt.Sprintf("%064x", i)}}}}}})
			}
			if err := store.New(r); err != nil {
				b.Fatal(err)
			}
			staging.Records = append(staging.Records, release.Record{Version: version, ReadyAt: at.Add(8 * time.Second),
				Test: &release.Test{Passed: true, At: at.Add(10 * time.Second), By: team}})
			prod.Records = append(prod.Records, release.Record{Version: version, ReadyAt: at.Add(20 * time.Second),
				PromotedAt: at.Add(15 * time.Second), PromotedBy: "ci-" + team, PromotedFrom: "staging"})
			staging.Running, prod.Running = version, version
		}
		states = append(states, staging, prod)
	}
	f := newFixture(b, func(s *Server) {
		s.Runs = store
		s.Line = func(ctx context.Context) ([]lineview.App, error) {
			return lineview.Gather(ctx, lineview.Sources{Runs: store, Releases: func(context.Context) ([]release.EnvState, error) { return states, nil }}, nil)
		}
	})
	ctx, _ := browsertest.Start(b, 1280, 800)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+Path+"login"),
		chromedp.SendKeys(chromedp.ID("user"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "admin-password\r"),
		chromedp.WaitVisible(chromedp.ID("apps")),
	); err != nil {
		b.Fatal(err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr[data-version]").length`)); err != nil || n != 2*lineview.MaxVersions {
		b.Fatalf("the page shows %d versions (%v), want %d", n, err, 2*lineview.MaxVersions)
	}
	measurePaint(b, ctx, f.srv.URL+Path+"line", "apps")
}

// measurePaint loads a page b.N times and reports the browser's own
// figures: the first contentful paint, and when the page's script has
// run.
func measurePaint(b *testing.B, ctx context.Context, url, id string) {
	var paint, ready float64
	b.ResetTimer()
	for range b.N {
		if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID(id))); err != nil {
			b.Fatal(err)
		}
		p, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(performance.getEntriesByName("first-contentful-paint")[0] || {startTime: -1}).startTime`))
		if err != nil {
			b.Fatal(err)
		}
		r, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd`))
		if err != nil {
			b.Fatal(err)
		}
		paint += p
		ready += r
	}
	b.ReportMetric(paint/float64(b.N), "ms-first-paint")
	b.ReportMetric(ready/float64(b.N), "ms-dom-ready")
}
