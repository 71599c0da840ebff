package config

import (
	"flag"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/profiles"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the configuration reference in README.md")

// shippedProfiles are the example profiles, the examples of profile keys:
// the default profile (init's) first, so that its values are the examples
// of the keys it sets.
func shippedProfiles(t *testing.T) [][]byte {
	names, err := fs.Glob(profiles.FS, "*.toml")
	require.NoError(t, err)
	sort.SliceStable(names, func(i, j int) bool { return names[i] == profiles.Default+".toml" && names[j] != names[i] })
	var out [][]byte
	for _, n := range names {
		b, err := fs.ReadFile(profiles.FS, n)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

// TestReadmeConfigReference fails when README.md's configuration reference
// is not what the code generates: a key added, removed, renamed, its
// default or its doc comment changed. go generate ./hostctl/config
// rewrites it.
func TestReadmeConfigReference(t *testing.T) {
	ref, err := Reference(shippedProfiles(t))
	require.NoError(t, err)
	const readme = "../../README.md"
	data, err := os.ReadFile(readme)
	require.NoError(t, err)
	s := string(data)
	begin := strings.Index(s, ReferenceBegin)
	end := strings.Index(s, ReferenceEnd)
	require.True(t, begin >= 0 && end > begin, "README.md has no %q … %q section", ReferenceBegin, ReferenceEnd)
	got := s[begin+len(ReferenceBegin) : end]
	want := "\n" + ref
	if *updateReadme {
		require.NoError(t, os.WriteFile(readme, []byte(s[:begin+len(ReferenceBegin)]+want+s[end:]), 0o644))
		return
	}
	require.Equal(t, want, got, "README.md's configuration reference differs from the code: run go generate ./hostctl/config")
}

// TestReferenceCoversEveryKey checks the generator itself: every key the
// decoder accepts has a row, and a few known rows are right.
func TestReferenceCoversEveryKey(t *testing.T) {
	ref, err := Reference(shippedProfiles(t))
	require.NoError(t, err)
	for _, row := range []string{
		"| `libvirt_uri` | string | `\"qemu:///system\"` | `\"qemu:///system\"` |",
		"| `time_limit` | duration (`30m`, `6h`) | `\"6h\"` |",
		"| `cache.size` | size (`512M`, `8G`) | `\"8G\"` |",
		"| `encryption.sign_key` | string | — |",
		"| `backup.mount` | string or table | `\"auto\"` |",
		"| `hooks.ssh.port` | integer |",
	} {
		require.Contains(t, ref, row)
	}
	for _, typ := range []any{Host{}, Profile{}, Client{}} {
		for key := range tomlFields(reflect.TypeOf(typ)) {
			require.Contains(t, ref, "| `"+key, "key %s has no row", key)
		}
	}
	require.NotContains(t, ref, "|  |\n", "a key without a description: write a doc comment on its field")
}
