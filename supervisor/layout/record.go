package layout

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

// Record describes the client's disks (devs) and its mounted tree (plan)
// as the backup's VM record; fstab (the tree's own, nil for none) gives
// each mount point's options. Partition tables are the caller's to add.
func Record(client string, devs []blockdev.Device, plan []Planned, fstab []blockdev.FstabEntry) *vmrecord.Record {
	r := &vmrecord.Record{Version: vmrecord.Version, Client: client, Disks: []vmrecord.Disk{}, Filesystems: []vmrecord.Filesystem{}}
	for _, d := range devs {
		if d.LV == "" && d.Part == 0 {
			r.Disks = append(r.Disks, vmrecord.Disk{Dev: d.ClientDev, Size: d.Size})
		}
		if d.FSType == "swap" {
			sw := vmrecord.Swap{UUID: d.UUID, Label: d.Label, Size: d.Size}
			if d.LV != "" {
				sw.VG, sw.LV = d.VG, d.LV
			} else {
				sw.Disk, sw.Part = d.ClientDev, d.Part
			}
			r.Swap = append(r.Swap, sw)
		}
	}
	opts := map[string]string{}
	for _, e := range fstab {
		opts[path.Clean(e.File)] = strings.Join(e.Options, ",")
	}
	for _, p := range plan {
		d := p.Dev
		f := vmrecord.Filesystem{Where: path.Clean(p.Where), Type: d.FSType, UUID: d.UUID, Label: d.Label, Size: d.Size,
			Subvol: p.Subvol, Options: opts[path.Clean(p.Where)]}
		if d.LV != "" {
			f.VG, f.LV = d.VG, d.LV
		} else {
			f.Disk, f.Part = d.ClientDev, d.Part
		}
		r.Filesystems = append(r.Filesystems, f)
	}
	return r
}

// RecordedOpts say which filesystems PlanRecorded plans anew.
type RecordedOpts struct {
	// MkFS (--mkfs): every filesystem, on a device of any content.
	MkFS bool
	// Blank are client disks with nothing on them (BlankDisks): their
	// filesystems are left out of the plan, to be planned once the disks
	// are laid out.
	Blank map[string]bool
	// Fresh are client devices (vdb1, vg/lv) that were laid out just now:
	// their filesystems are made.
	Fresh map[string]bool
}

// OnBlank says whether f lies on blank disks: its disk, or every PV of
// its volume group.
func OnBlank(rec *vmrecord.Record, disk, vg string, blank map[string]bool) (bool, error) {
	if vg == "" {
		return blank[disk], nil
	}
	for _, g := range rec.VolumeGroups {
		if g.Name != vg {
			continue
		}
		n := 0
		for _, pv := range g.PVs {
			if blank[pv.Disk] {
				n++
			}
		}
		if n > 0 && n < len(g.PVs) {
			return false, fmt.Errorf("volume group %s lies on blank and on used disks: make the others blank too, or create it (hostctl rescue)", vg)
		}
		return n > 0, nil
	}
	return false, nil
}

// PlanRecorded maps the filesystems a backup's VM record lists to the
// client's devices now (devs) by where they were: the same disk and
// partition, or the same guest LVM volume, with the same filesystem type.
// A recorded filesystem without its counterpart stops the plan, naming
// it, before anything is changed; with MkFS a device that is there but
// holds another filesystem, or none, is planned to get the recorded one
// (type, UUID and label), as is every Fresh one. The plan is ordered
// shallowest mount point first whatever the record's order.
func PlanRecorded(devs []blockdev.Device, rec *vmrecord.Record, o RecordedOpts) ([]Planned, error) {
	fss := append([]vmrecord.Filesystem(nil), rec.Filesystems...)
	sort.SliceStable(fss, func(i, k int) bool { return depth(fss[i].Where) < depth(fss[k].Where) })
	if len(fss) == 0 || fss[0].Where != "/" {
		return nil, fmt.Errorf("the backup's VM record has no root filesystem")
	}
	var out []Planned
	used := map[string]string{}
	var missing []string
	for _, f := range fss {
		blank, err := OnBlank(rec, f.Disk, f.VG, o.Blank)
		if err != nil {
			return nil, err
		}
		if blank {
			continue
		}
		d, ok := FindRecorded(devs, f.Disk, f.Part, f.VG, f.LV)
		mkfs := o.MkFS || o.Fresh[f.Device()]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s: the VM has no %s", f, f.Device()))
			continue
		case d.FSType != f.Type && !mkfs:
			holds := "no filesystem"
			if d.FSType != "" {
				holds = d.FSType
			}
			missing = append(missing, fmt.Sprintf("%s: %s holds %s (--mkfs creates %s on it)", f, f.Device(), holds, f.Type))
			continue
		}
		if w, ok := used[d.Dev]; ok && f.Subvol == "" {
			return nil, fmt.Errorf("the backup's VM record puts %s and %s on the same device %s", w, f.Where, f.Device())
		}
		used[d.Dev] = f.Where
		if mkfs {
			d.FSType, d.UUID, d.Label = f.Type, f.UUID, f.Label
		}
		out = append(out, Planned{Where: f.Where, Dev: d, Subvol: f.Subvol, MkFS: mkfs})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the backup's filesystems have no counterpart in this VM: %s", strings.Join(missing, "; "))
	}
	return out, nil
}

// FindRecorded finds among devs the device a record names: guest LVM
// volume vg/lv, or else partition part of disk (0: the whole disk).
func FindRecorded(devs []blockdev.Device, disk string, part int, vg, lv string) (blockdev.Device, bool) {
	for _, d := range devs {
		if lv != "" && d.VG == vg && d.LV == lv || lv == "" && d.LV == "" && d.ClientDev == disk && d.Part == part {
			return d, true
		}
	}
	return blockdev.Device{}, false
}

// depth orders mount points: "/" first, then by the number of names.
func depth(where string) int {
	if where == "/" {
		return 0
	}
	return strings.Count(where, "/")
}
