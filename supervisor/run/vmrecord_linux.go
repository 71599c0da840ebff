package run

import (
	"context"
	"errors"
	"fmt"
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
// vmrecord.Dir: the disks with their partition tables, every filesystem of
// the plan with the options of the tree's own fstab, the swap areas, the
// guest volume groups' metadata, the boot loader and the domain's
// definition. It returns the directory for the backends, or "" when the
// record could not be made (logged: the backup goes on, and reports a
// warning).
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
	// Without the metadata a recovery still maps filesystems by the
	// record; only laying out blank disks needs it.
	if rec.VolumeGroups, err = s.layout().VGMetadata(ctx, devs, vmrecord.Dir+"-lvm", vmrecord.MaxTable); err != nil {
		s.rep.Logf("VM record: recorded without the guest LVM metadata: %v", err)
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

// layOut is a recovery's VM record, the client disks with nothing on them
// (laid out by the record) and the client's devices as the plan found
// them.
type layOut struct {
	rec   *vmrecord.Record
	blank map[string]bool
	devs  []blockdev.Device // the client's devices as the plan found them
}

// recordedPlan reads the VM record of the backup a recovery restores and
// plans the tree by it (layout.PlanRecorded), leaving out what lies on
// blank disks (layOutBlank plans them once laid out). lo holds the record
// and the blank disks; it is nil for a backup without a record: the
// caller plans by the VM's own fstab.
func (s *supervisor) recordedPlan(ctx context.Context, r repo, sn *backend.Snapshot, devs []blockdev.Device) (plan []layout.Planned, lo *layOut, err error) {
	if sn == nil || sn.VM == "" {
		return nil, nil, nil
	}
	lo = &layOut{devs: devs}
	if _, lo.rec, err = s.readRecord(ctx, r, sn); err != nil {
		return nil, lo, err
	}
	lo.blank = blankDisks(lo.rec, devs)
	plan, err = layout.PlanRecorded(devs, lo.rec, layout.RecordedOpts{MkFS: r.req.Job.Restore.MkFS, Blank: lo.blank})
	switch {
	case err != nil:
	case len(lo.blank) == 0:
		s.rep.Logf("the VM's disks have the backup's layout: its filesystems go back onto them")
	default:
		names := slices.Sorted(maps.Keys(lo.blank))
		s.rep.Logf("disk(s) %s are blank: their partitions, guest LVM, filesystems and swap are made as the backup's record says", strings.Join(names, ", "))
	}
	return plan, lo, err
}

// readRecord reads backup sn's VM record from the repository and checks
// it (the repository is where a hostile guest's appliance may have
// written); it logs its summary.
func (s *supervisor) readRecord(ctx context.Context, r repo, sn *backend.Snapshot) ([]byte, *vmrecord.Record, error) {
	data, err := r.ReadVM(ctx, r.req, sn.VM)
	if err != nil {
		return nil, nil, fmt.Errorf("read the VM record of backup %s: %w", sn.ID, err)
	}
	rec, err := vmrecord.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s: %w", sn.ID, err)
	}
	s.rep.Logf("backup %s: %s", sn.ID, rec.Summary())
	return data, rec, nil
}

// blankDisks are the recorded disks of the client with nothing on them:
// no partition, no signature blkid knows, the first 64 KiB zero. Laying
// one out loses nothing.
func blankDisks(rec *vmrecord.Record, devs []blockdev.Device) map[string]bool {
	blank := map[string]bool{}
	for _, rd := range rec.Disks {
		var whole *blockdev.Device
		parts := 0
		for i, d := range devs {
			switch {
			case d.LV != "" || d.ClientDev != rd.Dev:
			case d.Part == 0:
				whole = &devs[i]
			default:
				parts++
			}
		}
		if whole == nil || parts > 0 || whole.FSType != "" {
			continue
		}
		if empty, err := zeroHead("/dev/" + whole.Dev); err == nil && empty {
			blank[rd.Dev] = true
		}
	}
	return blank
}

// layOutBlank writes the recorded partition tables to the blank disks,
// makes the guest volume groups that lie on them, and their swap areas,
// and returns the plan of the whole tree, the filesystems on the blank
// disks to be made (Planned.MkFS).
func (s *supervisor) layOutBlank(ctx context.Context, j *job.Job, lo *layOut) ([]layout.Planned, error) {
	devs := lo.devs
	for _, rd := range lo.rec.Disks {
		if !lo.blank[rd.Dev] || rd.PartitionTable == "" {
			continue
		}
		if d, ok := layout.FindRecorded(devs, rd.Dev, 0, "", ""); ok {
			s.rep.Logf("writing the recorded partition table to %s", rd.Dev)
			if _, err := s.runner.Run(ctx, chroot.Cmd{Argv: []string{"sfdisk", "-q", "/dev/" + d.Dev}, In: strings.NewReader(rd.PartitionTable)}); err != nil {
				return nil, fmt.Errorf("partition table of %s: %w", rd.Dev, err)
			}
		}
	}
	devs, err := s.devices(ctx, j.Disks)
	if err != nil {
		return nil, err
	}
	lay := s.layout()
	restored := map[string]bool{}
	for _, vg := range lo.rec.VolumeGroups {
		if on, err := layout.OnBlank(lo.rec, "", vg.Name, lo.blank); err != nil || !on {
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := lay.RestoreVG(ctx, vg, devs, vmrecord.Dir+"-restore"); err != nil {
			return nil, err
		}
		restored[vg.Name] = true
	}
	if devs, err = s.devices(ctx, j.Disks); err != nil { // activates them
		return nil, err
	}
	fresh := map[string]bool{}
	for _, d := range devs {
		if d.LV == "" && lo.blank[d.ClientDev] || d.LV != "" && restored[d.VG] {
			fresh[d.Name()] = true
		}
	}
	for _, sw := range lo.rec.Swap {
		on, _ := layout.OnBlank(lo.rec, sw.Disk, sw.VG, lo.blank)
		if !on {
			continue
		}
		if d, ok := layout.FindRecorded(devs, sw.Disk, sw.Part, sw.VG, sw.LV); ok {
			argv := []string{"mkswap", "-q"}
			argv = appendIf(argv, "-U", sw.UUID)
			argv = appendIf(argv, "-L", sw.Label)
			if _, err := s.runner.Run(ctx, chroot.Cmd{Argv: append(argv, "/dev/"+d.Dev)}); err != nil {
				return nil, fmt.Errorf("swap on %s: %w", d.Name(), err)
			}
		}
	}
	return layout.PlanRecorded(devs, lo.rec, layout.RecordedOpts{MkFS: j.Restore.MkFS, Fresh: fresh})
}
