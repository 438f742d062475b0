package platform

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/slipway-dev/slipway/internal/supervisor"
)

// waitHTTP polls url until it answers 200, the service ends (errc), or ctx
// ends. Readiness is always observed, never assumed after a fixed sleep.
func waitHTTP(ctx context.Context, client *http.Client, url string, errc <-chan error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := supervisor.CheckHTTP(ctx, client, url); err == nil {
			return nil
		}
		select {
		case err := <-errc:
			if err == nil {
				err = fmt.Errorf("stopped before %s answered", url)
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
