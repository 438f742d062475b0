package platform

import (
	"context"
	"sync"
)

// A first start builds several families of programs (the node's, Flux's
// controllers, Prometheus and Alertmanager) and the CI image. Each go
// build is parallel inside, but each also has long stretches that are not:
// fetching modules, linking, writing image layers. Run one after another,
// a two-core machine sat half idle through those stretches; started
// together, one build's link overlaps another's compile. components.Ensure
// builds each family once however many ask for it at the same time.

// preparing runs a start's slow preparations in the background until
// they are awaited, and stops them all if the start gives up first.
type preparing struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startPreparing(ctx context.Context) *preparing {
	p := &preparing{}
	p.ctx, p.cancel = context.WithCancel(ctx)
	return p
}

// stop cancels what is still running and waits for it to end, so that a
// start that failed leaves no build writing into the cache behind it.
func (p *preparing) stop() {
	p.cancel()
	p.wg.Wait()
}

// pending is the result of one background preparation.
type pending[T any] struct {
	done  chan struct{}
	value T
	err   error
}

// prepare starts f in the background.
func prepare[T any](p *preparing, f func(context.Context) (T, error)) *pending[T] {
	r := &pending[T]{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(r.done)
		r.value, r.err = f(p.ctx)
	}()
	return r
}

// wait returns the preparation's result once it has one.
func (r *pending[T]) wait() (T, error) {
	<-r.done
	return r.value, r.err
}
