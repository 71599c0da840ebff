// Command agentvm is the init of the test client VM that runs a QEMU guest
// agent. The initramfs holds this program, the kernel modules it needs and
// root.sqfs: a Debian userland (mmdebstrap, like the appliance's) with
// qemu-guest-agent. agentvm loop-mounts root.sqfs at /sysroot, mounts each
// client disk at /mnt/<disk> (read-write, so fsfreeze has something to
// freeze and hooks can write to it) and runs qemu-ga chrooted into
// /sysroot, reaping orphans as PID 1 must.
//
// Console markers: "agentvm: up" once qemu-ga runs, "agentvm: FAIL …" on
// a setup error (the VM then idles so the test can read the console).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/mount/loop"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/qemu-tests/guestinit"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

const root = "/sysroot"

func main() {
	if err := setup(); err != nil {
		fmt.Println("agentvm: FAIL", err)
		for {
			time.Sleep(time.Hour)
		}
	}
	fmt.Println("agentvm: up")
	reap()
}

func setup() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
	} {
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	if _, failed := boot.LoadModules("/etc/sb-modules", func(f string, a ...any) { fmt.Printf("agentvm: "+f+"\n", a...) }); len(failed) > 0 {
		return fmt.Errorf("modules: %v", failed)
	}
	lp, err := loop.New("/root.sqfs", "squashfs", "")
	if err != nil {
		return fmt.Errorf("loop root.sqfs: %w", err)
	}
	if _, err := lp.Mount(root, unix.MS_RDONLY); err != nil {
		return fmt.Errorf("mount root.sqfs: %w", err)
	}
	for _, m := range []struct{ src, dst, fs string }{
		{"devtmpfs", "dev", "devtmpfs"}, {"proc", "proc", "proc"}, {"sysfs", "sys", "sysfs"},
		{"tmpfs", "run", "tmpfs"}, {"tmpfs", "tmp", "tmpfs"}, {"tmpfs", "mnt", "tmpfs"},
	} {
		if err := unix.Mount(m.src, filepath.Join(root, m.dst), m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	// The client's disks, by their names; they may take a moment to appear.
	time.Sleep(500 * time.Millisecond)
	disks, _ := filepath.Glob("/sys/block/vd*")
	for _, d := range disks {
		name := filepath.Base(d)
		dst := filepath.Join(root, "mnt", name)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+name, dst, "ext4", 0, ""); err != nil {
			return fmt.Errorf("mount /dev/%s: %w", name, err)
		}
		fmt.Println("agentvm: mounted", name)
	}
	return guestinit.StartAgent(root)
}

// reap collects every exited child, qemu-ga's orphans included; it returns
// never (the test destroys the VM).
func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		if b, _ := os.ReadFile(filepath.Join(root, "run/qemu-ga.pid")); strings.TrimSpace(string(b)) == fmt.Sprint(pid) {
			fmt.Println("agentvm: qemu-ga exited:", ws)
		}
	}
}
