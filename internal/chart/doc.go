// Package chart scaffolds, versions, checks, packages and publishes Helm
// charts as OCI artifacts, with the Helm v4 SDK (no helm binary). A chart
// pushed here is what `helm pull oci://…`, Flux's source-controller and ACR
// read: a manifest with Helm's config and content media types.
package chart
