package run

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// rootMounts is the userland: squashfs (partition 2 of the appliance disk)
// read-only, a tmpfs for writes, their overlay at Sysroot, and the kernel
// filesystems bound into it. The supervisor stays in the initramfs and runs
// tools chrooted into Sysroot, so it never loses sight of its own mounts.
func rootMounts(squashDev string) []boot.Mount {
	bind := func(p string, rec bool) boot.Mount {
		m := boot.Mount{Source: p, Target: Sysroot + p, FSType: "none", Flags: unix.MS_BIND}
		if rec {
			m.Flags |= unix.MS_REC
			m.Lazy = true
		}
		return m
	}
	return []boot.Mount{
		{Source: squashDev, Target: roDir, FSType: "squashfs", Flags: unix.MS_RDONLY},
		{Source: "tmpfs", Target: rwDir, FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"},
		{Source: "overlay", Target: Sysroot, FSType: "overlay",
			Data: "lowerdir=" + roDir + ",upperdir=" + rwDir + "/upper,workdir=" + rwDir + "/work"},
		bind("/proc", false),
		bind("/sys", false),
		bind("/dev", true),
		bind("/run", true),
	}
}

func (s *supervisor) mountRoot(appDisk string) error {
	part := appDisk + "2"
	if err := boot.WaitPath("/dev/"+part, 5*time.Second); err != nil {
		return fmt.Errorf("appliance root partition: %w", err)
	}
	for _, m := range rootMounts("/dev/" + part) {
		if err := s.stack.Mount(m); err != nil {
			return err
		}
		if m.Target == rwDir {
			for _, d := range []string{"upper", "work"} {
				if err := os.MkdirAll(filepath.Join(rwDir, d), 0o755); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// bindJob makes the job disk visible at /job in the userland (shell users
// and tools reading secrets by path).
func (s *supervisor) bindJob() error {
	return s.stack.Mount(boot.Mount{Source: jobDir, Target: Sysroot + "/job", FSType: "none", Flags: unix.MS_BIND})
}

// progressPort finds the device of the named virtio-serial port. Without
// udev there is no /dev/virtio-ports symlink, so sysfs is asked.
func progressPort() string {
	name := job.VirtioPortProgress
	if _, err := os.Stat("/dev/virtio-ports/" + name); err == nil {
		return "/dev/virtio-ports/" + name
	}
	ms, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, m := range ms {
		if b, err := os.ReadFile(m); err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(m))
		}
	}
	return ""
}

// openPort opens the progress port behind a queue that drops records when
// the host is not reading: the result file is the authority, the port is
// only for live display and must never stall the job.
func openPort(path string) (*portWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	w := &portWriter{ch: make(chan []byte, 256)}
	go func() {
		for b := range w.ch {
			_, _ = f.Write(b)
		}
	}()
	return w, nil
}

type portWriter struct{ ch chan []byte }

func (w *portWriter) Write(p []byte) (int, error) {
	select {
	case w.ch <- append([]byte(nil), p...):
	default:
	}
	return len(p), nil
}
