package dashboard

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/internal/events"
	"github.com/slipway-dev/slipway/internal/testutil"
)

// browser starts Debian's Chromium, headless, and returns its context;
// the console's errors and the page's exceptions are collected.
func browser(t testing.TB, width, height int64) (context.Context, func() []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("drives Chromium")
	}
	bin := testutil.NeedCommand(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // as root, Chromium's sandbox will not start
		chromedp.WindowSize(int(width), int(height)),
		chromedp.Flag("ignore-certificate-errors", false),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute) // a hang guard, not a measure
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	var (
		mu     sync.Mutex
		errors []string
	)
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				errors = append(errors, fmt.Sprintf("console.error: %v", ev.Args))
			}
		case *runtime.EventExceptionThrown:
			errors = append(errors, "exception: "+ev.ExceptionDetails.Text)
		}
	})
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errors...)
	}
}

// screenshot keeps the page as it is under the test's artifacts.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// dev1 signs in with the keyboard alone, sees its team's events, sees a
// new one arrive live, and is refused dev2's view; at a phone's width
// the page still shows the events. No console errors on the way.
func TestBrowserTimeline(t *testing.T) {
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		t.Run(size.name, func(t *testing.T) {
			f := newFixture(t)
			ctx, consoleErrors := browser(t, size.width, size.height)
			err := chromedp.Do(ctx,
				// Headless Chromium's window is at least 500 wide: a
				// phone's viewport is emulated.
				chromedp.EmulateViewport(size.width, size.height),
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
			text := func(sel chromedp.CSS) string {
				t.Helper()
				s, err := chromedp.Run(ctx, chromedp.Text(sel))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
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
			screenshot(t, ctx, "timeline-dev1-"+size.name)

			if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+Path+"timeline?team=dev2")); err != nil {
				t.Fatal(err)
			}
			if h := text("h1"); h != "Not yours" {
				t.Errorf("dev1 opening dev2's timeline sees %q", h)
			}
			screenshot(t, ctx, "refused-dev1-"+size.name)
			if errs := consoleErrors(); len(errs) > 0 {
				// The refused page answers 403: Chromium logs that as a
				// failed resource load, which is the point, not a fault.
				var real []string
				for _, e := range errs {
					if !strings.Contains(e, "403") {
						real = append(real, e)
					}
				}
				if len(real) > 0 {
					t.Errorf("console errors: %v", real)
				}
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
	ctx, _ := browser(b, 1280, 800)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+Path+"login"),
		chromedp.SendKeys(chromedp.ID("user"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "admin-password\r"),
		chromedp.WaitVisible(chromedp.ID("events")),
	); err != nil {
		b.Fatal(err)
	}
	var paint, ready float64
	b.ResetTimer()
	for range b.N {
		if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+Path+"timeline"), chromedp.WaitVisible(chromedp.ID("events"))); err != nil {
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
