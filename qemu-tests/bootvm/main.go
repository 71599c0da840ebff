// Command bootvm is the init of the bootable test client that the
// in-place recovery test restores: a client whose system lives on its own
// disks, as an installed VM's does.
//
// As /init of the initramfs (stage 1) it loads the modules, finds the root
// filesystem that the kernel command line names (root=LABEL=… or
// root=UUID=…) among the ext4 filesystems of the virtio disks, mounts it
// and switches root to it, running itself again as /sbin/sbinit from there.
// As /sbin/sbinit (stage 2, the client's "installed" init) it checks that
// the root is the filesystem its /etc/fstab names for "/", mounts the other
// fstab lines by UUID= or LABEL=, prints the marker from /srv/data/marker,
// and runs qemu-guest-agent from the root filesystem, reaping orphans.
//
// Console lines: "bootvm: root …", "bootvm: mounted …", "bootvm: MARKER
// <text>" ("(none)" without one), "bootvm: up", "bootvm: FAIL …" on an
// error (the VM then idles so the test can read the console).
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/qemu-tests/guestinit"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

func main() {
	var err error
	if filepath.Base(os.Args[0]) == "sbinit" {
		err = stage2()
	} else {
		err = stage1()
	}
	if err != nil {
		fmt.Println("bootvm: FAIL", err)
		for {
			time.Sleep(time.Hour)
		}
	}
	fmt.Println("bootvm: up")
	reap()
}

func stage1() error {
	// What PID 1 needs, as the appliance mounts it; switch_root moves it
	// into the new root.
	if err := (&boot.Stack{}).MountAll(boot.EarlyMounts); err != nil {
		return err
	}
	if _, failed := boot.LoadModules("/etc/sb-modules", func(f string, a ...any) {}); len(failed) > 0 {
		return fmt.Errorf("modules: %v", failed)
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	spec := ""
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "root="); ok {
			spec = v
		}
	}
	if spec == "" {
		return fmt.Errorf("no root= on the kernel command line")
	}
	var dev string
	deadline := time.Now().Add(20 * time.Second)
	for dev == "" {
		if dev, err = find(spec); err != nil {
			return err
		}
		if dev == "" && time.Now().After(deadline) {
			return fmt.Errorf("root %s: no such ext4 filesystem", spec)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("bootvm: root %s is %s\n", spec, dev)
	if err := os.MkdirAll("/newroot", 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, "/newroot", "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount root %s: %w", dev, err)
	}
	return mount.SwitchRoot("/newroot", "/sbin/sbinit")
}

func stage2() error {
	for _, m := range []struct{ src, dst, fs string }{{"tmpfs", "/run", "tmpfs"}, {"tmpfs", "/tmp", "tmpfs"}} {
		if same, _ := mount.SameFilesystem("/", m.dst); !same {
			continue // moved over by stage 1
		}
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	fstab, err := os.ReadFile("/etc/fstab")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(fstab), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		dev, err := find(f[0])
		if err != nil {
			return err
		}
		if dev == "" {
			return fmt.Errorf("fstab: %s for %s: no such filesystem", f[0], f[1])
		}
		if f[1] == "/" {
			var root, d unix.Stat_t
			if err := unix.Stat("/", &root); err != nil {
				return err
			}
			if err := unix.Stat(dev, &d); err != nil {
				return err
			}
			if root.Dev != d.Rdev {
				return fmt.Errorf("fstab: %s for / is %s, but that is not the root filesystem", f[0], dev)
			}
			fmt.Printf("bootvm: root matches fstab %s\n", f[0])
			continue
		}
		if err := unix.Mount(dev, f[1], f[2], 0, ""); err != nil {
			return fmt.Errorf("fstab: mount %s (%s) on %s: %w", f[0], dev, f[1], err)
		}
		fmt.Printf("bootvm: mounted %s on %s\n", f[0], f[1])
	}
	marker := "(none)"
	if b, err := os.ReadFile("/srv/data/marker"); err == nil {
		marker = strings.TrimSpace(string(b))
	}
	fmt.Printf("bootvm: MARKER %s\n", marker)
	return guestinit.StartAgent("/")
}

// find returns the block device (/dev/vdX or /dev/vdXN) whose ext4
// superblock has the UUID or label that spec (UUID=…, LABEL=…) names, ""
// when none has (yet).
func find(spec string) (string, error) {
	kind, want, ok := strings.Cut(spec, "=")
	if !ok || kind != "UUID" && kind != "LABEL" {
		return "", fmt.Errorf("%q: want UUID=… or LABEL=…", spec)
	}
	devs, _ := filepath.Glob("/sys/class/block/vd*")
	for _, d := range devs {
		p := "/dev/" + filepath.Base(d)
		uuid, label, ok := ext4IDs(p)
		if ok && (kind == "UUID" && strings.EqualFold(uuid, want) || kind == "LABEL" && label == want) {
			return p, nil
		}
	}
	return "", nil
}

// ext4IDs reads the UUID and label from an ext2/3/4 superblock.
func ext4IDs(dev string) (uuid, label string, ok bool) {
	f, err := os.Open(dev)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return "", "", false
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return "", "", false
	}
	u := sb[0x68:0x78]
	uuid = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	label = string(bytes.TrimRight(sb[0x78:0x88], "\x00"))
	return uuid, label, true
}

// reap collects every exited child; it returns never (the VM is shut down
// by its agent's /sbin/shutdown or destroyed).
func reap() {
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil {
			time.Sleep(time.Second)
		}
	}
}
