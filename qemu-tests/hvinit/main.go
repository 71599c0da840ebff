// Command hvinit is the initramfs init of the hypervisor test VM: a Debian
// 12 host whose userland (qemu-tests/hvinit/packages.txt, built like the
// appliance's rootfs and cached by content hash) is a read-only squashfs
// disk. hvinit loads the modules it needs, mounts that squashfs under an
// overlay whose writable layer is the VM's scratch disk (ext4, made by the
// test), copies the files of /seed (the test's ssh key, network and host
// name) into the new root and hands over to systemd.
//
// Both disks are found by their virtio serials (sb-hv-root, sb-hv-scratch),
// not by their order. Console lines: "hvinit: …" while it works,
// "hvinit: FAIL …" on an error (the VM then idles so the test can read the
// console).
package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

const (
	rootSerial    = "sb-hv-root"
	scratchSerial = "sb-hv-scratch"
	newRoot       = "/newroot"
)

func main() {
	if err := setup(); err != nil {
		fmt.Println("hvinit: FAIL", err)
		for {
			time.Sleep(time.Hour)
		}
	}
	fmt.Println("hvinit: starting systemd")
	if err := mount.SwitchRoot(newRoot, "/sbin/init"); err != nil {
		fmt.Println("hvinit: FAIL switch root:", err)
		for {
			time.Sleep(time.Hour)
		}
	}
}

func setup() error {
	// What PID 1 needs, as the appliance mounts it; switch_root moves it
	// into the new root.
	if err := (&boot.Stack{}).MountAll(boot.EarlyMounts); err != nil {
		return err
	}
	if _, failed := boot.LoadModules(boot.ModuleList, func(f string, a ...any) { fmt.Printf("hvinit: "+f+"\n", a...) }); len(failed) > 0 {
		return fmt.Errorf("modules: %v", failed)
	}
	ctx := context.Background()
	root, err := boot.WaitSerial(ctx, rootSerial, 30*time.Second)
	if err != nil {
		return err
	}
	scratch, err := boot.WaitSerial(ctx, scratchSerial, 30*time.Second)
	if err != nil {
		return err
	}
	for _, m := range []struct {
		src, dst, fs string
		flags        uintptr
		data         string
	}{
		{"/dev/" + root, "/lower", "squashfs", unix.MS_RDONLY, ""},
		{"/dev/" + scratch, "/scratch", "ext4", 0, ""},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fs, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.src, m.fs, m.dst, err)
		}
	}
	for _, d := range []string{"/scratch/upper", "/scratch/work", newRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// A scratch disk used before (a reboot of the VM) keeps its upper
	// layer: what the VM wrote survives, as on a host's disk.
	opts := "lowerdir=/lower,upperdir=/scratch/upper,workdir=/scratch/work"
	if err := unix.Mount("overlay", newRoot, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay %s: %w", opts, err)
	}
	fmt.Printf("hvinit: root %s (squashfs) under an overlay on %s\n", root, scratch)
	return copySeed("/seed", newRoot)
}

// copySeed copies the regular files below src into dst at the same
// relative paths and modes (directories 0755, or 0700 for .ssh).
func copySeed(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			mode := os.FileMode(0o755)
			if d.Name() == ".ssh" {
				mode = 0o700
			}
			if err := os.MkdirAll(target, mode); err != nil {
				return err
			}
			return os.Chmod(target, mode)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		// Remove first: the lower layer may hold a symlink there
		// (/etc/resolv.conf), which must be replaced, not followed.
		if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := os.WriteFile(target, data, fi.Mode().Perm()); err != nil {
			return err
		}
		return os.Chmod(target, fi.Mode().Perm())
	})
}
