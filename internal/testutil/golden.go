// Package testutil holds helpers the unit tests of several packages share.
// Only test files import it.
package testutil

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// update is registered once, here, for every test binary that imports this
// package: `go test ./hostctl/virt -update` rewrites that package's golden
// files.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Golden compares got with testdata/name, rewriting the file first when the
// test runs with -update.
func Golden(t testing.TB, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test -update to create %s", p)
	require.Equal(t, string(want), got, "golden file %s (go test -update rewrites it)", p)
}
