// Package registry embeds the CNCF Distribution registry (used as a library)
// and puts Slipway's access control in front of it: users from the auth
// store with HTTP Basic authentication, writes allowed only under a user's
// repository prefixes, reads for every authenticated user (and for anyone
// when anonymous pull is on). It also guards the storage volume against
// filling up and runs garbage collection while writes are held back.
package registry
