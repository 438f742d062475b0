package release

import (
	"context"
	"time"
)

// MaxLoadRate bounds the requests per second Load sends: a bake's load
// is a sample of traffic, not a load test, and every request goes
// through the API server.
const MaxLoadRate = 20

// Load sends GET requests for path to the app's Service through the API
// server's service proxy, rate per second (at most MaxLoadRate) until ctx
// ends, one at a time, and counts the answers by status code (0: no
// answer).
func Load(ctx context.Context, c *Clients, ns, app, path string, rate float64) (map[int]int, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	svc, err := appService(ctx, c, ns, app)
	if err != nil {
		return nil, err
	}
	rate = min(rate, MaxLoadRate)
	answers := map[int]int{}
	if rate <= 0 {
		<-ctx.Done()
		return answers, nil
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return answers, nil
		case <-tick.C:
		}
		status, _, _ := proxyGet(ctx, c, ns, svc, path) // checked above
		if ctx.Err() != nil {
			return answers, nil // cut short by the end, not an answer
		}
		answers[status]++
	}
}
