package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// keyLines maps a dotted key (toml.Key.String()) to the line it was set on.
// A key that is absent from the file is absent from the map, which is also
// how defaults tell "not set" from "set to the zero value" (nice = 0).
type keyLines map[string]int

func (kl keyLines) has(key string) bool { _, ok := kl[key]; return ok }

// fileDecoder decodes one TOML file strictly into a struct. It walks the
// struct itself, one key at a time through toml.Primitive, instead of
// letting toml.Decode fill the struct in one go: Decode stops at the first
// wrong type and gives no line for unknown keys, and the operator should see
// every problem of a file, each with its line.
type fileDecoder struct {
	file  string
	md    toml.MetaData
	lines keyLines
	errs  Errors
}

// decodeFile decodes data (the contents of file) into v, a pointer to a
// struct whose fields carry toml tags.
func decodeFile(file string, data []byte, v any) (keyLines, Errors) {
	var raw map[string]toml.Primitive
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: file, Line: pe.Position.Line, Msg: "TOML syntax: " + pe.Message}}
		}
		return nil, Errors{{File: file, Msg: err.Error()}}
	}
	d := &fileDecoder{file: file, md: md, lines: keyLines{}}
	d.table(raw, reflect.ValueOf(v).Elem(), nil)
	return d.lines, d.errs
}

func (d *fileDecoder) errorf(key toml.Key, format string, args ...any) {
	d.errs = append(d.errs, &ConfigError{File: d.file, Line: d.lines[key.String()], Key: key.String(), Msg: fmt.Sprintf(format, args...)})
}

// table decodes the keys of one TOML table into the struct rv.
func (d *fileDecoder) table(raw map[string]toml.Primitive, rv reflect.Value, prefix toml.Key) {
	fields := tomlFields(rv.Type())
	names := make([]string, 0, len(raw))
	for name, prim := range raw {
		names = append(names, name)
		d.lines[keyOf(prefix, name).String()] = d.line(prim)
	}
	// Report in file order.
	slices.SortFunc(names, func(a, b string) int {
		return d.lines[keyOf(prefix, a).String()] - d.lines[keyOf(prefix, b).String()]
	})
	for _, name := range names {
		key, prim := keyOf(prefix, name), raw[name]
		i, ok := fields[name]
		if !ok {
			d.errorf(key, "unknown key (known here: %s)", strings.Join(sortedKeys(fields), ", "))
			continue
		}
		f := rv.Field(i)
		if isTable(f.Type()) {
			// Check the kind first: decoding a non-table into a map
			// silently succeeds in toml v1.6.
			var v any
			_ = d.md.PrimitiveDecode(prim, &v)
			var sub map[string]toml.Primitive
			if _, ok := v.(map[string]any); !ok || d.md.PrimitiveDecode(prim, &sub) != nil {
				d.errorf(key, "wrong type: want a table ([%s]), got %s", key, d.tomlType(key, prim))
				continue
			}
			d.table(sub, f, key)
			continue
		}
		if err := d.md.PrimitiveDecode(prim, f.Addr().Interface()); err != nil {
			d.errorf(key, "%s", d.decodeMsg(key, f.Type(), prim, err))
		}
	}
}

func keyOf(prefix toml.Key, name string) toml.Key {
	return append(slices.Clip(prefix), name)
}

// decodeMsg turns a toml decode error into a message for the operator; the
// file, line and key are added by the caller.
func (d *fileDecoder) decodeMsg(key toml.Key, t reflect.Type, prim toml.Primitive, err error) string {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		// The toml package reports type mismatches as plain errors.
		got := d.tomlType(key, prim)
		if t.Kind() == reflect.Slice && got == "an array" {
			var elems []any
			if d.md.PrimitiveDecode(prim, &elems) == nil {
				for _, e := range elems {
					if _, ok := e.(string); !ok {
						return fmt.Sprintf("wrong type: want %s, got an array containing %v (%T)", want(t), e, e)
					}
				}
			}
		}
		return fmt.Sprintf("wrong type: want %s, got %s", want(t), got)
	}
	// A ParseError here comes from a value's UnmarshalText or a range check.
	if t == reflect.TypeFor[job.Duration]() {
		var v any
		_ = d.md.PrimitiveDecode(prim, &v)
		if s, ok := v.(string); ok && durationSyntax.MatchString(s) {
			// Well-formed but beyond time.Duration (about 292 years).
			return fmt.Sprintf("duration %q is out of range: want at most %s", s, MaxTimeLimit)
		}
		return fmt.Sprintf("invalid duration %s: want a number with a unit, like \"90m\", \"6h\" or \"1h30m\"", tomlValue(v))
	}
	return pe.Message
}

// durationSyntax is what time.ParseDuration reads.
var durationSyntax = regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`)

func tomlValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// tomlType names the TOML type of the value at key for a message.
func (d *fileDecoder) tomlType(key toml.Key, prim toml.Primitive) string {
	switch d.md.Type(key...) {
	case "String":
		return "a string"
	case "Integer":
		return "an integer"
	case "Float":
		return "a float"
	case "Bool":
		return "a boolean"
	case "Array", "ArrayHash":
		return "an array"
	case "Hash":
		return "a table"
	case "Datetime", "DatetimeLocal", "DateLocal", "TimeLocal":
		return "a date/time"
	}
	var v any
	_ = d.md.PrimitiveDecode(prim, &v)
	return fmt.Sprintf("%T", v)
}

// want names what a field of type t accepts, for a message.
func want(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[job.Duration]():
		return `a duration string like "6h" or "90m"`
	case reflect.TypeFor[Size]():
		return `a size like "8G", "512M" or a number of bytes`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Pointer:
		return want(t.Elem())
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(want(t.Elem()), "an "), "a ") + "s"
	}
	return t.String()
}

// errLineProbe is returned by lineProbe to make the toml package report the
// position of a key.
var errLineProbe = errors.New("line probe")

// lineProbe asks the toml package where a key is. toml.MetaData keeps every
// key's position but does not export it; it does put it into the ParseError
// it returns when a toml.Unmarshaler fails. TestLineProbe pins this, so an
// upgrade of the toml package that changes it fails loudly.
type lineProbe struct{}

func (*lineProbe) UnmarshalTOML(any) error { return errLineProbe }

// line returns the line on which prim's key is set, or 0 if unknown.
func (d *fileDecoder) line(prim toml.Primitive) int {
	err := d.md.PrimitiveDecode(prim, &lineProbe{})
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.Position.Line
	}
	return 0
}

// tomlFields maps the toml tag of each field of struct type t to its index.
func tomlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		m[name] = i
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// isTable says whether a field of type t is written as a TOML table.
func isTable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	p := reflect.PointerTo(t)
	return !p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) &&
		!p.Implements(reflect.TypeFor[toml.Unmarshaler]())
}
