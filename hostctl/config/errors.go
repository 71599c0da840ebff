package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ConfigError is one problem in one configuration file. Line is 0 when the
// problem has no line of its own (a required key that is missing, a file
// name that is not allowed).
type ConfigError struct {
	File string
	Line int
	Key  string // dotted TOML key, e.g. "backup.mount"; "" for the file as a whole
	Msg  string
	// MissingFile marks a secret file that does not exist yet: the one
	// problem LoadAllowMissing forgives.
	MissingFile bool
}

// Error renders FILE:LINE: key "a.b": what is wrong, which editors and
// terminals turn into a jump to the line.
func (e *ConfigError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Key == "" {
		return loc + ": " + e.Msg
	}
	return fmt.Sprintf("%s: key %q: %s", loc, e.Key, e.Msg)
}

// Errors is every problem found in a configuration, sorted by file and line.
// Load and Validate report all problems at once so that an operator fixes
// them in one go instead of one per run.
type Errors []*ConfigError

// Error puts one problem per line, each starting with FILE:LINE.
func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems in the configuration:", len(es))
	for _, e := range es {
		b.WriteString("\n")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find the individual *ConfigError values.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b *ConfigError) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return es
}

// errOrNil returns es as an error, or nil when it is empty (a nil Errors
// inside a non-nil error interface would look like a failure).
func (es Errors) errOrNil() error {
	if len(es) == 0 {
		return nil
	}
	return es.sorted()
}
