package supervisor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/supervisor"
)

// recorder notes the order of starts and stops across services.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, " ")
}

// fakeService is driven by the test: it can fail before or after ready.
type fakeService struct {
	name        string
	rec         *recorder
	failAtStart error
	failLater   chan error
}

func (f *fakeService) Name() string { return f.name }

func (f *fakeService) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	f.rec.add("start:" + f.name)
	if f.failAtStart != nil {
		return f.failAtStart
	}
	ready(supervisor.Endpoint{URL: "fake://" + f.name})
	select {
	case <-ctx.Done():
		f.rec.add("stop:" + f.name)
		return nil
	case err := <-f.failLater:
		f.rec.add("died:" + f.name)
		return err
	}
}

func services(rec *recorder, names ...string) []*fakeService {
	var out []*fakeService
	for _, n := range names {
		out = append(out, &fakeService{name: n, rec: rec, failLater: make(chan error, 1)})
	}
	return out
}

func asServices(fs []*fakeService) []supervisor.Service {
	var out []supervisor.Service
	for _, f := range fs {
		out = append(out, f)
	}
	return out
}

func TestStartsInOrderStopsInReverse(t *testing.T) {
	rec := &recorder{}
	fs := services(rec, "a", "b", "c")
	ctx, cancel := context.WithCancel(context.Background())
	var got []supervisor.Endpoint
	sup := &supervisor.Supervisor{}
	err := sup.Run(ctx, asServices(fs), func(eps []supervisor.Endpoint) {
		got = eps
		cancel()
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "start:a start:b start:c stop:c stop:b stop:a"; rec.String() != want {
		t.Fatalf("events %q, want %q", rec, want)
	}
	if len(got) != 3 || got[1].Service != "b" || got[1].URL != "fake://b" {
		t.Fatalf("endpoints %+v", got)
	}
}

func TestFailureAtStartStopsWhatStarted(t *testing.T) {
	rec := &recorder{}
	fs := services(rec, "a", "b", "c")
	fs[1].failAtStart = errors.New("port 5000 is taken")
	var progress bytes.Buffer
	sup := &supervisor.Supervisor{Progress: &progress}
	err := sup.Run(context.Background(), asServices(fs), func([]supervisor.Endpoint) { t.Error("reported ready") })
	var se *supervisor.ServiceError
	if !errors.As(err, &se) || se.Service != "b" || !strings.Contains(err.Error(), "port 5000 is taken") {
		t.Fatalf("want an error naming b and why, got %v", err)
	}
	if want := "start:a start:b stop:a"; rec.String() != want {
		t.Fatalf("events %q, want %q", rec, want)
	}
}

func TestFailureLaterStopsTheRest(t *testing.T) {
	rec := &recorder{}
	fs := services(rec, "a", "b", "c")
	sup := &supervisor.Supervisor{}
	done := make(chan error, 1)
	go func() {
		done <- sup.Run(context.Background(), asServices(fs), func([]supervisor.Endpoint) {
			fs[1].failLater <- fmt.Errorf("disk full")
		})
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("supervisor did not return after a service died")
	}
	var se *supervisor.ServiceError
	if !errors.As(err, &se) || se.Service != "b" || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("want an error naming b, got %v", err)
	}
	if want := "start:a start:b start:c died:b stop:c stop:a"; rec.String() != want {
		t.Fatalf("events %q, want %q", rec, want)
	}
}

// stubborn ignores cancellation, to check that the supervisor gives up on
// it and says so rather than hanging.
type stubborn struct{ release chan struct{} }

func (s *stubborn) Name() string { return "stubborn" }
func (s *stubborn) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	ready(supervisor.Endpoint{})
	<-s.release
	return nil
}

func TestStopTimeoutIsReported(t *testing.T) {
	s := &stubborn{release: make(chan struct{})}
	defer close(s.release)
	ctx, cancel := context.WithCancel(context.Background())
	sup := &supervisor.Supervisor{StopTimeout: 200 * time.Millisecond}
	err := sup.Run(ctx, []supervisor.Service{s}, func([]supervisor.Endpoint) { cancel() })
	if err == nil || !strings.Contains(err.Error(), "stubborn: did not stop") {
		t.Fatalf("want a stop timeout naming the service, got %v", err)
	}
}

// slowStarter starts alongside the services after it and is ready (or
// fails) only once gate is closed.
type slowStarter struct {
	rec  *recorder
	gate chan struct{}
	fail error
}

func (s *slowStarter) Name() string          { return "slow" }
func (s *slowStarter) StartsAlongside() bool { return true }
func (s *slowStarter) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	// No start is recorded: it runs on its own goroutine, and whether
	// it or the next service gets there first is the scheduler's choice.
	select {
	case <-s.gate:
	case <-ctx.Done():
		return nil
	}
	if s.fail != nil {
		s.rec.add("failed:slow")
		return s.fail
	}
	ready(supervisor.Endpoint{URL: "fake://slow"})
	<-ctx.Done()
	s.rec.add("stop:slow")
	return nil
}

// opener opens the gate of a slowStarter when it starts: the run can only
// get past it if it started before the slow one was ready.
type opener struct {
	fakeService
	gate chan struct{}
}

func (o *opener) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	close(o.gate)
	return o.fakeService.Run(ctx, ready)
}

func TestAlongsideStartsTheNextBeforeItIsReady(t *testing.T) {
	rec := &recorder{}
	gate := make(chan struct{})
	fs := services(rec, "a", "c")
	slow := &slowStarter{rec: rec, gate: gate}
	c := &opener{fakeService: *fs[1], gate: gate}
	ctx, cancel := context.WithCancel(context.Background())
	var got []supervisor.Endpoint
	err := (&supervisor.Supervisor{}).Run(ctx, []supervisor.Service{fs[0], slow, c}, func(eps []supervisor.Endpoint) {
		got = eps
		cancel()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Service != "slow" || got[1].URL != "fake://slow" || got[2].Service != "c" {
		t.Fatalf("endpoints in service order, want a slow c: %+v", got)
	}
	if want := "start:a start:c stop:c stop:slow stop:a"; rec.String() != want {
		t.Fatalf("events %q, want %q", rec, want)
	}
}

func TestAlongsideFailingToStartStopsEverything(t *testing.T) {
	rec := &recorder{}
	gate := make(chan struct{})
	fs := services(rec, "a", "c")
	slow := &slowStarter{rec: rec, gate: gate, fail: errors.New("no replica available")}
	c := &opener{fakeService: *fs[1], gate: gate}
	err := (&supervisor.Supervisor{}).Run(context.Background(), []supervisor.Service{fs[0], slow, c}, func([]supervisor.Endpoint) {
		t.Error("reported ready")
	})
	var se *supervisor.ServiceError
	if !errors.As(err, &se) || se.Service != "slow" || !strings.Contains(err.Error(), "no replica available") {
		t.Fatalf("want an error naming slow and why, got %v", err)
	}
	if want := "start:a start:c failed:slow stop:c stop:a"; rec.String() != want {
		t.Fatalf("events %q, want %q", rec, want)
	}
}

// waiter is never ready: it stands for a service that needs the one
// started alongside before it (the kubelet needing containerd).
type waiter struct{ rec *recorder }

func (w *waiter) Name() string { return "waiter" }
func (w *waiter) Run(ctx context.Context, ready func(supervisor.Endpoint)) error {
	w.rec.add("start:waiter")
	<-ctx.Done()
	w.rec.add("stop:waiter")
	return nil
}

func TestAlongsideFailingStopsAServiceWaitingOnIt(t *testing.T) {
	rec := &recorder{}
	gate := make(chan struct{})
	slow := &slowStarter{rec: rec, gate: gate, fail: errors.New("socket refused")}
	close(gate)
	// No start timeout to fall back on: the waiter would wait for ever
	// if the failure beside it were not noticed.
	sup := &supervisor.Supervisor{StartTimeout: time.Hour}
	err := sup.Run(context.Background(), []supervisor.Service{slow, &waiter{rec: rec}}, func([]supervisor.Endpoint) {
		t.Error("reported ready")
	})
	var se *supervisor.ServiceError
	if !errors.As(err, &se) || se.Service != "slow" || !strings.Contains(err.Error(), "socket refused") {
		t.Fatalf("want an error naming slow and why, got %v", err)
	}
	if strings.Count(err.Error(), "socket refused") != 1 {
		t.Errorf("the failure is told once: %v", err)
	}
	if !strings.Contains(rec.String(), "stop:waiter") {
		t.Fatalf("the waiting service was not stopped: %q", rec)
	}
}
