package config

import _ "embed"

// ExampleHost is the commented example host configuration
// (example/hostctl.toml), which `hostctl init` installs.
//
//go:embed example/hostctl.toml
var ExampleHost []byte
