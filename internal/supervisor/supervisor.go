// Package supervisor owns every long-running part of Slipway (in-process
// servers and child processes alike): it starts them in order behind
// readiness, and stops them all, in reverse order, when the user asks or
// when any one of them fails, saying which one and why.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Endpoint is what a ready service tells its users.
type Endpoint struct {
	Service string `json:"service"`
	// URL is where the service answers.
	URL string `json:"url"`
	// Health is a URL that answers 200 while the service is healthy.
	Health string `json:"health,omitempty"`
	// Notes are short lines for the user, such as how to log in.
	Notes []string `json:"notes,omitempty"`
}

// Service is one supervised part.
//
// Run must call ready exactly once when the service is able to serve, then
// keep running until ctx is cancelled, and return only after everything it
// started (goroutines, child processes) has ended. Returning before ctx is
// cancelled means the service failed.
type Service interface {
	Name() string
	Run(ctx context.Context, ready func(Endpoint)) error
}

// ServiceError says which service failed.
type ServiceError struct {
	Service string
	Err     error
}

func (e *ServiceError) Error() string { return fmt.Sprintf("%s: %v", e.Service, e.Err) }
func (e *ServiceError) Unwrap() error { return e.Err }

// Supervisor runs services.
type Supervisor struct {
	// StartTimeout bounds how long one service may take to become ready.
	StartTimeout time.Duration
	// StopTimeout bounds how long one service may take to stop.
	StopTimeout time.Duration
	// Progress receives status lines; nil discards them.
	Progress io.Writer
}

// Alongside is implemented by a service the ones after it need not wait
// for: they start while it becomes ready, and the whole is ready once it
// is too. A failure to start still stops everything.
type Alongside interface {
	StartsAlongside() bool
}

type running struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	// done is closed when Run has returned; err is then its result.
	done chan struct{}
	err  error
}

// Run starts services in order, each after the one before it is ready, and
// calls onReady with their endpoints once all are. It returns nil when ctx
// ends and everything stopped cleanly, or a *ServiceError naming the first
// service that failed to start or stopped on its own.
func (s *Supervisor) Run(ctx context.Context, services []Service, onReady func([]Endpoint)) error {
	progress := s.Progress
	if progress == nil {
		progress = io.Discard
	}
	startTimeout, stopTimeout := s.StartTimeout, s.StopTimeout
	if startTimeout == 0 {
		startTimeout = 5 * time.Minute
	}
	if stopTimeout == 0 {
		stopTimeout = 30 * time.Second
	}

	var started []*running
	// failed carries the first service that ended on its own.
	failed := make(chan *ServiceError, len(services))
	stopAll := func() error {
		var errs []error
		for i := len(started) - 1; i >= 0; i-- {
			r := started[i]
			fmt.Fprintf(progress, "stopping %s\n", r.name)
			r.cancel()
			select {
			case <-r.done:
				if r.err != nil && !errors.Is(r.err, context.Canceled) {
					errs = append(errs, &ServiceError{r.name, fmt.Errorf("stopping: %w", r.err)})
				}
			case <-time.After(stopTimeout):
				errs = append(errs, &ServiceError{r.name, fmt.Errorf("did not stop within %s", stopTimeout)})
			}
		}
		return errors.Join(errs...)
	}

	// interrupted is the outcome of a start the caller gave up on.
	interrupted := errors.New("interrupted")
	// alongsideFailed carries the failure of a service started alongside,
	// so that the start stops at once rather than when the services
	// after it, which may be waiting on it, time out.
	alongsideFailed := make(chan startOutcome, len(services))
	awaitReady := func(svc Service, r *running, readyc <-chan Endpoint, startedAt time.Time, failedAlongside <-chan startOutcome) startOutcome {
		select {
		case e := <-readyc:
			return startOutcome{endpoint: e, took: time.Since(startedAt)}
		case <-r.done:
			return startOutcome{err: &ServiceError{svc.Name(), fmt.Errorf("failed to start: %w", r.err)}}
		case o := <-failedAlongside:
			return o
		case <-time.After(startTimeout):
			return startOutcome{err: &ServiceError{svc.Name(), fmt.Errorf("not ready within %s", startTimeout)}}
		case <-ctx.Done():
			return startOutcome{err: interrupted}
		}
	}
	// settle records a service's start; on failure it stops everything
	// and returns what Run returns.
	settle := func(r *running, o startOutcome) error {
		if o.err == nil {
			where := ""
			if o.endpoint.URL != "" {
				where = " at " + o.endpoint.URL
			}
			fmt.Fprintf(progress, "%s ready in %s%s\n", r.name, o.took.Round(time.Millisecond), where)
			go watch(r.ctx, r, failed)
			return nil
		}
		if o.err == interrupted {
			return stopAll()
		}
		// What has ended already (the service that failed, or one started
		// alongside whose failure this is) has nothing to stop.
		kept := started[:0]
		for _, x := range started {
			select {
			case <-x.done:
				x.cancel()
			default:
				kept = append(kept, x)
			}
		}
		started = kept
		return errors.Join(o.err, stopAll())
	}

	endpoints := make([]Endpoint, len(services))
	type alongside struct {
		index   int
		r       *running
		outcome chan startOutcome
	}
	var pending []alongside
	for i, svc := range services {
		fmt.Fprintf(progress, "starting %s\n", svc.Name())
		startedAt := time.Now()
		svcCtx, cancel := context.WithCancel(context.Background())
		r := &running{name: svc.Name(), ctx: svcCtx, cancel: cancel, done: make(chan struct{})}
		readyc := make(chan Endpoint, 1)
		go func() {
			err := svc.Run(svcCtx, func(e Endpoint) {
				e.Service = svc.Name()
				select {
				case readyc <- e:
				default:
				}
			})
			if err == nil && svcCtx.Err() == nil {
				err = errors.New("stopped without an error before it was asked to")
			}
			r.err = err
			close(r.done)
		}()
		started = append(started, r)

		if a, ok := svc.(Alongside); ok && a.StartsAlongside() {
			out := make(chan startOutcome, 1)
			go func() {
				o := awaitReady(svc, r, readyc, startedAt, nil)
				if o.err != nil && o.err != interrupted {
					alongsideFailed <- o
				}
				out <- o
			}()
			pending = append(pending, alongside{index: i, r: r, outcome: out})
			continue
		}
		o := awaitReady(svc, r, readyc, startedAt, alongsideFailed)
		if err := settle(r, o); err != nil || o.err != nil {
			return err
		}
		endpoints[i] = o.endpoint
	}
	for _, p := range pending {
		var o startOutcome
		select {
		case o = <-p.outcome:
		case o = <-alongsideFailed: // another one, failing while this one waits
		}
		if err := settle(p.r, o); err != nil || o.err != nil {
			return err
		}
		endpoints[p.index] = o.endpoint
	}
	if onReady != nil {
		onReady(endpoints)
	}

	select {
	case <-ctx.Done():
		return stopAll()
	case sf := <-failed:
		fmt.Fprintf(progress, "%s failed: %v; stopping the rest\n", sf.Service, sf.Err)
		// The failed service has already ended; take it out of the stop list.
		for i, r := range started {
			if r.name == sf.Service {
				started = append(started[:i], started[i+1:]...)
				break
			}
		}
		return errors.Join(sf, stopAll())
	}
}

// startOutcome is how one service's start ended.
type startOutcome struct {
	endpoint Endpoint
	took     time.Duration
	err      error
}

// watch reports a service that ends while it was not asked to stop.
func watch(ctx context.Context, r *running, failed chan<- *ServiceError) {
	<-r.done
	if ctx.Err() == nil {
		failed <- &ServiceError{r.name, r.err}
	}
}
