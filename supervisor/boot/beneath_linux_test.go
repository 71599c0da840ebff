package boot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// guestTree lays out a hostile guest's tree in a temp dir: root is the
// guest's "/", outside is a directory of the appliance's next to it (as
// /sysroot/usr/local/sbin is next to /sysroot/snapshot).
func guestTree(t *testing.T) (root, outside string) {
	t.Helper()
	top := t.TempDir()
	root, outside = filepath.Join(top, "snapshot"), filepath.Join(top, "usr", "local", "sbin")
	for _, d := range []string{outside, filepath.Join(root, "srv", "www"), filepath.Join(root, "real", "sub"), filepath.Join(root, "etc")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	for name, target := range map[string]string{
		"data":         "../usr/local/sbin", // relative, out of the tree by one ".."
		"abs":          outside,             // absolute, as the appliance sees it
		"guestabs":     "/usr/local/sbin",   // absolute, as the guest sees it
		"parent":       "real",              // a symlink inside the tree, to a directory
		"real/sub/up":  "../..",
		"srv/www/loop": "loop",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(root, name)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "file"), []byte("x"), 0o644))
	return root, outside
}

func TestOpenDirBeneath(t *testing.T) {
	root, outside := guestTree(t)
	for _, tc := range []struct {
		rel       string
		err       string // "" = opens
		link      string // the symlink component the error names
		notExist  bool
		wantInode string // the directory that must be opened (inside root)
	}{
		{rel: "/", wantInode: "."},
		{rel: "/srv/www", wantInode: "srv/www"},
		{rel: "srv//www/", wantInode: "srv/www"},
		{rel: "/real/sub", wantInode: "real/sub"},
		{rel: "/data", err: "/data is a symlink (to ../usr/local/sbin)", link: "/data"},
		{rel: "/abs", err: "/abs is a symlink (to " + outside + ")", link: "/abs"},
		{rel: "/guestabs", err: "/guestabs is a symlink (to /usr/local/sbin)", link: "/guestabs"},
		{rel: "/parent/sub", err: "/parent/sub lies through a symlink: /parent is a symlink (to real)", link: "/parent"},
		{rel: "/data/x/y", err: "/data is a symlink", link: "/data"},
		{rel: "/real/sub/up", err: "/real/sub/up is a symlink (to ../..)", link: "/real/sub/up"},
		{rel: "/srv/www/loop", err: "is a symlink (to loop)", link: "/srv/www/loop"},
		{rel: "/etc/file", err: "/etc/file is not a directory"},
		{rel: "/etc/file/x", err: "/etc/file is not a directory"},
		{rel: "/nope/x", err: "/nope", notExist: true},
		{rel: "/srv/../../usr", err: `".." leaves the tree`},
		{rel: "../usr/local/sbin", err: `".." leaves the tree`},
	} {
		t.Run(tc.rel, func(t *testing.T) {
			f, err := OpenDirBeneath(root, tc.rel, false, 0)
			if tc.err == "" {
				require.NoError(t, err)
				defer f.Close()
				var got, want unix.Stat_t
				require.NoError(t, unix.Fstat(int(f.Fd()), &got))
				require.NoError(t, unix.Stat(filepath.Join(root, tc.wantInode), &want))
				require.Equal(t, want.Ino, got.Ino, "opened another directory")
				return
			}
			require.ErrorContains(t, err, tc.err)
			var se *SymlinkError
			require.Equal(t, tc.link != "", errors.As(err, &se), "SymlinkError: %v", err)
			if se != nil {
				require.Equal(t, tc.link, se.Link)
			}
			require.Equal(t, tc.notExist, errors.Is(err, os.ErrNotExist), "ErrNotExist: %v", err)
		})
	}
}

func TestOpenDirBeneathMkdir(t *testing.T) {
	root, outside := guestTree(t)
	f, err := OpenDirBeneath(root, "/srv/new/deeper", true, 0o750)
	require.NoError(t, err)
	f.Close()
	fi, err := os.Lstat(filepath.Join(root, "srv", "new", "deeper"))
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	// Through a symlink nothing is created, neither in the tree nor where
	// the symlink points.
	for _, rel := range []string{"/data/evil", "/abs/evil", "/parent/evil"} {
		_, err := OpenDirBeneath(root, rel, true, 0o755)
		require.ErrorContains(t, err, "is a symlink", rel)
	}
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries, "a directory was made outside the tree")
	_, err = os.Lstat(filepath.Join(root, "real", "evil"))
	require.ErrorIs(t, err, os.ErrNotExist, "a directory was made through /parent")
}

func TestReadFileInRoot(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "snapshot")
	job := filepath.Join(top, "job")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "job"), 0o755))
	require.NoError(t, os.MkdirAll(job, 0o700))
	secret := filepath.Join(job, "secret-passphrase")
	require.NoError(t, os.WriteFile(secret, []byte("the appliance's secret\n"), 0o600))
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(content), 0o644))
	}
	link := func(name, target string) {
		p := filepath.Join(root, name)
		os.Remove(p)
		require.NoError(t, os.Symlink(target, p))
	}
	read := func(name string, max int64) (string, error) {
		b, err := ReadFileInRoot(root, name, max)
		return string(b), err
	}

	write("etc/fstab.real", "LABEL=root / ext4 defaults 0 1\n")
	link("etc/fstab", "fstab.real")
	got, err := read("/etc/fstab", 1<<20)
	require.NoError(t, err)
	require.Equal(t, "LABEL=root / ext4 defaults 0 1\n", got, "a symlink inside the guest's tree is followed, as the guest would")

	// Absolute and climbing symlinks resolve inside the guest's root: the
	// appliance's file is never read.
	for _, target := range []string{secret, "/job/secret-passphrase", "../../../../../../job/secret-passphrase", "/../job/secret-passphrase"} {
		link("etc/fstab", target)
		got, err := read("/etc/fstab", 1<<20)
		require.ErrorIs(t, err, os.ErrNotExist, "symlink to %s read %q", target, got)
	}
	write("job/secret-passphrase", "the guest's own file\n")
	link("etc/fstab", "/job/secret-passphrase")
	got, err = read("/etc/fstab", 1<<20)
	require.NoError(t, err)
	require.Equal(t, "the guest's own file\n", got)
	require.NoError(t, os.RemoveAll(filepath.Join(root, "etc")))
	link("etc", "/job")
	got, err = read("/etc/secret-passphrase", 1<<20)
	require.NoError(t, err)
	require.Equal(t, "the guest's own file\n", got, "a symlinked directory resolves inside the tree too")
	require.NoError(t, os.Remove(filepath.Join(root, "etc")))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))

	// Not a regular file: refused without blocking (a FIFO) or reading.
	require.NoError(t, unix.Mkfifo(filepath.Join(root, "etc", "fstab"), 0o644))
	_, err = read("/etc/fstab", 1<<20)
	require.ErrorContains(t, err, "not a regular file")
	require.NoError(t, os.Remove(filepath.Join(root, "etc", "fstab")))
	require.NoError(t, os.Mkdir(filepath.Join(root, "etc", "fstab"), 0o755))
	_, err = read("/etc/fstab", 1<<20)
	require.ErrorContains(t, err, "not a regular file")
	require.NoError(t, os.Remove(filepath.Join(root, "etc", "fstab")))

	// Bounded.
	write("etc/fstab", strings.Repeat("#\n", 100))
	_, err = read("/etc/fstab", 199)
	require.ErrorIs(t, err, ErrTooLarge)
	got, err = read("/etc/fstab", 200)
	require.NoError(t, err)
	require.Len(t, got, 200)
}

// TestStackMountBeneath mounts tmpfs filesystems into a guest tree the
// way the supervisor mounts a client's filesystems: through a symlink
// nothing is mounted, neither inside the tree nor where it points; a
// plain mount point works and lands where mountinfo says; unmounting
// follows no symlink that appeared later.
func TestStackMountBeneath(t *testing.T) {
	testutil.NeedRoot(t)
	root, outside := guestTree(t)
	var st Stack
	t.Cleanup(func() { _ = st.UnmountAll(0) })
	require.NoError(t, st.Mount(Mount{Source: "tmpfs", Mountpoint: root, Root: root, FSType: "tmpfs", Data: "mode=0755"}),
		"the tree's top is the appliance's directory")
	// The tmpfs now is the guest's "/": lay the attack out on it.
	for _, d := range []string{"srv/www", "real/sub"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for name, target := range map[string]string{"data": "../usr/local/sbin", "abs": outside, "parent": "real"} {
		require.NoError(t, os.Symlink(target, filepath.Join(root, name)))
	}
	before, err := mountinfo.Read()
	require.NoError(t, err)
	for _, where := range []string{"/data", "/abs", "/parent/sub"} {
		err := st.Mount(Mount{Source: "guestfs", Mountpoint: filepath.Join(root, where), Root: root, FSType: "tmpfs", Flags: unix.MS_NOEXEC})
		var se *SymlinkError
		require.ErrorAs(t, err, &se, where)
	}
	after, err := mountinfo.Read()
	require.NoError(t, err)
	require.Equal(t, len(before), len(after), "a mount through a symlink was made")
	require.False(t, IsMountPoint(outside))

	www := filepath.Join(root, "srv", "www")
	require.NoError(t, st.Mount(Mount{Source: "guestfs", Mountpoint: www, Root: root, FSType: "tmpfs", Flags: unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV}))
	ms, err := mountinfo.Read()
	require.NoError(t, err)
	var found bool
	for _, m := range ms {
		if m.Source == "guestfs" {
			found = true
			require.Equal(t, www, m.MountPoint, "mountinfo names the real directory, not /proc/self/fd")
			require.True(t, m.HasOption("noexec"), "%v", m.Options)
		}
	}
	require.True(t, found)

	require.ErrorContains(t, st.Mount(Mount{Source: "guestfs", Mountpoint: outside, Root: root, FSType: "tmpfs"}), "is not in its tree")

	// A fresh tree: missing mount points are made beneath the root.
	require.NoError(t, st.Mount(Mount{Source: "guestfs2", Mountpoint: filepath.Join(root, "new", "mp"), Root: root, MakeDirs: true, FSType: "tmpfs"}))
	require.True(t, IsMountPoint(filepath.Join(root, "new", "mp")))
	require.NoError(t, st.Unmount(filepath.Join(root, "new", "mp")))

	// The tree changes under a mount: /srv becomes a symlink to a
	// directory that has a mount of its own at www. Unmounting /srv/www
	// must not take that one down.
	decoy := filepath.Join(filepath.Dir(outside), "decoy")
	require.NoError(t, os.MkdirAll(filepath.Join(decoy, "www"), 0o755))
	require.NoError(t, unix.Mount("decoyfs", filepath.Join(decoy, "www"), "tmpfs", 0, ""))
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(decoy, "www"), unix.MNT_DETACH) })
	require.NoError(t, os.Rename(filepath.Join(root, "srv"), filepath.Join(root, "srv.moved")))
	require.NoError(t, os.Symlink(decoy, filepath.Join(root, "srv")))
	err = st.Unmount(www)
	require.ErrorContains(t, err, "/srv is a symlink")
	require.True(t, IsMountPoint(filepath.Join(decoy, "www")), "unmounting followed the symlink")
	require.NoError(t, st.UnmountAll(0))
	require.True(t, IsMountPoint(filepath.Join(decoy, "www")), "unmounting followed the symlink")
	require.False(t, IsMountPoint(root), "the tree's top, unmounted lazily, takes the moved mount along")
}

func TestMountinfoOfThisProcess(t *testing.T) {
	ms, err := mountinfo.Read()
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	require.True(t, IsMountPoint(ms[0].MountPoint))
}
