// Package chroot runs the appliance userland's tools: chrooted into the
// overlay root, each in its own process group (so the watchdog can stop a
// tool with everything it spawned), optionally at the job's nice/ionice
// priority, through the one exec helper.
package chroot

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// Grace is how long a cancelled command gets between SIGTERM and SIGKILL.
const Grace = 10 * time.Second

// Path is the search path inside the chroot.
var searchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

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
	Root    string
	Nice    int
	IOClass string // "idle", "best-effort", "realtime" or ""
	Tracker Tracker
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
		argv = r.priorityArgv(argv)
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

// Resolve finds name in the chroot's PATH and returns its path inside the
// chroot. os/exec would look it up outside the chroot, in the initramfs.
func (r *Runner) Resolve(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range searchPath {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(filepath.Join(r.Root, p)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in the appliance userland %s", name, r.Root)
}

// priorityArgv wraps argv in nice and ionice from the userland, which exec
// the tool in place (same pid, same process group).
func (r *Runner) priorityArgv(argv []string) []string {
	return PriorityArgv(r.Nice, r.IOClass, argv)
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
