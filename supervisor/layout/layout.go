// Package layout finds and mounts a client's filesystems inside the
// appliance: guest LVM volumes on the snapshot disks (activated here and
// only here), the filesystem(s) that backup.mount selects, and the tree a
// guest's own /etc/fstab describes. It runs the userland's tools (blkid,
// lvm) through a small Runner, so the same code runs under PID 1 and in the
// in-appliance tests.
package layout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/lvmjson"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

// Runner runs a userland tool and returns its stdout.
type Runner interface {
	Output(ctx context.Context, argv ...string) ([]byte, error)
}

// Exec runs tools directly (in the in-appliance tests, which already run
// inside the userland).
type Exec struct{}

// Output implements Runner.
func (Exec) Output(ctx context.Context, argv ...string) ([]byte, error) {
	return execx.Output(ctx, argv...)
}

// Layout is the guest-layout code's view of the appliance.
type Layout struct {
	Run  Runner
	Logf func(format string, args ...any)
	// SysBlock is /sys/block (for dm-N names of activated volumes).
	SysBlock string
	// ProbeDir is where candidate root filesystems are looked into for
	// an /etc/fstab ("": /run/sb/fstab-probe).
	ProbeDir string
	// LoadDM, when set, is called before the first lvm(8) command: the
	// supervisor loads device-mapper's modules only for guests with LVM.
	LoadDM func()
	// Root is where the tools' root is (the userland the chroot runner
	// runs them in), for the files they read and write: "" when they run
	// directly.
	Root string
	// RequireAll makes a "nofail" fstab entry that is not there an error
	// instead of a filesystem left out (a recovery: its files would land
	// on the filesystem above).
	RequireAll bool
}

func (l *Layout) logf(format string, args ...any) {
	if l.Logf != nil {
		l.Logf(format, args...)
	}
}

// Probe runs blkid -p (low-level probe, no cache, no udev) on /dev/dev.
// Exit status 2 means "nothing found", which is not an error.
func (l *Layout) Probe(ctx context.Context, dev string) (map[string]string, error) {
	out, err := l.Run.Output(ctx, "blkid", "-p", "-o", "export", "/dev/"+dev)
	if execx.ExitCode(err) == 2 {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return blockdev.ParseBlkid(string(out)), nil
}

// lvmConfig confines LVM to the client's physical volumes (never anything
// else the appliance sees) and makes it work without udev and without
// writing backups or archives of metadata.
func lvmConfig(pvs []string) string {
	var accept []string
	for _, p := range pvs {
		accept = append(accept, fmt.Sprintf(`"a|^/dev/%s$|"`, p))
	}
	accept = append(accept, `"r|.*|"`)
	return "devices { filter = [ " + strings.Join(accept, ", ") + " ] use_devicesfile = 0 obtain_device_list_from_udev = 0 } " +
		"activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } " +
		"global { event_activation = 0 } backup { backup = 0 archive = 0 }"
}

// ActivateLVM activates the guest volume groups whose physical volumes are
// among devs and returns their logical volumes as devices. It refuses two
// volume groups of the same name (cloned guests): which one a "vg/lv"
// means would be a guess.
func (l *Layout) ActivateLVM(ctx context.Context, devs []blockdev.Device) ([]blockdev.Device, error) {
	var pvs []string
	diskOf := map[string]int{}
	for _, d := range devs {
		if d.IsPV() {
			pvs = append(pvs, d.Dev)
			diskOf["/dev/"+d.Dev] = d.Disk
		}
	}
	if len(pvs) == 0 {
		return nil, nil
	}
	if l.LoadDM != nil {
		l.LoadDM()
	}
	cfg := lvmConfig(pvs)
	out, err := l.Run.Output(ctx, "lvm", "pvs", "--config", cfg, "--reportformat", "json", "--units", "b", "-o", "pv_name,vg_name,vg_uuid")
	if err != nil {
		return nil, fmt.Errorf("guest LVM: %w", err)
	}
	rows, err := lvmjson.Rows(out, "pv")
	if err != nil {
		return nil, err
	}
	vgDisk, uuids := map[string]int{}, map[string][]string{}
	for _, r := range rows {
		vg := r["vg_name"]
		if vg == "" {
			continue
		}
		if !slices.Contains(uuids[vg], r["vg_uuid"]) {
			uuids[vg] = append(uuids[vg], r["vg_uuid"])
		}
		if d, ok := vgDisk[vg]; !ok || diskOf[r["pv_name"]] < d {
			vgDisk[vg] = diskOf[r["pv_name"]]
		}
	}
	for vg, u := range uuids {
		if len(u) > 1 {
			return nil, fmt.Errorf("guest LVM: %d volume groups are named %q (uuids %s): rename one in the guest (vgrename by uuid) or back them up as separate clients", len(u), vg, strings.Join(u, ", "))
		}
	}
	if len(vgDisk) == 0 {
		return nil, nil
	}
	if _, err := l.Run.Output(ctx, "lvm", "vgchange", "--config", cfg, "-ay"); err != nil {
		return nil, fmt.Errorf("guest LVM: activate: %w", err)
	}
	out, err = l.Run.Output(ctx, "lvm", "lvs", "--config", cfg, "--reportformat", "json", "--units", "b", "-o", "vg_name,lv_name,lv_attr,lv_size")
	if err != nil {
		return nil, fmt.Errorf("guest LVM: %w", err)
	}
	if rows, err = lvmjson.Rows(out, "lv"); err != nil {
		return nil, err
	}
	dm, err := l.dmNames()
	if err != nil {
		return nil, err
	}
	var lvs []blockdev.Device
	for _, r := range rows {
		attr := r["lv_attr"]
		if len(attr) < 5 || attr[4] != 'a' {
			continue // not active (e.g. a thin pool's hidden parts)
		}
		kdev, ok := dm[blockdev.DMName(r["vg_name"], r["lv_name"])]
		if !ok {
			continue
		}
		size, _ := lvmjson.Bytes(r["lv_size"])
		d := blockdev.Device{Dev: kdev, VG: r["vg_name"], LV: r["lv_name"], Disk: vgDisk[r["vg_name"]], Size: size}
		if attr[0] != 't' && attr[0] != 'd' {
			info, err := l.Probe(ctx, kdev)
			if err != nil {
				return nil, err
			}
			d.FSType, d.Label, d.UUID = info["TYPE"], info["LABEL"], info["UUID"]
		}
		lvs = append(lvs, d)
	}
	l.logf("guest LVM: activated %d logical volume(s) in %d volume group(s)", len(lvs), len(vgDisk))
	return lvs, nil
}

// dmNames maps device-mapper names to kernel names (vg0-root → dm-3).
func (l *Layout) dmNames() (map[string]string, error) {
	sb := l.SysBlock
	if sb == "" {
		sb = "/sys/block"
	}
	ms, err := filepath.Glob(filepath.Join(sb, "dm-*", "dm", "name"))
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, p := range ms {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		m[strings.TrimSpace(string(b))] = filepath.Base(filepath.Dir(filepath.Dir(p)))
	}
	return m, nil
}

// VGMetadata returns each guest volume group on devs with its metadata
// (vgcfgbackup into dir, as the tools see it, one file per group, read
// back, bounded by max bytes each) and its physical volumes, sorted by
// name; nil when devs hold no PV.
func (l *Layout) VGMetadata(ctx context.Context, devs []blockdev.Device, dir string, max int64) ([]vmrecord.VolumeGroup, error) {
	var pvs []string
	byName := map[string]blockdev.Device{}
	for _, d := range devs {
		if d.IsPV() {
			pvs = append(pvs, d.Dev)
			byName["/dev/"+d.Dev] = d
		}
	}
	if len(pvs) == 0 {
		return nil, nil
	}
	out, err := l.Run.Output(ctx, "lvm", "pvs", "--config", lvmConfig(pvs), "--reportformat", "json", "-o", "pv_name,pv_uuid,vg_name")
	if err != nil {
		return nil, fmt.Errorf("guest LVM: %w", err)
	}
	rows, err := lvmjson.Rows(out, "pv")
	if err != nil {
		return nil, err
	}
	members := map[string][]vmrecord.PV{}
	for _, r := range rows {
		d, ok := byName[r["pv_name"]]
		if !ok || r["vg_name"] == "" {
			continue
		}
		members[r["vg_name"]] = append(members[r["vg_name"]], vmrecord.PV{Disk: d.ClientDev, Part: d.Part, UUID: r["pv_uuid"]})
	}
	if err := os.MkdirAll(filepath.Join(l.Root, dir), 0o700); err != nil {
		return nil, err
	}
	// %s is vgcfgbackup's: one file per volume group, named after it.
	if _, err := l.Run.Output(ctx, "lvm", "vgcfgbackup", "--config", lvmConfig(pvs), "-f", filepath.Join(dir, "%s.vg")); err != nil {
		return nil, fmt.Errorf("guest LVM: vgcfgbackup: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(l.Root, dir, "*.vg"))
	if err != nil {
		return nil, err
	}
	var vgs []vmrecord.VolumeGroup
	for _, f := range files {
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > max {
			return nil, fmt.Errorf("guest LVM: metadata %s: not a regular file of at most %d bytes", filepath.Base(f), max)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(filepath.Base(f), ".vg")
		vgs = append(vgs, vmrecord.VolumeGroup{Name: name, Metadata: strings.ToValidUTF8(string(b), "?"), PVs: members[name]})
	}
	return vgs, nil
}

// RestoreVG makes guest volume group vg again on the blank devices of its
// PVs (pvs: the client's devices now, by where the record says each PV
// was): each PV gets its recorded UUID (pvcreate --uuid --restorefile),
// then the metadata is restored (vgcfgrestore). The metadata file is
// written to dir (as the tools see it).
func (l *Layout) RestoreVG(ctx context.Context, vg vmrecord.VolumeGroup, devs []blockdev.Device, dir string) error {
	var pvs []string
	dev := map[vmrecord.PV]string{}
	for _, pv := range vg.PVs {
		d, ok := FindRecorded(devs, pv.Disk, pv.Part, "", "")
		if !ok {
			return fmt.Errorf("volume group %s: its PV on %s partition %d is not there after the partition table was written", vg.Name, pv.Disk, pv.Part)
		}
		pvs, dev[pv] = append(pvs, d.Dev), d.Dev
	}
	if err := os.MkdirAll(filepath.Join(l.Root, dir), 0o700); err != nil {
		return err
	}
	file := filepath.Join(dir, vg.Name+".vg")
	if err := os.WriteFile(filepath.Join(l.Root, file), []byte(vg.Metadata), 0o600); err != nil {
		return err
	}
	cfg := lvmConfig(pvs)
	for _, pv := range vg.PVs {
		if _, err := l.Run.Output(ctx, "lvm", "pvcreate", "--config", cfg, "--uuid", pv.UUID, "--restorefile", file, "/dev/"+dev[pv]); err != nil {
			return fmt.Errorf("volume group %s: pvcreate on %s: %w", vg.Name, dev[pv], err)
		}
	}
	if _, err := l.Run.Output(ctx, "lvm", "vgcfgrestore", "--config", cfg, "-f", file, "--", vg.Name); err != nil {
		return fmt.Errorf("volume group %s: vgcfgrestore: %w", vg.Name, err)
	}
	l.logf("guest LVM: volume group %s made again on %s", vg.Name, strings.Join(pvs, ", "))
	return nil
}
