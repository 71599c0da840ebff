package boot

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

// Mount is one entry of a mount table.
type Mount struct {
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	// Recursive bind mounts are detached lazily, because their submounts
	// (e.g. /dev/pts below /dev) are not ours to unmount one by one.
	Lazy bool
}

func (m Mount) String() string {
	s := fmt.Sprintf("%s on %s type %s", m.Source, m.Target, m.FSType)
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
	{Source: "proc", Target: "/proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
	{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "gid=5,mode=620,ptmxmode=000"},
	{Source: "tmpfs", Target: "/dev/shm", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV},
	{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"},
}

// Stack mounts entries and remembers them, so that UnmountAll can take them
// down in reverse order before power-off.
type Stack struct {
	mu      sync.Mutex
	mounted []Mount
}

// Mount mounts m (creating its target) and pushes it. An error names device,
// type, flags and target and carries the kernel's last words, which usually
// say why (bad superblock, needs recovery, unknown fs …).
func (s *Stack) Mount(m Mount) error {
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", m, err)
	}
	if _, err := mount.Mount(m.Source, m.Target, m.FSType, m.Data, m.Flags); err != nil {
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

// MountAll mounts the table in order; an entry whose target is already a
// mount point (the kernel may have mounted devtmpfs) is skipped.
func (s *Stack) MountAll(table []Mount) error {
	for _, m := range table {
		if IsMountPoint(m.Target) {
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

// Unmount takes down the most recent mount at target (and everything
// mounted after it), for a step that gives a mount back early.
func (s *Stack) Unmount(target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.mounted) - 1; i >= 0; i-- {
		if s.mounted[i].Target == target {
			err := unmountList(s.mounted[i:])
			s.mounted = s.mounted[:i]
			return err
		}
	}
	return fmt.Errorf("unmount %s: not mounted by us", target)
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
		err := unix.Unmount(m.Target, flags)
		if err == unix.EBUSY {
			unix.Sync()
			err = unix.Unmount(m.Target, unix.MNT_DETACH)
		}
		if err != nil && err != unix.EINVAL && first == nil {
			first = fmt.Errorf("unmount %s: %w", m.Target, err)
		}
	}
	return first
}

// Mountinfo reads this process's mount table.
func Mountinfo() ([]MountInfo, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	return ParseMountinfo(b)
}

// IsMountPoint reports whether path is listed in /proc/self/mountinfo.
func IsMountPoint(path string) bool {
	ms, err := Mountinfo()
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
