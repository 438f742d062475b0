package platform

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// waitHTTP polls url until it answers 200, the service ends (errc), or ctx
// ends. Readiness is always observed, never assumed after a fixed sleep.
func waitHTTP(ctx context.Context, url string, errc <-chan error) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := checkHTTP(ctx, client, url); err == nil {
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

// checkHTTP returns nil when url answers 200.
func checkHTTP(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
