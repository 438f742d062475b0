// Package build turns an app into a multi-platform OCI image without a
// container engine: a Go main package is cross-compiled with the Go
// toolchain, a static site is served by a small compiled file server, and
// either is layered onto a base image (Slipway's own, built here, or any
// image in any registry). The same source and SOURCE_DATE_EPOCH always give
// the same digest.
package build
