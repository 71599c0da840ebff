// Package profiles ships the example backup profiles (the *.toml files in
// this directory) inside hostctl, so `hostctl init` can install them.
package profiles

import "embed"

// FS holds the shipped profiles by file name.
//
//go:embed *.toml
var FS embed.FS

// Default is the profile `hostctl init` installs and makes the default.
const Default = "local-borg"
