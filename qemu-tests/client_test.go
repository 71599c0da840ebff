package qemutests

import (
	"context"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// client is one test client: a VM with the known tree on its disk, and a
// hostctl configuration that backs it up to a borg repository.
type client struct {
	name, domain string
	dir          string // everything of this test
	tree         string // the tree on the client's disk
	disk, format string
	config       string // hostctl.toml
	stateDir     string
	runDir       string // run_dir: the job disks
	repo         string
	pass         string
}

// clientOption adjusts a test client.
type clientOption func(*clientOptions)

type clientOptions struct {
	tree    fixture.Size
	diskMiB int
}

// smallTree gives the client the Small fixture tree on a small disk: for
// tests that run many backups (backends, targets, retention).
func smallTree(o *clientOptions) { o.tree, o.diskMiB = fixture.Small, 64 }

func newClient(t testing.TB, e *env, name, format string, opts ...clientOption) *client {
	o := clientOptions{tree: fixture.Full, diskMiB: 400}
	for _, opt := range opts {
		opt(&o)
	}
	ctx := context.Background()
	dir := t.TempDir()
	c := &client{
		name: name, domain: testDomain(name), dir: dir,
		tree: filepath.Join(dir, "tree"), disk: filepath.Join(dir, "client."+format), format: format,
		stateDir: filepath.Join(dir, "state"), pass: "correct horse battery staple",
	}
	c.repo = filepath.Join(dir, "backup", name)
	require.NoError(t, os.MkdirAll(c.tree, 0o755))
	require.NoError(t, fixture.MakeSizedTree(c.tree, o.tree))
	require.NoError(t, fixture.MakeClientDisk(ctx, c.tree, c.disk, format, o.diskMiB))
	x, err := fixture.ClientDomain{Name: c.domain, Kernel: e.kernel, Initrd: e.idle, Disk: c.disk,
		DiskFormat: format, ConsoleLog: filepath.Join(dir, "client-console.log")}.XML()
	require.NoError(t, err)
	xf := filepath.Join(dir, "client.xml")
	require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
	exec.Command("virsh", "-c", "qemu:///system", "destroy", c.domain).Run()
	exec.Command("virsh", "-c", "qemu:///system", "undefine", c.domain).Run()
	virsh(t, "define", xf)
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "destroy", c.domain).Run()
		exec.Command("virsh", "-c", "qemu:///system", "undefine", c.domain).Run()
	})
	c.runDir = testRunDir(t, dir)
	c.config, err = fixture.Config{Accel: e.accel,
		StateDir: c.stateDir, ImageDir: e.imageDir, TargetRoot: filepath.Join(dir, "backup"),
		Client: name, Domain: c.domain, Exclude: []string{fixture.Excluded}, Passphrase: c.pass,
		RunDir: c.runDir,
	}.Write(filepath.Join(dir, "etc"))
	require.NoError(t, err)
	return c
}

// testRunDir is a test's own run_dir: on the tmpfs /dev/shm where there is
// one (as /run is on a production host), else in the test's directory.
// Tests running at once must not share one: their run ids can be equal.
func testRunDir(t testing.TB, dir string) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "sbtest-run-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return filepath.Join(dir, "run")
}

// want is the expected backup content: the tree minus the excluded dir.
func (c *client) want(t testing.TB) map[string]fixture.Entry {
	w, err := fixture.Scan(c.tree, strings.TrimPrefix(fixture.Excluded, "/"))
	require.NoError(t, err)
	return w
}

// requireTree compares a restored or extracted tree with the expected one.
// lost+found is the client filesystem's own, not part of the fixture.
func (c *client) requireTree(t testing.TB, got string) {
	t.Helper()
	g, err := fixture.Scan(got, "lost+found")
	require.NoError(t, err)
	require.Empty(t, fixture.Diff(c.want(t), g), "tree at %s differs from the client's", got)
}

// archives lists the repository's archives (borg on the host).
func (c *client) archives(t testing.TB) []string {
	return borgBackups(t, c.pass, c.dir, c.repo)
}

// borgBackups lists a borg repository's backups (borg list --short),
// oldest first, without the VM record archives beside them.
func borgBackups(t testing.TB, pass, dir, repo string) []string {
	return backupsOnly(borg(t, pass, dir, "list", "--short", repo))
}

// backupsOnly keeps the backups of borg list --short's output.
func backupsOnly(list string) []string {
	var out []string
	for _, a := range strings.Fields(list) {
		if !strings.HasPrefix(a, vmrecord.BorgPrefix) {
			out = append(out, a)
		}
	}
	return out
}

// requireNothingLeft checks that no run left an appliance, snapshot,
// overlay, job disk or ledger entry, and that the client domain uses its
// original disk in both its live and persistent definitions.
func (c *client) requireNothingLeft(t testing.TB) {
	t.Helper()
	c.requireNoLeftovers(t)
	c.requireDisks(t, c.disk)
}

// requireNoLeftovers checks that no run left an appliance, ledger entry,
// overlay, job disk or job disk directory.
func (c *client) requireNoLeftovers(t testing.TB) {
	t.Helper()
	require.Empty(t, appliances(t, c.stateDir, false), "appliance domain left")
	entries, err := os.ReadDir(filepath.Join(c.stateDir, "ledger"))
	if err == nil {
		require.Empty(t, entries, "ledger entries left")
	}
	filepath.WalkDir(filepath.Join(c.stateDir, "runs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			require.False(t, strings.HasSuffix(p, ".qcow2") || strings.HasSuffix(p, ".img"), "file left: %s", p)
		}
		return nil
	})
	// The run dir holds nothing but job disks and their directories.
	filepath.WalkDir(c.runDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != c.runDir {
			require.Fail(t, "left in the run dir", p)
		}
		return nil
	})
}

// requireDisks checks that the client domain uses exactly paths (in order,
// in c.format) in both its live and persistent definitions, and that no
// disk has grown a backing chain.
func (c *client) requireDisks(t testing.TB, paths ...string) {
	t.Helper()
	for _, flags := range [][]string{{"dumpxml", c.domain}, {"dumpxml", "--inactive", c.domain}} {
		disks, err := virt.ClientDisks(virsh(t, flags...))
		require.NoError(t, err)
		require.Len(t, disks, len(paths))
		for i, p := range paths {
			require.Equal(t, p, disks[i].Path, "%v: domain disk", flags)
			require.Equal(t, c.format, disks[i].Format)
		}
	}
	for _, p := range paths {
		out, err := exec.Command("qemu-img", "info", "-U", "--backing-chain", p).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NotContains(t, string(out), "backing file", "client disk must not have grown a backing chain")
	}
}

func (c *client) start(t testing.TB) {
	virsh(t, "start", c.domain)
}

func (c *client) running(t testing.TB) bool {
	return strings.Contains(virsh(t, "domstate", c.domain), "running")
}
