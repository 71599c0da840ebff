package qemutests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// TestSelfAndPlainClients backs up, in one run, a "self" client (two host
// directories, given read-only to the appliance over virtio-9p and
// assembled under /snapshot with their paths) and a "plain" client (a
// directory on the appliance's own cache volume). Neither has a libvirt
// domain. The archives hold exactly those trees; nothing is left. The self
// client's hooks run on this host (transport "local", as for lvm_host), in
// order: what pre_snapshot writes is in the backup, post_snapshot gets the
// outcome.
func TestSelfAndPlainClients(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	// The self client's directories; a and a/b/c nested one in another's
	// parent is not needed: two siblings with a subtree each.
	a, b := filepath.Join(dir, "host", "etc-app"), filepath.Join(dir, "host", "srv", "www")
	for p, content := range map[string]string{
		filepath.Join(a, "app.conf"):           "listen = 80\n",
		filepath.Join(a, "conf.d", "x.conf"):   "x = 1\n",
		filepath.Join(b, "index.html"):         "<h1>hi</h1>\n",
		filepath.Join(dir, "host", "secret.k"): "not shared\n",
	} {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}

	stateDir := filepath.Join(dir, "state")
	pass := "self and plain"
	cfg, err := fixture.Config{Accel: e.accel, StateDir: stateDir, ImageDir: e.imageDir, TargetRoot: filepath.Join(dir, "backup"),
		Client: "hostdirs", Domain: "unused", Passphrase: pass}.Write(filepath.Join(dir, "etc"))
	require.NoError(t, err)
	clients := filepath.Join(dir, "etc", "clients")
	require.NoError(t, os.WriteFile(filepath.Join(clients, "hostdirs.toml"),
		[]byte(fmt.Sprintf("type = \"self\"\npaths = [%q, %q]\n[hooks]\npre_snapshot = %q\non_snapshot = %q\npost_snapshot = %q\n", a, b,
			fmt.Sprintf(`echo pre >> %s/hooks.log; echo "dump of $SB_CLIENT" > %s/dump.sql`, dir, a),
			fmt.Sprintf("echo on >> %s/hooks.log", dir),
			fmt.Sprintf(`echo "post $SB_OUTCOME" >> %s/hooks.log`, dir))), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(clients, "cachedir.toml"),
		[]byte("type = \"plain\"\nplain_dir = \"plain-data\"\n"), 0o600))

	// The plain client's own cache volume, made beforehand with its files
	// (an appliance would have put them there).
	cacheTree := filepath.Join(dir, "cache-tree")
	require.NoError(t, os.MkdirAll(filepath.Join(cacheTree, "plain-data", "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cacheTree, "plain-data", "sub", "notes.txt"), []byte("plain notes\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cacheTree, "other.txt"), []byte("not backed up\n"), 0o644))
	require.NoError(t, os.MkdirAll(stateDir, 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(stateDir, "caches"), 0o700))
	require.NoError(t, fixture.MakeClientDisk(ctx, cacheTree, filepath.Join(stateDir, "caches", "cachedir.qcow2"), "qcow2", 64))

	code, out, _ := hostctl(t, ctx, "check", "-c", cfg)
	require.Equal(t, 0, code)
	require.Contains(t, out, "host directories "+a+", "+b)
	require.Contains(t, out, "directory plain-data on its cache volume")

	start := time.Now()
	code, out, _ = hostctl(t, ctx, "run", "-c", cfg)
	t.Logf("run in %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		logs, _ := filepath.Glob(filepath.Join(stateDir, "runs", "*", "*", "job.log"))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, data)
		}
	}
	require.Equal(t, 0, code, out)

	extract := func(client string) map[string]string {
		repo := filepath.Join(dir, "backup", client)
		arch := borgBackups(t, pass, dir, repo)
		require.Len(t, arch, 1)
		dst := t.TempDir()
		borg(t, pass, dst, "extract", repo+"::"+arch[0])
		files := map[string]string{}
		require.NoError(t, filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				data, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(dst, p)
				files[rel] = string(data)
			}
			return err
		}))
		return files
	}
	rel := func(p string) string { return strings.TrimPrefix(p, "/") }
	require.Equal(t, map[string]string{
		rel(filepath.Join(a, "app.conf")):         "listen = 80\n",
		rel(filepath.Join(a, "dump.sql")):         "dump of hostdirs\n",
		rel(filepath.Join(a, "conf.d", "x.conf")): "x = 1\n",
		rel(filepath.Join(b, "index.html")):       "<h1>hi</h1>\n",
	}, extract("hostdirs"), "self: the shared directories with their host paths, nothing else")
	require.Equal(t, map[string]string{"sub/notes.txt": "plain notes\n"}, extract("cachedir"),
		"plain: the directory on the cache volume")

	hooksLog, err := os.ReadFile(filepath.Join(dir, "hooks.log"))
	require.NoError(t, err)
	require.Equal(t, "pre\non\npost ok\n", string(hooksLog), "the self client's hooks ran on the host, in order")

	entries, err := os.ReadDir(filepath.Join(stateDir, "ledger"))
	require.NoError(t, err)
	require.Empty(t, entries, "ledger entries left")
	require.Empty(t, appliances(t, stateDir, false), "appliance domain left")
	// The host directories are untouched.
	data, err := os.ReadFile(filepath.Join(a, "app.conf"))
	require.NoError(t, err)
	require.Equal(t, "listen = 80\n", string(data))
}
