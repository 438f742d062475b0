// Package platform is what `slipway up`, `down` and `status` run: it puts
// the registry and (when enabled) the local cluster under one supervisor,
// publishes where each service listens, and finds a running platform from
// another process through its state directory.
package platform
