package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/report"
)

// booted is what boot brought up, and everything later steps know of the
// machine besides their own mounts: it does not change after boot returns.
type booted struct {
	cmdline boot.Cmdline
	// serials maps the attached disks' virtio serials to their kernel
	// names (sb-cache → vdy): disks are found by serial, never by order.
	serials map[string]string
	// jobDisk says the job disk is mounted at jobDir and the result and
	// log are written there; job is its job (nil without one).
	jobDisk bool
	job     *job.Job
	// root says the userland is mounted at Sysroot (the shell needs it).
	root bool
	// tags are the 9p shares the host offers (named in mount errors and
	// mounted by the shell).
	tags  []string
	ready time.Duration // uptime when ready
}

// shellWanted: sb.mode=shell, mode shell in the job, or no job disk when
// the host did not say it booted us for a job.
func (b booted) shellWanted() bool {
	return b.cmdline.Shell() || !b.jobDisk && !b.cmdline.JobExpected() || b.job != nil && b.job.Mode == job.ModeShell
}

// own says whether the block device /dev/… is one of the appliance's own
// disks (its image, the job disk, the cache) or a partition of one: every
// other block device is a client's.
func (b booted) own(source string) bool {
	for _, serial := range []string{job.SerialAppliance, job.SerialJob, job.SerialCache} {
		d, ok := b.serials[serial]
		if !ok {
			continue
		}
		if source == "/dev/"+d {
			return true
		}
		for _, p := range boot.Partitions(d) {
			if source == "/dev/"+p {
				return true
			}
		}
	}
	return false
}

// boot brings the appliance up to "ready": job read, userland mounted. It
// returns what it brought up so far when it fails, for the shell and for
// the done record.
func (s *supervisor) boot() (booted, error) {
	var b booted
	if err := s.stack.MountAll(boot.EarlyMounts); err != nil {
		return b, fmt.Errorf("early mounts: %w", err)
	}
	s.early = len(s.stack.Mounted())
	if c, err := os.OpenFile(consoleTT, os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		s.rep = report.New(c, nil)
	}
	s.reaper = boot.NewReaper()
	if data, err := os.ReadFile("/proc/cmdline"); err == nil {
		b.cmdline = boot.ParseCmdline(string(data))
	}
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
	// The mark is logged so that the binary holds it: the image builder
	// reads the job format from it (job.FormatMark).
	s.rep.Logf("supervisor starting (kernel up %v, %s)", uptime(), strings.Trim(job.FormatMark, "\x00"))

	end := s.rep.Step("load modules")
	n, failed := boot.LoadModules(boot.ModuleList, s.rep.Logf)
	s.rep.Logf("loaded %d modules, %d failed", n, len(failed))
	end(nil)
	s.stack.Logf = s.rep.Logf // xfs, btrfs: at their first mount
	if p := progressPort(); p != "" {
		if w, err := openPort(p); err == nil {
			s.rep.SetPort(w)
		} else {
			s.rep.Logf("progress port %s: %v", p, err)
		}
	}

	end = s.rep.Step("find disks")
	app, err := boot.WaitSerial(context.Background(), job.SerialAppliance, applianceWait)
	if err != nil {
		return b, end(err)
	}
	if _, err := boot.WaitSerial(context.Background(), job.SerialJob, jobDiskWait); err != nil && !b.cmdline.Shell() {
		s.rep.Logf("no job disk: %v", err)
	}
	b.serials, _ = boot.Serials(boot.SysBlock)
	s.rep.Logf("disks by serial: %v", b.serials)
	b.tags = s.ninePTags()
	end(nil)

	if d, ok := b.serials[job.SerialJob]; ok {
		end := s.rep.Step("mount job disk")
		b.job, b.jobDisk, err = s.mountJobDisk(d, b.cmdline.Shell())
		if err := end(err); err != nil {
			return b, err
		}
	}
	if err := s.rep.Step("mount appliance root")(s.mountRoot(app)); err != nil {
		return b, err
	}
	b.root = true
	s.runner = &chroot.Runner{Root: Sysroot, Tracker: s.reaper}
	if b.jobDisk {
		if err := s.bindJob(); err != nil {
			return b, err
		}
	}
	b.ready = uptime()
	s.rep.Logf("ready after %v", b.ready)
	return b, nil
}

// mountJobDisk mounts the job disk and starts writing the result there
// (attached), then reads the job: none is fine for a shell.
func (s *supervisor) mountJobDisk(dev string, shell bool) (j *job.Job, attached bool, err error) {
	if err := s.stack.Mount(boot.Mount{Source: "/dev/" + dev, Mountpoint: jobDir, FSType: "vfat",
		Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Data: "umask=077,flush"}); err != nil {
		return nil, false, err
	}
	res, err := os.OpenFile(filepath.Join(jobDir, job.FileResult), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create %s: %w", job.FileResult, err)
	}
	lg, err := os.OpenFile(filepath.Join(jobDir, job.FileLog), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create %s: %w", job.FileLog, err)
	}
	if err := s.rep.Attach(res, lg); err != nil {
		return nil, false, err
	}
	data, err := os.ReadFile(filepath.Join(jobDir, job.FileJob))
	if errors.Is(err, os.ErrNotExist) && shell {
		return nil, true, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("read job: %w", err)
	}
	j, err = job.Parse(data)
	if err != nil {
		return nil, true, err
	}
	s.rep.Logf("job: mode=%s client=%s run=%s", j.Mode, j.Client, j.RunID)
	return j, true, nil
}

// rootMounts is the userland: squashfs (partition 2 of the appliance disk)
// read-only, a tmpfs for writes, their overlay at Sysroot, and the kernel
// filesystems bound into it. The supervisor stays in the initramfs and runs
// tools chrooted into Sysroot, so it never loses sight of its own mounts.
func rootMounts(squashDev string) []boot.Mount {
	bind := func(p string, rec bool) boot.Mount {
		m := boot.Mount{Source: p, Mountpoint: Sysroot + p, FSType: "none", Flags: unix.MS_BIND}
		if rec {
			m.Flags |= unix.MS_REC
			m.Lazy = true
		}
		return m
	}
	return []boot.Mount{
		{Source: squashDev, Mountpoint: roDir, FSType: "squashfs", Flags: unix.MS_RDONLY},
		{Source: "tmpfs", Mountpoint: rwDir, FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"},
		{Source: "overlay", Mountpoint: Sysroot, FSType: "overlay",
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
		if m.Mountpoint == rwDir {
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
	return s.stack.Mount(boot.Mount{Source: jobDir, Mountpoint: Sysroot + "/job", FSType: "none", Flags: unix.MS_BIND})
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
