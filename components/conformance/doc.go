// Package conformance only pins the OCI distribution-spec conformance suite;
// build it with `go build github.com/opencontainers/distribution-spec/conformance`
// from this directory.
package conformance
