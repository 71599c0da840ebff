package run

import (
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/layout"
)

// recordVM writes the VM record of the mounted snapshot tree to
// vmrecord.Dir: the disks with their partition tables, and every
// filesystem of the plan with the options of the tree's own fstab. It
// returns the directory for the backends, or "" when the record could not
// be made (logged: the backup goes on, and reports a warning).
func (s *supervisor) recordVM(ctx context.Context, j *job.Job, devs []blockdev.Device, plan []layout.Planned) (string, error) {
	var fstab []blockdev.FstabEntry
	b, err := boot.ReadFileInRoot(Sysroot+backend.SnapshotDir, "/etc/fstab", layout.MaxFstab)
	switch {
	case err == nil:
		// A guest's fstab that does not parse was not used for the plan
		// (backup.mount names the filesystems): no options, then.
		fstab, _ = blockdev.ParseFstab(string(b))
	case !errors.Is(err, os.ErrNotExist):
		s.rep.Logf("VM record: the snapshot's /etc/fstab: %v (recorded without mount options)", err)
	}
	rec := layout.Record(j.Client, devs, plan, fstab)
	rec.Domain = j.Backup.Domain
	vgs, err := s.layout().VGMetadata(ctx, devs, Sysroot+vmrecord.Dir+"-lvm", vmrecord.MaxTable)
	if err != nil {
		return "", err
	}
	for _, name := range slices.Sorted(maps.Keys(vgs)) {
		rec.VolumeGroups = append(rec.VolumeGroups, vmrecord.VolumeGroup{Name: name, Metadata: strings.ToValidUTF8(vgs[name], "?")})
	}
	rec.BootLoader = s.bootLoader(devs, plan)
	for i, d := range rec.Disks {
		for _, dev := range devs {
			if dev.ClientDev == d.Dev && dev.Part == 0 && dev.LV == "" {
				rec.Disks[i].PartitionTable = s.partitionTable(ctx, dev.Dev)
			}
		}
	}
	data, err := rec.Marshal()
	if err != nil {
		return "", err
	}
	dir := Sysroot + vmrecord.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, vmrecord.File), data, 0o600); err != nil {
		return "", err
	}
	if rec.Domain != "" {
		if err := os.WriteFile(filepath.Join(dir, vmrecord.DomainFile), []byte(rec.Domain), 0o600); err != nil {
			return "", err
		}
	}
	s.vmSummary = rec.Summary()
	s.rep.Logf("VM record: %s", s.vmSummary)
	return vmrecord.Dir, nil
}

// grubBoot is where GRUB's boot.img (the MBR boot code grub-install
// writes) carries its name.
const grubBoot = 0x180

// bootLoader finds the backup's boot loader: GRUB's boot code in a disk's
// first sector (grub-pc), or GRUB's EFI modules in the tree (grub-efi, on
// the disk of the filesystem at /boot/efi). The tree is the guest's: it is
// looked into without following a symlink out of it.
func (s *supervisor) bootLoader(devs []blockdev.Device, plan []layout.Planned) *vmrecord.BootLoader {
	for _, d := range devs {
		if d.Part != 0 || d.LV != "" {
			continue
		}
		f, err := os.Open("/dev/" + d.Dev)
		if err != nil {
			continue
		}
		buf := make([]byte, 512)
		_, err = io.ReadFull(f, buf)
		f.Close()
		if err == nil && string(buf[grubBoot:grubBoot+5]) == "GRUB " {
			return &vmrecord.BootLoader{Kind: "grub-pc", Disk: d.ClientDev}
		}
	}
	tree := Sysroot + backend.SnapshotDir
	for _, dir := range []string{"/boot/grub/x86_64-efi", "/boot/efi/EFI"} {
		f, err := boot.OpenInRoot(tree, dir, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			continue
		}
		f.Close()
		b := &vmrecord.BootLoader{Kind: "grub-efi"}
		for _, p := range plan {
			if p.Where == "/boot/efi" && p.Dev.LV == "" {
				b.Disk = p.Dev.ClientDev
			}
		}
		return b
	}
	return nil
}

// partitionTable is sfdisk --dump of the appliance's disk kdev, "" for a
// disk without a partition table (a filesystem or a PV on the whole disk).
func (s *supervisor) partitionTable(ctx context.Context, kdev string) string {
	out, err := s.runner.Run(ctx, chroot.Cmd{Argv: []string{"sfdisk", "--dump", "/dev/" + kdev}})
	if err != nil {
		return ""
	}
	return strings.ToValidUTF8(string(out), "?")
}

// recordedPlan reads the VM record of the backup a recovery restores and
// plans the tree by it (layout.PlanRecorded). ok is false for a backup
// without a record: the caller plans by the VM's own fstab.
func (s *supervisor) recordedPlan(ctx context.Context, r repo, sn *backend.Snapshot, devs []blockdev.Device) ([]layout.Planned, bool, error) {
	rd, isRecorder := r.Backend.(backend.Recorder)
	if sn == nil || sn.VM == "" || !isRecorder {
		return nil, false, nil
	}
	data, err := rd.ReadVM(ctx, r.req, sn.VM)
	if err != nil {
		return nil, true, errors.New("read the backup's VM record " + sn.VM + ": " + err.Error())
	}
	rec, err := vmrecord.Parse(data)
	if err != nil {
		return nil, true, err
	}
	s.rep.Logf("backup %s: %s", sn.ID, rec.Summary())
	plan, err := layout.PlanRecorded(devs, rec, r.req.Job.Restore.MkFS)
	return plan, true, err
}
