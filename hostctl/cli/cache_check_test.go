package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckListsClientCaches: check shows each client's own cache volume
// (path, size, whether it exists), the shared cache of earlier versions and
// images no client uses any more.
func TestCheckListsClientCaches(t *testing.T) {
	cfg := clientTree(t, "backend = \"borg\"\ntarget = \"file:///srv/backup/{client}\"\nencryption.mode = \"none\"\n")
	state := filepath.Join(filepath.Dir(cfg), "state")
	caches := filepath.Join(state, "caches")
	require.NoError(t, os.MkdirAll(caches, 0o700))
	for _, f := range []string{filepath.Join(caches, "web.qcow2"), filepath.Join(caches, "gone.qcow2"), filepath.Join(state, "cache.qcow2")} {
		require.NoError(t, os.WriteFile(f, nil, 0o600))
	}
	code, out, stderr := runMain(t, "check", "--offline", "-c", cfg)
	require.Equal(t, ExitOK, code, stderr)
	require.Contains(t, out, "caches:      file: one image per client, "+filepath.Join(caches, "<client>.qcow2")+", 8G each")
	require.Contains(t, out, "cache:       "+filepath.Join(caches, "web.qcow2")+" (8G, exists), only this client's appliances")
	require.Contains(t, out, "cache:       "+filepath.Join(caches, "db.qcow2")+" (8G, created by the client's first job)")
	require.Contains(t, out, filepath.Join(state, "cache.qcow2")+" (the one cache all clients shared in earlier versions: delete it)")
	require.Contains(t, out, filepath.Join(caches, "gone.qcow2")+" (no client gone")
}

// TestCheckRefusesSharedCachePath: the one cache.path of earlier versions
// is an error that says what to do.
func TestCheckRefusesSharedCachePath(t *testing.T) {
	cfg := clientTree(t, "backend = \"borg\"\ntarget = \"file:///srv/backup/{client}\"\nencryption.mode = \"none\"\n")
	require.NoError(t, os.WriteFile(cfg, []byte("default_profile = \"p\"\nstate_dir = \"state\"\n[cache]\npath = \"/var/lib/hostctl/cache.qcow2\"\n"), 0o644))
	code, _, stderr := runMain(t, "check", "--offline", "-c", cfg)
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, `hostctl.toml:4: key "cache.path": "/var/lib/hostctl/cache.qcow2": one cache volume for all clients is no longer used`)
}
