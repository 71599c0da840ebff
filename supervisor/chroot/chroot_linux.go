// Package chroot runs the appliance userland's tools: chrooted into the
// overlay root, each in its own process group (so the watchdog can stop a
// tool with everything it spawned), optionally at the job's nice/ionice
// priority, through the one exec helper.
package chroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// Grace is how long a cancelled command gets between SIGTERM and SIGKILL.
const Grace = 10 * time.Second

// searchPath is the tools' search path inside the userland: the
// distribution's directories only. /usr/local is where a local program
// would come first, and a guest mount once landed on /usr/local/sbin; the
// userland puts nothing there that a tool needs.
var searchPath = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Env is the base environment of chrooted tools (PID 1 inherits almost
// nothing from the kernel).
var Env = []string{"PATH=" + strings.Join(searchPath, ":"), "HOME=/root", "TERM=dumb"}

// Tracker is told around every command run so orphan reaping does not steal
// its exit status (boot.Reaper).
type Tracker interface {
	Begin()
	End()
}

// Cmd is one command to run in the chroot.
type Cmd struct {
	Argv   []string
	Dir    string // inside the chroot
	Env    []string
	In     io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// ExtraFiles become fds 3, 4, … (e.g. a passphrase pipe).
	ExtraFiles []*os.File
	// Priority runs the command at the job's nice/ionice.
	Priority bool
}

// Runner runs commands chrooted into Root.
type Runner struct {
	Root string
	// AcrossMounts lets programs live on any filesystem below Root: the
	// client's restored tree that the end_recovery hook runs in (its /usr
	// may be a filesystem of its own). The appliance's runner never sets
	// it, so a tool is only ever run from the userland's own root
	// filesystem, never from anything mounted into it.
	AcrossMounts bool
	Nice         int
	IOClass      string // "idle", "best-effort", "realtime" or ""
	Tracker      Tracker
	// Trace, when set, gets the argv of every command (never the env).
	Trace func(argv []string)
}

// Run runs c and returns its stdout (when c.Stdout is nil). When ctx ends
// the command's process group gets SIGTERM and, after Grace, SIGKILL.
func (r *Runner) Run(ctx context.Context, c Cmd) ([]byte, error) {
	if len(c.Argv) == 0 {
		return nil, fmt.Errorf("chroot: empty argv")
	}
	prog, err := r.Resolve(c.Argv[0])
	if err != nil {
		return nil, err
	}
	argv := append([]string{prog}, c.Argv[1:]...)
	if c.Priority {
		if argv, err = r.priorityArgv(argv); err != nil {
			return nil, err
		}
	}
	if r.Trace != nil {
		r.Trace(argv)
	}
	if r.Tracker != nil {
		r.Tracker.Begin()
		defer r.Tracker.End()
	}
	return execx.Run(ctx, execx.Cmd{
		Argv: argv, Dir: c.Dir, Env: append(append([]string(nil), Env...), c.Env...),
		In: c.In, Stdout: c.Stdout, Stderr: c.Stderr,
		Setup: func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: r.Root, Setpgid: true}
			cmd.ExtraFiles = c.ExtraFiles
			cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
			// Orphans holding the output pipes must not hang Wait.
			cmd.WaitDelay = Grace + 5*time.Second
		},
	})
}

// killGroup sends SIGTERM to the process group and SIGKILL after Grace.
func killGroup(pid int) error {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	go func() {
		time.Sleep(Grace)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}()
	return nil
}

// Resolve finds name in the chroot's PATH (or checks the absolute path
// name) and returns its path inside the chroot. os/exec would look it up
// outside the chroot, in the initramfs. The path is resolved as the chroot
// resolves it (symlinks inside Root stay inside it) and the program must
// be an executable regular file on Root's own filesystem: a program on
// anything mounted below Root (a client's filesystem above all) is refused
// with an error, whatever path led there.
func (r *Runner) Resolve(name string) (string, error) {
	if strings.Contains(name, "/") {
		if !path.IsAbs(name) {
			return "", fmt.Errorf("%s: want a program name or an absolute path", name)
		}
		if err := r.check(name); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, d := range searchPath {
		p := path.Join(d, name)
		err := r.check(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, errNoProgram) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: not found in the appliance userland %s", name, r.Root)
}

// errNoProgram: nothing executable at that path.
var errNoProgram = errors.New("no program")

// check verifies that p (inside the chroot) is an executable regular file
// on Root's filesystem.
func (r *Runner) check(p string) error {
	f, err := boot.OpenInRoot(r.Root, p, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("%s: %w (%v)", p, errNoProgram, err)
	}
	defer f.Close()
	var st unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_TYPE|unix.STATX_MODE|unix.STATX_MNT_ID, &st); err != nil {
		return fmt.Errorf("statx %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
		return fmt.Errorf("%s: %w", p, errNoProgram)
	}
	if r.AcrossMounts {
		return nil
	}
	var root unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, r.Root, 0, unix.STATX_MNT_ID, &root); err != nil {
		return fmt.Errorf("statx %s: %w", r.Root, err)
	}
	if st.Mask&unix.STATX_MNT_ID == 0 || root.Mask&unix.STATX_MNT_ID == 0 {
		return fmt.Errorf("%s: the kernel tells no mount id: cannot check where the program lives", p)
	}
	if st.Mnt_id != root.Mnt_id {
		return fmt.Errorf("%s: refusing to run a program that is not on the appliance userland's own filesystem (mount %d, not %d: something is mounted over it)", p, st.Mnt_id, root.Mnt_id)
	}
	return nil
}

// priorityArgv wraps argv in nice and ionice from the userland, which exec
// the tool in place (same pid, same process group).
func (r *Runner) priorityArgv(argv []string) ([]string, error) {
	out := PriorityArgv(r.Nice, r.IOClass, argv)
	for _, p := range out[:len(out)-len(argv)] {
		if strings.HasPrefix(p, "/") {
			if err := r.check(p); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// PriorityArgv prefixes argv with nice -n N and ionice -c CLASS as needed.
func PriorityArgv(nice int, ioClass string, argv []string) []string {
	var pre []string
	if nice != 0 {
		pre = append(pre, "/usr/bin/nice", "-n", strconv.Itoa(nice))
	}
	switch ioClass {
	case "idle":
		pre = append(pre, "/usr/bin/ionice", "-c", "3")
	case "best-effort":
		pre = append(pre, "/usr/bin/ionice", "-c", "2", "-n", "7")
	case "realtime":
		pre = append(pre, "/usr/bin/ionice", "-c", "1", "-n", "4")
	}
	return append(pre, argv...)
}
