// Package browsertest drives Debian's Chromium from tests, through
// chromedp: one headless browser per test, its console errors collected,
// screenshots kept as the test's artifacts (go test -artifacts).
package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/internal/testutil"
)

// Start starts Debian's Chromium, headless, and returns its context;
// the console's errors and the page's exceptions are collected. extra
// adds options (TrustKey, for a server of the platform's CA).
func Start(t testing.TB, width, height int64, extra ...chromedp.ExecAllocatorOption) (context.Context, func() []string) {
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
	opts = append(opts, extra...)
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

// Screenshot keeps the page as it is under the test's artifacts.
func Screenshot(t *testing.T, ctx context.Context, name string) {
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

// Unexpected drops from console errors those of a refused page: a 403
// answer is logged by Chromium as a failed resource load, which is the
// point of a refusal, not a fault.
func Unexpected(errors []string) []string {
	var out []string
	for _, e := range errors {
		if !strings.Contains(e, "403") {
			out = append(out, e)
		}
	}
	return out
}

// Text is the text of the first element sel finds.
func Text(t testing.TB, ctx context.Context, sel chromedp.CSS) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Sizes are the widths every page is checked at: a desktop's and a
// phone's.
var Sizes = []struct {
	Name          string
	Width, Height int64
}{{"desktop", 1280, 800}, {"phone", 390, 844}}

// TrustKey makes Chromium accept the certificates of one public key (the
// platform's server, whose CA it does not know), and no other bad one.
func TrustKey(cert *x509.Certificate) chromedp.ExecAllocatorOption {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(sum[:]))
}
