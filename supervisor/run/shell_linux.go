package run

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// shell mounts what it can and gives the operator a root shell on the
// serial console, chrooted into the userland. It returns when the shell
// exits.
// loadAllFilesystems loads every on-demand module (filesystems, network,
// 9p, device-mapper, fuse, vsock) now, for modes whose programs mount and
// activate by hand (a rescue shell, exec): the userland has no modprobe,
// and their mount(8) does not pass through boot.Stack.
func (s *supervisor) loadAllFilesystems() {
	if n, failed := boot.LoadModules(boot.OnDemandList, s.rep.Logf); n > 0 || len(failed) > 0 {
		s.rep.Logf("loaded %d on-demand modules, %d failed", n, len(failed))
	}
}

func (s *supervisor) shell() {
	if !s.b.root {
		s.rep.Logf("no appliance userland: no shell possible")
		return
	}
	ctx := context.Background()
	s.loadAllFilesystems()
	var notes []string
	if err := s.mountCache(ctx); err != nil {
		notes = append(notes, "cache: "+err.Error())
	} else {
		notes = append(notes, "/cache     the persistent cache volume (borg caches under /cache/borg/<client>)")
	}
	if s.b.jobDisk {
		notes = append(notes, "/job       the job disk (job.toml, secret-* files, result.jsonl, job.log)")
	}
	// The filesystem to mount: the rescue's, or (sb.mode=shell with a
	// backup job) the backup's.
	j := s.b.job
	mount, rescue := "", false
	switch {
	case j != nil && j.Shell != nil:
		mount, rescue = j.Shell.Mount, j.Shell.Rescue
	case j != nil && j.Backup != nil:
		mount = j.Backup.Mount
	}
	switch {
	case rescue && len(j.Disks) > 0:
		if d, err := s.mountSelected(ctx, mount, j.Disks, job.RescueTarget, blockdev.System); err != nil {
			notes = append(notes, job.RescueTarget+": "+err.Error())
		} else {
			notes = append(notes, fmt.Sprintf("%s  the client's filesystem %s, READ-WRITE: chroot-target enters it", job.RescueTarget, d))
		}
		if err := writeChrootTarget(); err != nil {
			notes = append(notes, "chroot-target: "+err.Error())
		}
	case j != nil && len(j.Disks) > 0:
		if d, err := s.mountSelected(ctx, mount, j.Disks, backend.SnapshotDir, blockdev.Snapshot); err != nil {
			notes = append(notes, "snapshot: "+err.Error())
		} else {
			notes = append(notes, fmt.Sprintf("/snapshot  the client's filesystem %s, read-only", d))
		}
	}
	for _, tag := range s.b.tags {
		dir := "/share/" + tag
		if err := s.mount9p(tag, dir); err == nil {
			notes = append(notes, fmt.Sprintf("%-10s host share %q", dir, tag))
		}
	}
	var disks []string
	for ser, d := range s.b.serials {
		disks = append(disks, ser+"=/dev/"+d)
	}
	banner := "\n=== snapshot-backup appliance: rescue shell ===\n" +
		"The appliance userland is mounted at " + Sysroot + " (squashfs + tmpfs overlay);\n" +
		"this shell runs chrooted into it (the supervisor stays PID 1 outside).\n" +
		"Mounted inside the chroot:\n  " + strings.Join(notes, "\n  ") + "\n" +
		"Disks by serial: " + strings.Join(disks, " ") + "\n" +
		"To work on a client system: mount /dev/vdXN /mnt && for d in proc sys dev; do\n" +
		"  mount --bind /$d /mnt/$d; done && chroot /mnt /bin/bash\n" +
		"Exit the shell to unmount everything and power off.\n\n"

	tty, err := os.OpenFile(shellTTY, os.O_RDWR, 0)
	if err != nil {
		s.rep.Logf("open %s: %v", shellTTY, err)
		return
	}
	defer tty.Close()
	fmt.Fprint(tty, banner)
	cmd := exec.Command("/bin/bash", "-l")
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=vt100", "PS1=appliance# "}
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: Sysroot, Setsid: true, Setctty: true, Ctty: 0}
	if s.reaper != nil {
		s.reaper.Begin()
		defer s.reaper.End()
	}
	if err := cmd.Run(); err != nil {
		s.rep.Logf("shell: %v", err)
	}
	// Everything the shell left running goes before unmounting.
	_ = unix.Kill(-1, unix.SIGKILL)
}

// chrootTarget is the rescue shell's helper: it runs a command (default a
// shell) inside the client's system with /dev, /proc, /sys and /run bound,
// and removes the binds afterwards so the client's filesystem unmounts
// cleanly at power-off. The client's filesystem is mounted without noexec
// for it (blockdev.System): the operator enters the client's system on
// purpose.
const chrootTarget = `#!/bin/sh
# chroot-target [COMMAND [ARG...]]: run COMMAND (default /bin/sh) chrooted
# into the client's system at ` + job.RescueTarget + `.
t=` + job.RescueTarget + `
bound=""
for d in dev proc sys run; do
	# The client's /dev may be a symlink to anywhere in the appliance:
	# mount --bind would follow it.
	[ -d "$t/$d" ] && [ ! -L "$t/$d" ] || continue
	mountpoint -q "$t/$d" && continue
	mount --bind "/$d" "$t/$d" && bound="$t/$d $bound"
done
[ $# -gt 0 ] || set -- /bin/sh
chroot "$t" "$@"
rc=$?
for m in $bound; do umount "$m"; done
exit $rc
`

func writeChrootTarget() error {
	p := filepath.Join(Sysroot, "usr/local/sbin/chroot-target")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(chrootTarget), 0o755)
}
