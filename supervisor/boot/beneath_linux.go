package boot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A guest tree is a directory whose content a guest wrote: its filesystems
// mounted in the appliance, a restored backup of them. Paths in it are
// resolved by the kernel from a file descriptor of the tree's top, never
// by joining strings and calling stat or mount, which follow a symlink
// wherever it points in the appliance (a guest's /data → ../usr/local/sbin
// is the appliance's /usr/local/sbin to a path join).

// SymlinkError is a path in a guest tree that goes through a symlink.
type SymlinkError struct {
	Path string // the path asked for, absolute inside the tree ("/data/x")
	Link string // its component that is a symlink ("/data")
	Dest string // where that points
}

func (e *SymlinkError) Error() string {
	if e.Link == e.Path {
		return fmt.Sprintf("%s is a symlink (to %s)", e.Link, e.Dest)
	}
	return fmt.Sprintf("%s lies through a symlink: %s is a symlink (to %s)", e.Path, e.Link, e.Dest)
}

// beneath resolves one name relative to a directory fd: no symlink (no
// magic link either), nothing outside, a directory.
var beneath = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
}

// openat2 retries EAGAIN, which RESOLVE_BENEATH and RESOLVE_IN_ROOT return
// when a rename or mount raced with the lookup.
func openat2(dirfd int, name string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, name, how)
		if err != unix.EAGAIN || i == 10 {
			return fd, err
		}
	}
}

// OpenDirBeneath opens directory rel (absolute inside the tree, "/" for
// the top) of the guest tree at root as an O_PATH descriptor, following no
// symlink on the way and never leaving the tree. Mount points below root
// are crossed as a lookup crosses them, so the result is the directory a
// process chrooted into root would see there, minus every symlink. With
// mkdir, missing directories are created (mode perm) one by one, each
// inside the one just opened.
func OpenDirBeneath(root, rel string, mkdir bool, perm os.FileMode) (*os.File, error) {
	comps, err := components(rel)
	if err != nil {
		return nil, err
	}
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	for i, c := range comps {
		fd, err := openat2(dfd, c, &beneath)
		if err == unix.ENOENT && mkdir {
			if err = unix.Mkdirat(dfd, c, uint32(perm.Perm())); err == nil || err == unix.EEXIST {
				fd, err = openat2(dfd, c, &beneath)
			}
		}
		if err != nil {
			e := componentError(dfd, c, "/"+strings.Join(comps[:i+1], "/"), "/"+strings.Join(comps, "/"), err)
			unix.Close(dfd)
			return nil, e
		}
		unix.Close(dfd)
		dfd = fd
	}
	return os.NewFile(uintptr(dfd), filepath.Join(root, rel)), nil
}

// components splits an absolute path inside a tree into its names; ".."
// is refused (a guest's mount point never needs it; the callers clean
// their paths, so one left is an attempt to climb out).
func components(rel string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(rel, "/") {
		switch c {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("%s: \"..\" leaves the tree", rel)
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// componentError explains why name (at prefix inside the tree, on the way
// to full) did not open as a directory.
func componentError(dirfd int, name, prefix, full string, err error) error {
	switch err {
	case unix.ELOOP:
		dest := "?"
		buf := make([]byte, unix.PathMax)
		if n, rerr := unix.Readlinkat(dirfd, name, buf); rerr == nil {
			dest = string(buf[:n])
		}
		return &SymlinkError{Path: full, Link: prefix, Dest: dest}
	case unix.ENOTDIR:
		return fmt.Errorf("%s is not a directory", prefix)
	case unix.ENOENT:
		return fmt.Errorf("%s: %w", prefix, os.ErrNotExist)
	case unix.EXDEV:
		return fmt.Errorf("%s leaves the tree", prefix)
	}
	return fmt.Errorf("open %s: %w", prefix, err)
}

// inRoot resolves a whole path as a process chrooted into the tree would:
// symlinks are followed, but "/" and ".." stop at the tree's top, so a
// guest's /etc/fstab → /job/secret-passphrase is the guest's own
// /job/secret-passphrase, not the appliance's.
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// OpenInRoot opens file rel (absolute inside the tree) of the guest tree
// at root with flags (O_CLOEXEC is added), resolving as inRoot says.
func OpenInRoot(root, rel string, flags int) (*os.File, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	name := strings.TrimPrefix(path.Clean("/"+rel), "/")
	if name == "" {
		name = "."
	}
	fd, err := openat2(rfd, name, &unix.OpenHow{Flags: uint64(flags) | unix.O_CLOEXEC, Resolve: inRoot})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/" + name, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, name)), nil
}

// ErrTooLarge is a guest file larger than its reader allows.
var ErrTooLarge = errors.New("file too large")

// ReadFileInRoot reads the regular file rel of the guest tree at root (see
// OpenInRoot), at most max bytes: a guest's fstab is attacker input, and so
// is its size and whether it is a file at all (a FIFO would block the
// read forever, a device is no fstab).
func ReadFileInRoot(root, rel string, max int64) ([]byte, error) {
	f, err := OpenInRoot(root, rel, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", rel, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w (over %d bytes)", rel, ErrTooLarge, max)
	}
	return b, nil
}
