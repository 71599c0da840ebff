//go:build tools

// Package tools pins the test servers the qemu tests build from source:
// restic's REST server, which Debian does not package (go.sum holds the
// hashes: a build takes exactly this code).
package tools

import _ "github.com/restic/rest-server/cmd/rest-server"
