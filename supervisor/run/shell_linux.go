package run

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"golang.org/x/sys/unix"
)

// shell mounts what it can and gives the operator a root shell on the
// serial console, chrooted into the userland. It returns when the shell
// exits.
func (s *supervisor) shell() {
	if !s.rootOK {
		s.rep.Logf("no appliance userland: no shell possible")
		return
	}
	ctx := context.Background()
	var notes []string
	if err := s.mountCache(ctx); err != nil {
		notes = append(notes, "cache: "+err.Error())
	} else {
		notes = append(notes, "/cache     the persistent cache volume (borg caches under /cache/borg/<client>)")
	}
	if s.jobOK {
		notes = append(notes, "/job       the job disk (job.toml, secret-* files, result.jsonl, job.log)")
	}
	if s.job != nil && len(s.job.Disks) > 0 {
		if d, err := s.mountSelected(ctx, s.job.Backup.Mount, s.job.Disks, backend.SnapshotDir, false); err != nil {
			notes = append(notes, "snapshot: "+err.Error())
		} else {
			notes = append(notes, fmt.Sprintf("/snapshot  the client's filesystem %s, read-only", d))
		}
	}
	for _, tag := range ninePTags() {
		dir := "/share/" + tag
		if err := s.mount9p(tag, dir); err == nil {
			notes = append(notes, fmt.Sprintf("%-10s host share %q", dir, tag))
		}
	}
	var disks []string
	for ser, d := range s.serials {
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
