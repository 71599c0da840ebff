package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
)

// Mount is one entry of a mount table.
type Mount struct {
	Source     string
	Mountpoint string
	FSType     string
	Flags      uintptr
	Data       string
	// Recursive bind mounts are detached lazily, because their submounts
	// (e.g. /dev/pts below /dev) are not ours to unmount one by one.
	Lazy bool
	// Root, when set, is the top of a guest tree (see OpenDirBeneath) and
	// Mountpoint lies at or below it: Mountpoint is then resolved beneath Root
	// without following any symlink, and the filesystem is mounted onto
	// (and later unmounted from) the directory so found, by its file
	// descriptor. Root itself is the appliance's: the tree's own "/" is
	// mounted there by path.
	Root string
	// MakeDirs creates a missing Mountpoint below Root the same way (the
	// fresh filesystems of an in-place recovery have no mount points).
	MakeDirs bool
}

func (m Mount) String() string {
	s := fmt.Sprintf("%s on %s type %s", m.Source, m.Mountpoint, m.FSType)
	if m.Flags&unix.MS_RDONLY != 0 {
		s += " ro"
	}
	if m.Flags&unix.MS_BIND != 0 {
		s += " bind"
	}
	if m.Data != "" {
		s += " (" + m.Data + ")"
	}
	return s
}

// EarlyMounts is what PID 1 needs before anything else.
var EarlyMounts = []Mount{
	{Source: "proc", Mountpoint: "/proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{Source: "sysfs", Mountpoint: "/sys", FSType: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{Source: "devtmpfs", Mountpoint: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
	{Source: "devpts", Mountpoint: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "gid=5,mode=620,ptmxmode=000"},
	{Source: "tmpfs", Mountpoint: "/dev/shm", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV},
	{Source: "tmpfs", Mountpoint: "/run", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"},
}

// Stack mounts entries and remembers them, so that UnmountAll can take them
// down in reverse order before power-off.
type Stack struct {
	mu      sync.Mutex
	mounted []Mount
	// Logf, when set, hears of filesystem modules loaded on demand.
	Logf func(string, ...any)
}

// Mount mounts m (creating its mountpoint) and pushes it. An error names device,
// type, flags and mountpoint and carries the kernel's last words, which usually
// say why (bad superblock, needs recovery, unknown fs …).
func (s *Stack) Mount(m Mount) error {
	mountpoint, dir, err := m.open()
	if err != nil {
		return err
	}
	if dir != nil {
		defer dir.Close()
	}
	if s.Logf != nil {
		LoadFilesystem(m.FSType, s.Logf)
	}
	if _, err := mount.Mount(m.Source, mountpoint, m.FSType, m.Data, m.Flags); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			pe.Path = m.Mountpoint // not /proc/self/fd/N
		}
		about := strings.TrimPrefix(m.Source, "/dev/")
		if !strings.HasPrefix(m.Source, "/dev/") {
			about = m.FSType
		}
		if k := KernelLogTail(3, about); k != "" {
			return fmt.Errorf("%w; kernel: %s", err, k)
		}
		return err
	}
	s.mu.Lock()
	s.mounted = append(s.mounted, m)
	s.mu.Unlock()
	return nil
}

// open finds m's mount point: a path for the kernel to mount on, and the
// directory's descriptor that path refers to for a mount into a guest
// tree. /proc/self/fd/N names exactly the directory the descriptor holds
// (the kernel jumps to it; nothing of the guest's path is looked up
// again), and keeps the mount the same mount(2) call, with the same
// option strings and errors, as every other.
func (m Mount) open() (string, *os.File, error) {
	if m.Root != "" && !mountinfo.Below(filepath.Clean(m.Mountpoint), filepath.Clean(m.Root)) {
		return "", nil, fmt.Errorf("mount %s: the mount point is not in its tree %s", m, m.Root)
	}
	rel, inside := m.below()
	if !inside {
		if err := os.MkdirAll(m.Mountpoint, 0o755); err != nil {
			return "", nil, fmt.Errorf("mount %s: %w", m, err)
		}
		return m.Mountpoint, nil, nil
	}
	if err := os.MkdirAll(m.Root, 0o755); err != nil {
		return "", nil, fmt.Errorf("mount %s: %w", m, err)
	}
	dir, err := OpenDirBeneath(m.Root, rel, m.MakeDirs, 0o755)
	if err != nil {
		return "", nil, err
	}
	return fdPath(dir), dir, nil
}

// below returns Mountpoint relative to Root ("/var") when m mounts into a
// guest tree below its top.
func (m Mount) below() (string, bool) {
	if m.Root == "" {
		return "", false
	}
	root, mountpoint := filepath.Clean(m.Root), filepath.Clean(m.Mountpoint)
	if mountpoint == root || !strings.HasPrefix(mountpoint, root+"/") {
		return "", false
	}
	return strings.TrimPrefix(mountpoint, root), true
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// MountAll mounts the table in order; an entry whose mountpoint is already a
// mount point (the kernel may have mounted devtmpfs) is skipped.
func (s *Stack) MountAll(table []Mount) error {
	for _, m := range table {
		if IsMountPoint(m.Mountpoint) {
			continue
		}
		if err := s.Mount(m); err != nil {
			return err
		}
	}
	return nil
}

// Mounted returns the mounts in mount order.
func (s *Stack) Mounted() []Mount {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mount(nil), s.mounted...)
}

// Unmount takes down the most recent mount at mountpoint (and everything
// mounted after it), for a step that gives a mount back early.
func (s *Stack) Unmount(mountpoint string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.mounted) - 1; i >= 0; i-- {
		if s.mounted[i].Mountpoint == mountpoint {
			err := unmountList(s.mounted[i:])
			s.mounted = s.mounted[:i]
			return err
		}
	}
	return fmt.Errorf("unmount %s: not mounted by us", mountpoint)
}

// UnmountAll unmounts everything in reverse order. Filesystems that stay
// busy are detached lazily; the first real error is returned but the rest
// are still attempted. The early mounts (/proc …) go too unless keep > 0
// entries are to be kept at the bottom of the stack.
func (s *Stack) UnmountAll(keep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if keep > len(s.mounted) {
		keep = len(s.mounted)
	}
	err := unmountList(s.mounted[keep:])
	s.mounted = s.mounted[:keep]
	return err
}

func unmountList(ms []Mount) error {
	var first error
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		flags := 0
		if m.Lazy {
			flags = unix.MNT_DETACH
		}
		err := m.unmount(flags)
		if err == unix.EBUSY {
			unix.Sync()
			err = m.unmount(unix.MNT_DETACH)
		}
		if err != nil && err != unix.EINVAL && first == nil {
			first = fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return first
}

// unmount follows no symlink either: a mount into a guest tree is found
// again beneath its Root (a restore may have replaced a directory on the
// way with a symlink; then the mount stays, and the tree's top, unmounted
// lazily after it, takes it along), any other by its path with
// UMOUNT_NOFOLLOW.
func (m Mount) unmount(flags int) error {
	rel, inside := m.below()
	if !inside {
		return unix.Unmount(m.Mountpoint, flags|unix.UMOUNT_NOFOLLOW)
	}
	dir, err := OpenDirBeneath(m.Root, rel, false, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	// The magic link is the one thing followed: it is the directory just
	// resolved. (UMOUNT_NOFOLLOW would refuse the link itself.)
	return unix.Unmount(fdPath(dir), flags)
}

// IsMountPoint reports whether path is listed in /proc/self/mountinfo.
func IsMountPoint(path string) bool {
	ms, err := mountinfo.Read()
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.MountPoint == path {
			return true
		}
	}
	return false
}
