package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// userland lays out a small userland: usrmerge symlinks, an alternatives
// symlink that is absolute (it must resolve inside the userland, not in
// the test's /etc), a program in /usr/local/sbin that must never be found.
func userland(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, mode := range map[string]os.FileMode{
		"usr/bin/borg": 0o755, "usr/bin/nice": 0o755, "usr/bin/ionice": 0o755, "usr/sbin/blkid": 0o755,
		"usr/bin/mawk": 0o755, "usr/bin/readme": 0o644, "usr/local/sbin/lvm": 0o755, "usr/local/bin/gpg": 0o755,
	} {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), mode))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/alternatives"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin/dir"), 0o755))
	for name, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "usr/bin/awk": "/etc/alternatives/awk", "etc/alternatives/awk": "/usr/bin/mawk"} {
		require.NoError(t, os.Symlink(target, filepath.Join(root, name)))
	}
	return root
}

func TestResolve(t *testing.T) {
	r := &Runner{Root: userland(t)}
	for _, tc := range []struct{ name, want, err string }{
		{"borg", "/usr/bin/borg", ""},
		{"blkid", "/usr/sbin/blkid", ""},
		{"awk", "/usr/bin/awk", ""}, // through absolute symlinks, inside the userland
		{"/bin/borg", "/bin/borg", ""},
		{"lvm", "", "not found"}, // /usr/local is not searched
		{"gpg", "", "not found"},
		{"readme", "", "not found"},
		{"dir", "", "not found"},
		{"/usr/local/sbin/nope", "", "no program"},
		{"usr/bin/borg", "", "want a program name or an absolute path"},
	} {
		got, err := r.Resolve(tc.name)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
	require.NotContains(t, strings.Join(Env, " "), "/usr/local", "the tools' PATH")
}

// TestResolveRefusesCoveredPrograms: whatever is mounted over a directory
// of the userland (as a guest's filesystem once was over /usr/local/sbin),
// no program is resolved from it, by name or by path, nor the priority
// wrappers.
func TestResolveRefusesCoveredPrograms(t *testing.T) {
	testutil.NeedRoot(t)
	root := userland(t)
	guest := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(guest, "blkid"), []byte("#!/bin/sh\necho guest\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(guest, "nice"), []byte("#!/bin/sh\necho guest\n"), 0o755))
	for _, dir := range []string{"usr/sbin", "usr/bin"} {
		require.NoError(t, unix.Mount(guest, filepath.Join(root, dir), "", unix.MS_BIND, ""))
		t.Cleanup(func() { _ = unix.Unmount(filepath.Join(root, dir), unix.MNT_DETACH) })
	}
	r := &Runner{Root: root, Nice: 10}
	for _, name := range []string{"blkid", "/usr/sbin/blkid", "/sbin/blkid"} {
		_, err := r.Resolve(name)
		require.ErrorContains(t, err, "refusing to run a program that is not on the appliance userland's own filesystem", name)
	}
	_, err := r.priorityArgv([]string{"/usr/bin/true"})
	require.ErrorContains(t, err, "/usr/bin/nice: refusing", "the nice wrapper")
	p, err := (&Runner{Root: root, AcrossMounts: true}).Resolve("blkid")
	require.NoError(t, err, "a runner for the client's own tree")
	require.Equal(t, "/usr/sbin/blkid", p)
}
