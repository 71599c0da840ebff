package run

import (
	"context"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// mountSources puts what a backup job reads at the snapshot directory:
// the client's disks (lvm_libvirt, lvm_host), or for a "self" client the
// host's directories, each a read-only 9p share mounted at its own path so
// that the tree looks like the host's.
func (s *supervisor) mountSources(ctx context.Context, j *job.Job) error {
	if len(j.Disks) > 0 {
		devs, plan, err := s.mountTree(ctx, j.Backup.Tree, j.Disks, backend.SnapshotDir, blockdev.Snapshot)
		if err != nil {
			return err
		}
		if s.vmDir, s.vmErr = s.recordVM(ctx, j, devs, plan); s.vmErr != nil {
			s.rep.Logf("VM record: %v", s.vmErr)
		}
		return nil
	}
	// Shallow first: /srv before /srv/data.
	shares := append(j.Backup.Shares[:0:0], j.Backup.Shares...)
	for i := 1; i < len(shares); i++ {
		for k := i; k > 0 && strings.Count(shares[k].Path, "/") < strings.Count(shares[k-1].Path, "/"); k-- {
			shares[k], shares[k-1] = shares[k-1], shares[k]
		}
	}
	for _, sh := range shares {
		p := path.Clean("/" + sh.Path)
		if p != sh.Path || strings.Contains(sh.Path, "..") {
			return fmt.Errorf("share %q: path %q is not a clean absolute path", sh.Tag, sh.Path)
		}
		// A share's mount point below another share is looked up in that
		// share without following a symlink, like a guest's.
		if err := s.stack.Mount(boot.Mount{Source: sh.Tag, Mountpoint: Sysroot + path.Join(backend.SnapshotDir, p),
			Root: Sysroot + backend.SnapshotDir, MakeDirs: true, FSType: "9p",
			Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
			Data:  "trans=virtio,version=9p2000.L,msize=262144,cache=none,access=client"}); err != nil {
			return fmt.Errorf("mount 9p share %q at %s (offered: %s): %w", sh.Tag, p, strings.Join(s.b.tags, " "), err)
		}
	}
	return nil
}

// mountPlain binds a "plain" client's directory on the cache volume to the
// snapshot directory.
func (s *supervisor) mountPlain(dir string) error {
	if dir == "" {
		return nil
	}
	if path.IsAbs(dir) || strings.Contains(dir, "..") {
		return fmt.Errorf("plain directory %q: want a path relative to the cache volume, without \"..\"", dir)
	}
	src := Sysroot + path.Join(backend.CacheDir, dir)
	end := s.rep.Step("mount plain directory")
	return end(s.stack.Mount(boot.Mount{Source: src, Mountpoint: Sysroot + backend.SnapshotDir, FSType: "none",
		Flags: unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV}))
}
