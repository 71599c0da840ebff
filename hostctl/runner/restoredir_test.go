package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirtxml"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// restoreShare is the host directory an appliance domain's restore share
// (tag job.TagRestore) points at.
func restoreShare(t *testing.T, x string) string {
	t.Helper()
	var d libvirtxml.Domain
	require.NoError(t, d.Unmarshal(x))
	for _, fs := range d.Devices.Filesystems {
		if fs.Target.Dir == job.TagRestore {
			return fs.Source.Mount.Dir
		}
	}
	t.Fatalf("no restore share in\n%s", x)
	return ""
}

// TestRestoreToDirPrivate: a restore holds the guest's setuid files and
// device nodes, written as root through 9p. The destination is mode 0700
// and stays so even when the appliance (a guest's, maybe) makes the root
// of what it restores world-readable: it never gets the destination
// itself, only a directory inside it.
func TestRestoreToDirPrivate(t *testing.T) {
	j := newLVMJob(t, "")
	require.NoError(t, os.MkdirAll(filepath.Join(j.dir, "backup", "web"), 0o700))
	dst := filepath.Join(t.TempDir(), "restored")
	j.hv.onStart = func(x string) error {
		share := restoreShare(t, x)
		// What the appliance does: the backed-up root's mode (0755), a
		// setuid program in it.
		require.NoError(t, os.Chmod(share, 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(share, "usr", "bin"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(share, "usr", "bin", "sudo"), []byte("#!"), 0o4755))
		require.NoError(t, writeResult(applianceDisk(t, x), job.Done{Status: job.StatusOK, Archive: "web-1"}.Record()))
		delete(j.hv.live, domainName(x))
		return nil
	}
	rep := j.r.Restore(context.Background(), j.c, RestoreOptions{Dir: dst})
	require.Equal(t, job.StatusOK, rep.Status, rep.Error)
	fi, err := os.Stat(dst)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the destination is private")
	_, err = os.Stat(filepath.Join(dst, "usr", "bin", "sudo"))
	require.NoError(t, err, "the tree is in the destination itself")
	entries, err := os.ReadDir(dst)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing but the restored tree: %v", entries)
	j.requireNothingLeft(t)
}

// An empty destination that exists is made private; one with files in it,
// or owned by another user, is refused.
func TestRestoreToDirExisting(t *testing.T) {
	j := newLVMJob(t, "")
	require.NoError(t, os.MkdirAll(filepath.Join(j.dir, "backup", "web"), 0o700))
	open := filepath.Join(t.TempDir(), "open")
	require.NoError(t, os.Mkdir(open, 0o755))
	require.NoError(t, os.Chmod(open, 0o755))
	require.NoError(t, privateRestoreDir(open))
	fi, err := os.Stat(open)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o600))
	require.ErrorContains(t, privateRestoreDir(full), "is not empty")

	if os.Geteuid() == 0 {
		other := filepath.Join(t.TempDir(), "other")
		require.NoError(t, os.Mkdir(other, 0o700))
		require.NoError(t, os.Chown(other, 1000, 1000))
		require.ErrorContains(t, privateRestoreDir(other), "is owned by uid 1000")
	}
}

// A restore the tool finished with warnings (borg extract's exit status 1:
// a device node it could not make) is reported "warning" with the tool's
// line, never "ok", and what it restored is still moved into the
// destination.
func TestRestoreWithWarningsIsNoSuccess(t *testing.T) {
	j := newLVMJob(t, "")
	require.NoError(t, os.MkdirAll(filepath.Join(j.dir, "backup", "web"), 0o700))
	dst := filepath.Join(t.TempDir(), "restored")
	const warning = "borg extract finished with warnings (exit status 1): dev/zero: attrs: Operation not permitted"
	j.hv.onStart = func(x string) error {
		share := restoreShare(t, x)
		require.NoError(t, os.WriteFile(filepath.Join(share, "etc-hostname"), []byte("web\n"), 0o644))
		require.NoError(t, writeResult(applianceDisk(t, x), job.Done{Status: job.StatusWarning, Archive: "web-1", Warnings: job.Warnings{Warning: warning}}.Record()))
		delete(j.hv.live, domainName(x))
		return nil
	}
	rep := j.r.Restore(context.Background(), j.c, RestoreOptions{Dir: dst})
	require.Equal(t, job.StatusWarning, rep.Status, rep.Error)
	require.Equal(t, warning, rep.Warning)
	require.Empty(t, rep.Error)
	_, err := os.Stat(filepath.Join(dst, "etc-hostname"))
	require.NoError(t, err, "what was restored is in the destination")
	j.requireNothingLeft(t)
}

// A hostile appliance's restore result: status warning with a warning
// that carries terminal escapes (the supervisor writes them printable), or
// warning without saying what is missing. Neither is taken: the restore
// fails, its reason is no guest text, and it is never "warning" or "ok".
func TestRestoreRefusesHostileWarnings(t *testing.T) {
	for name, w := range map[string]job.Warnings{
		"control characters": {Warning: "borg extract finished with warnings: " + testutil.Hostile},
		"no warning":         {},
	} {
		t.Run(name, func(t *testing.T) {
			j := newLVMJob(t, "")
			require.NoError(t, os.MkdirAll(filepath.Join(j.dir, "backup", "web"), 0o700))
			dst := filepath.Join(t.TempDir(), "restored")
			j.hv.onStart = func(x string) error {
				require.NoError(t, writeResult(applianceDisk(t, x), job.Done{Status: job.StatusWarning, Archive: "web-1", Warnings: w}.Record()))
				delete(j.hv.live, domainName(x))
				return nil
			}
			rep := j.r.Restore(context.Background(), j.c, RestoreOptions{Dir: dst})
			require.Equal(t, job.StatusFailed, rep.Status)
			require.Empty(t, rep.Warning)
			testutil.RequireNoControl(t, rep.Error)
			j.requireNothingLeft(t)
		})
	}
}
