package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/layout"
)

// recoverClient is the appliance's part of an in-place recovery: the
// client's own disks are attached writable. Its filesystems (as
// backup.mount describes them) are emptied, or made anew with MkFS, and
// receive the backup; they then get the UUIDs and labels the restored
// fstab names, end_recovery runs chrooted into the restored tree, and
// everything is unmounted.
func (s *supervisor) recoverClient(ctx context.Context, j *job.Job) (job.Done, error) {
	done := job.Done{Archive: j.Restore.Archive}
	if len(j.Disks) == 0 {
		return done, fmt.Errorf("recovery job has no client disks")
	}
	end := s.rep.Step("find client disks")
	devs, err := s.devices(ctx, j.Disks)
	if err := end(err); err != nil {
		return done, err
	}
	// The repository, the archive and the plan are checked before a disk
	// is touched: a typo in --archive, a wrong passphrase, a backup that
	// holds nothing or a filesystem the VM lacks must not cost the blank
	// system.
	r, err := s.openRepo(ctx, j)
	if err != nil {
		return done, err
	}
	end = s.rep.Step("find the archive")
	snaps, err := s.checkArchive(ctx, r)
	if err == nil {
		err = s.refuseEmpty(ctx, r, snaps)
	}
	if err := end(err); err != nil {
		return done, err
	}
	end = s.rep.Step("find client filesystems")
	plan, lo, err := s.recoveryPlan(ctx, r, restoredBackup(j, snaps), devs)
	if err := end(err); err != nil {
		return done, err
	}
	if lo != nil && len(lo.blank) > 0 {
		end = s.rep.Step("lay out blank disks")
		if plan, err = s.layOutBlank(ctx, j, lo); err != nil {
			return done, end(err)
		}
		end(nil)
	}
	mkfs := false
	for _, p := range plan {
		s.rep.Logf("client filesystem %s on %s", p.Dev, p.Where)
		mkfs = mkfs || p.MkFS
	}
	if mkfs {
		end = s.rep.Step("create filesystems")
		if err := end(s.mkfsPlan(ctx, plan)); err != nil {
			return done, err
		}
	}
	mountpoint := Sysroot + backend.RestoreDir
	end = s.rep.Step("mount client filesystems")
	if err := end(s.mountRecoverPlan(plan, mountpoint)); err != nil {
		return done, err
	}
	if !j.Restore.MkFS {
		end = s.rep.Step("empty client filesystems")
		if err := end(emptyTree(mountpoint, plan)); err != nil {
			return done, err
		}
	}
	end = s.rep.Step("restore")
	r.req.Archive, r.req.Paths = j.Restore.Archive, j.Restore.Paths
	err = restoreArchive(ctx, r, &done)
	if err := end(err); err != nil {
		return done, err
	}
	end = s.rep.Step("set filesystem UUIDs and labels")
	if plan, err = s.fixIDs(ctx, plan, mountpoint); err != nil {
		return done, end(err)
	}
	end(nil)
	if lo != nil && lo.rec.BootLoader != nil {
		// A boot loader that cannot be put back leaves the data restored:
		// the recovery ends with a warning, not a failure.
		end = s.rep.Step("reinstall the boot loader")
		if err := s.reinstallBootLoader(ctx, lo); err != nil {
			s.rep.Logf("warning: boot loader: %v", err)
			done.Warning = joinWarning(done.Warning, "boot loader: "+err.Error()+"; the VM may not boot from its own disk (hostctl rescue CLIENT to repair)")
		}
		end(nil)
	}
	if h := j.Restore.EndRecovery; h != nil && h.Command != "" {
		end = s.rep.Step("end_recovery")
		if err := end(s.endRecovery(ctx, *h, mountpoint)); err != nil {
			return done, err
		}
	}
	end = s.rep.Step("unmount client filesystems")
	unix.Sync()
	return done, end(s.stack.Unmount(mountpoint))
}

// recoveryPlan maps the backup's mount points to the client's devices:
// by the backup's VM record where it has one, else by the VM's own fstab
// (backup.mount), where an entry that is not there stops the recovery
// rather than leave its files to the filesystem above it.
func (s *supervisor) recoveryPlan(ctx context.Context, r repo, sn *backend.Snapshot, devs []blockdev.Device) ([]layout.Planned, *layOut, error) {
	j := r.req.Job
	plan, lo, err := s.recordedPlan(ctx, r, sn, devs)
	if lo != nil {
		if err == nil && j.Restore.Archive == "" {
			j.Restore.Archive = sn.ID // the backup whose record this is
		}
		return plan, lo, err
	}
	id := j.Restore.Archive
	if sn != nil {
		id = sn.ID
	}
	s.rep.Logf("backup %s has no VM record (older than recorded layouts): its mount points are found by the VM's fstab", id)
	lay := s.layout()
	lay.RequireAll = true
	plan, err = lay.PlanTree(&s.stack, devs, j.Restore.Tree)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (does the blank VM have the backed-up disk layout? --mkfs recreates damaged filesystems)", err)
	}
	for i := range plan {
		plan[i].MkFS = j.Restore.MkFS
	}
	return plan, nil, nil
}

// checkArchive lists the repository (which proves access and passphrase)
// and finds the archive to restore in it, or (--time) picks the newest
// backup at or before Restore.Time; it returns the listing. Duplicity's
// archive is a time specification that only duplicity itself resolves.
func (s *supervisor) checkArchive(ctx context.Context, r repo) ([]backend.Snapshot, error) {
	j := r.req.Job
	snaps, err := r.Snapshots(ctx, r.req)
	if err != nil {
		return nil, fmt.Errorf("list the repository %s: %w", j.Repo.Target, err)
	}
	if len(snaps) == 0 {
		return nil, fmt.Errorf("the repository %s holds no backup", j.Repo.Target)
	}
	if j.Restore.Archive == "" && !j.Restore.Time.IsZero() {
		if j.Restore.Archive, err = s.pickAt(snaps, j.Restore.Time); err != nil {
			return nil, err
		}
		return snaps, nil
	}
	want := j.Restore.Archive
	if want == "" || j.Repo.Backend == "duplicity" {
		return snaps, nil
	}
	if restoredBackup(j, snaps) != nil {
		return snaps, nil
	}
	var ids []string
	for _, sn := range snaps {
		ids = append(ids, sn.ID)
	}
	if len(ids) > 5 {
		ids = ids[len(ids)-5:]
	}
	return nil, fmt.Errorf("archive %q is not in the repository %s (latest: %s; hostctl list %s shows all)", want, j.Repo.Target, strings.Join(ids, ", "), j.Client)
}

// refuseEmpty fails when the backup about to be restored holds no file: an
// in-place recovery empties the client's filesystems first, and a backup of
// a path that did not exist (or of an empty tree) would leave them empty.
// borg's listing counts the files; restic's and duplicity's entries of the
// backup are listed (metadata only, no data is read).
func (s *supervisor) refuseEmpty(ctx context.Context, r repo, snaps []backend.Snapshot) error {
	j := r.req.Job
	id, n := j.Restore.Archive, int64(-1)
	if sn := restoredBackup(j, snaps); sn != nil {
		id, n = sn.ID, sn.Files
	}
	if n < 0 {
		entries, err := r.Entries(ctx, r.req, id)
		if err != nil {
			return fmt.Errorf("list backup %s: %w", id, err)
		}
		n = filesIn(entries)
	}
	if n == 0 {
		return fmt.Errorf("backup %s holds no file: restoring it would leave the client's filesystems empty; nothing was changed (choose another with --archive or --time: hostctl list %s)", id, j.Client)
	}
	s.rep.Logf("backup %s holds %d file(s)", id, n)
	return nil
}

// mkfsPlan makes a fresh filesystem on each planned device marked MkFS
// (once per device), of its type and with its UUID and label.
func (s *supervisor) mkfsPlan(ctx context.Context, plan []layout.Planned) error {
	seen := map[string]bool{}
	for _, p := range plan {
		if !p.MkFS {
			continue
		}
		if p.Subvol != "" {
			return fmt.Errorf("%s on %s is btrfs subvolume %q: --mkfs cannot recreate subvolumes; create them (hostctl rescue) and restore without --mkfs", p.Dev.Name(), p.Where, p.Subvol)
		}
		if seen[p.Dev.Dev] {
			continue
		}
		seen[p.Dev.Dev] = true
		argv, err := mkfsArgv(p.Dev)
		if err != nil {
			return err
		}
		s.rep.Logf("creating %s on %s", p.Dev.FSType, p.Dev.Name())
		if _, err := s.runner.Run(ctx, chroot.Cmd{Argv: argv}); err != nil {
			return fmt.Errorf("create filesystem on %s: %w", p.Dev.Name(), err)
		}
	}
	return nil
}

// mountRecoverPlan mounts the planned tree read-write, creating missing
// mount points (a fresh filesystem has none), as the client's own system:
// end_recovery runs programs from it.
func (s *supervisor) mountRecoverPlan(plan []layout.Planned, mountpoint string) error {
	if _, err := s.layout().MountPlan(&s.stack, plan, mountpoint, blockdev.System); err != nil {
		return err
	}
	return s.checkConfined(strings.TrimPrefix(mountpoint, Sysroot), blockdev.System)
}

// emptyTree removes everything the blank system had on the mounted tree,
// except lost+found and the mount points of the other filesystems (and
// the directories leading to them): the restored tree is the backup's,
// with nothing of the fresh install mixed in.
func emptyTree(mountpoint string, plan []layout.Planned) error {
	keep := map[string]bool{}
	for _, p := range plan {
		for d := path.Clean(p.Where); d != "/"; d = path.Dir(d) {
			keep[d] = true
		}
	}
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := os.ReadDir(filepath.Join(mountpoint, rel))
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := path.Join(rel, e.Name())
			switch {
			case e.Name() == "lost+found":
			case keep[p] && e.IsDir(): // a symlink is removed, never entered
				if err := walk(p); err != nil {
					return err
				}
			default:
				if err := os.RemoveAll(filepath.Join(mountpoint, p)); err != nil {
					return fmt.Errorf("empty %s: %w", p, err)
				}
			}
		}
		return nil
	}
	return walk("/")
}

// fixIDs gives the filesystems the UUIDs and labels that the restored
// /etc/fstab names: the tree is unmounted, changed, and mounted again by
// what the restored fstab says, which proves that the restored system
// will find its disks. It returns the plan with the devices as they are now.
func (s *supervisor) fixIDs(ctx context.Context, plan []layout.Planned, mountpoint string) ([]layout.Planned, error) {
	// The restored tree is the guest's: its fstab is read as the restored
	// system would read it, never through a symlink out of the tree.
	data, err := boot.ReadFileInRoot(mountpoint, "/etc/fstab", layout.MaxFstab)
	if errors.Is(err, os.ErrNotExist) {
		s.rep.Logf("the restored tree has no /etc/fstab: filesystem UUIDs and labels left as they are")
		return plan, nil
	}
	if err != nil {
		return plan, fmt.Errorf("restored /etc/fstab: %w", err)
	}
	entries, err := blockdev.ParseFstab(string(data))
	if err != nil {
		return plan, fmt.Errorf("restored /etc/fstab: %w", err)
	}
	mounted := map[string]blockdev.Device{}
	for _, p := range plan {
		mounted[path.Clean(p.Where)] = p.Dev
	}
	changes, err := blockdev.WantedIDs(entries, mounted)
	if err != nil {
		return plan, fmt.Errorf("restored /etc/fstab: %w", err)
	}
	if len(changes) == 0 {
		s.rep.Logf("the restored fstab finds every filesystem as it is")
		return plan, nil
	}
	unix.Sync()
	if err := s.stack.Unmount(mountpoint); err != nil {
		return plan, err
	}
	for _, c := range changes {
		cmds, err := setIDArgvs(c)
		if err != nil {
			return plan, err
		}
		s.rep.Logf("setting %s", c)
		for _, argv := range cmds {
			_, err := s.runner.Run(ctx, chroot.Cmd{Argv: argv})
			if argv[0] == "e2fsck" && execx.ExitCode(err) == 1 {
				err = nil // errors corrected
			}
			if err != nil {
				return plan, fmt.Errorf("set UUID/label of %s: %w", c.Dev.Name(), err)
			}
		}
	}
	// Probe again and mount by the names the restored fstab uses.
	for i, p := range plan {
		info, err := s.layout().Probe(ctx, p.Dev.Dev)
		if err != nil {
			return plan, err
		}
		p.Dev.UUID, p.Dev.Label = info["UUID"], info["LABEL"]
		plan[i] = p
	}
	all := make([]blockdev.Device, 0, len(plan))
	for _, p := range plan {
		all = append(all, p.Dev)
	}
	for _, e := range entries {
		d, ok := mounted[path.Clean(e.File)]
		if !ok {
			continue
		}
		if sp, err := blockdev.ParseSpec(e.Spec); err == nil && (sp.Kind == "uuid" || sp.Kind == "label") {
			got, err := blockdev.Select(e.Spec, all)
			if err != nil || got.Dev != d.Dev {
				return plan, fmt.Errorf("restored fstab line %d (%s on %s) does not find %s after the change: %v", e.Line, e.Spec, e.File, d.Name(), err)
			}
		}
	}
	return plan, s.mountRecoverPlan(plan, mountpoint)
}

// endRecovery runs the end_recovery hook chrooted into the restored tree
// with /dev, /proc and /sys bound; its output goes to the job log.
func (s *supervisor) endRecovery(ctx context.Context, h job.Hook, mountpoint string) error {
	for _, d := range []string{"dev", "proc", "sys"} {
		// The restored tree's /dev may be a symlink to anywhere: the
		// binds are made beneath the tree without following one.
		m := boot.Mount{Source: "/" + d, Mountpoint: filepath.Join(mountpoint, d), Root: mountpoint, MakeDirs: true, FSType: "none", Flags: unix.MS_BIND}
		if d == "dev" {
			m.Flags |= unix.MS_REC
			m.Lazy = true
		}
		if err := s.stack.Mount(m); err != nil {
			return err
		}
	}
	defer s.stack.Unmount(filepath.Join(mountpoint, "dev"))
	limit := h.TimeLimit.Duration
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	hctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var stderr bytes.Buffer
	r := &chroot.Runner{Root: mountpoint, AcrossMounts: true, Tracker: s.reaper}
	_, err := r.Run(hctx, chroot.Cmd{Argv: []string{"/bin/sh", "-c", h.Command}, Dir: "/", Env: h.Env,
		Stdout: s.rep.LogWriter(), Stderr: io.MultiWriter(s.rep.LogWriter(), &stderr)})
	if hctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("hook end_recovery: still running after %s: stopped", limit)
	}
	if code := execx.ExitCode(err); code > 0 {
		msg := fmt.Sprintf("hook end_recovery: exit code %d", code)
		if l := lastLine(stderr.String()); l != "" {
			msg += ": " + l
		}
		return errors.New(msg)
	}
	if err != nil {
		return fmt.Errorf("hook end_recovery: %w", err)
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
