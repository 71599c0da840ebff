// Package blockdev describes the block devices found on the client's
// snapshot disks and selects the one filesystem a job asks for
// (backup.mount / restore.mount). It is pure: the supervisor feeds it the
// parsed output of lsblk and maps kernel names to the client's disk names.
package blockdev

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/lvmjson"
)

// Device is one block device that may carry a filesystem.
type Device struct {
	// Dev is the kernel name inside the appliance (vdb2).
	Dev string
	// ClientDev is the client's name of the whole disk (vda) and Part the
	// partition number (0 for the whole disk), so "vda2" means on both sides
	// what it means in the client.
	ClientDev string
	Part      int
	FSType    string
	Label     string
	UUID      string
	Size      int64
	// Disk is the index of the disk in the job's disk list (for a guest
	// LVM volume: that of its first physical volume).
	Disk int
	// VG and LV name a guest LVM logical volume (activated in the
	// appliance); ClientDev and Part are then empty.
	VG, LV string
}

// Name is the device's name as the client sees it: vda, vda2.
func (d Device) Name() string {
	if d.LV != "" {
		return d.VG + "/" + d.LV
	}
	if d.Part == 0 {
		return d.ClientDev
	}
	return d.ClientDev + strconv.Itoa(d.Part)
}

func (d Device) String() string {
	s := d.Name() + " (" + d.Dev
	if d.FSType != "" {
		s += " " + d.FSType
	}
	if d.Label != "" {
		s += " LABEL=" + d.Label
	}
	return s + ")"
}

// Mountable reports whether the device holds a filesystem the appliance can
// mount (not swap, not an LVM PV, not a LUKS container, not a bare table).
func (d Device) Mountable() bool {
	switch d.FSType {
	case "ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "exfat", "ntfs", "ntfs3", "f2fs", "jfs", "reiserfs":
		return true
	}
	return false
}

// IsPV reports whether the device is a guest LVM physical volume.
func (d Device) IsPV() bool { return d.FSType == "LVM2_member" }

// Spec is a parsed mount selection.
type Spec struct {
	Kind  string // "auto", "disk", "part", "label", "uuid", "lv"
	Value string // disk name (vda), LABEL or UUID value, VG name
	Part  int
	LV    string // Kind "lv": the logical volume in VG Value
}

// ParseSpec parses "" / "auto", "vda", "vda2", "LABEL=x", "UUID=x" and a
// guest LVM volume "vg/lv", also in the forms a guest's fstab uses:
// /dev/vg/lv, /dev/mapper/vg-lv, /dev/disk/by-uuid/X, /dev/disk/by-label/X.
func ParseSpec(s string) (Spec, error) {
	orig := s
	s = strings.TrimPrefix(s, "/dev/")
	switch {
	case s == "" || s == "auto":
		return Spec{Kind: "auto"}, nil
	case strings.HasPrefix(s, "LABEL="):
		return Spec{Kind: "label", Value: strings.TrimPrefix(s, "LABEL=")}, nil
	case strings.HasPrefix(s, "UUID="):
		return Spec{Kind: "uuid", Value: strings.TrimPrefix(s, "UUID=")}, nil
	case strings.HasPrefix(s, "disk/by-uuid/"):
		return Spec{Kind: "uuid", Value: strings.TrimPrefix(s, "disk/by-uuid/")}, nil
	case strings.HasPrefix(s, "disk/by-label/"):
		return Spec{Kind: "label", Value: unhex(strings.TrimPrefix(s, "disk/by-label/"))}, nil
	case strings.HasPrefix(s, "mapper/"):
		vg, lv, ok := SplitDMName(strings.TrimPrefix(s, "mapper/"))
		if !ok {
			return Spec{}, fmt.Errorf("mount %q: not a guest LVM volume name (/dev/mapper/VG-LV)", orig)
		}
		return Spec{Kind: "lv", Value: vg, LV: lv}, nil
	case strings.Contains(s, "/"):
		vg, lv, _ := strings.Cut(s, "/")
		if !lvmName.MatchString(vg) || !lvmName.MatchString(lv) {
			return Spec{}, fmt.Errorf("mount %q: want a guest LVM volume as vg/lv", orig)
		}
		return Spec{Kind: "lv", Value: vg, LV: lv}, nil
	}
	if m := numberedDisk.FindStringSubmatch(s); m != nil {
		if m[2] == "" {
			return Spec{Kind: "disk", Value: m[1]}, nil
		}
		n, _ := strconv.Atoi(m[2])
		return Spec{Kind: "part", Value: m[1], Part: n}, nil
	}
	if m := letterDisk.FindStringSubmatch(s); m != nil {
		if m[2] == "" {
			return Spec{Kind: "disk", Value: m[1]}, nil
		}
		n, _ := strconv.Atoi(m[2])
		if n > 0 {
			return Spec{Kind: "part", Value: m[1], Part: n}, nil
		}
	}
	return Spec{}, fmt.Errorf("mount %q: want auto, a disk (vda), a partition (vda2), a guest LVM volume (vg/lv), LABEL=… or UUID=…", s)
}

// lvmName is what LVM allows in VG and LV names.
var lvmName = regexp.MustCompile(`^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$`)

// SplitDMName splits a device-mapper name of an LV into VG and LV.
func SplitDMName(name string) (vg, lv string, ok bool) { return lvmjson.SplitDMName(name) }

// DMName is the device-mapper name of VG/LV.
func DMName(vg, lv string) string { return lvmjson.DMName(vg, lv) }

// unhex undoes udev's \x20 escaping in /dev/disk/by-label names.
func unhex(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var (
	// vda, sdb, xvdc, hda + partition number
	letterDisk = regexp.MustCompile(`^([a-z]+)([0-9]*)$`)
	// nvme0n1, mmcblk0 + "p" + partition number
	numberedDisk = regexp.MustCompile(`^(nvme[0-9]+n[0-9]+|mmcblk[0-9]+)(?:p([0-9]+))?$`)
)

// Select picks the device that spec names among devs. For "auto" it is the
// only mountable filesystem, or, when there are several, the largest on the
// first disk.
func Select(spec string, devs []Device) (Device, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return Device{}, err
	}
	var hits []Device
	for _, d := range devs {
		switch sp.Kind {
		case "auto":
			if d.Mountable() {
				hits = append(hits, d)
			}
		case "disk":
			if d.ClientDev == sp.Value && d.Part == 0 {
				hits = append(hits, d)
			}
		case "part":
			if d.ClientDev == sp.Value && d.Part == sp.Part {
				hits = append(hits, d)
			}
		case "label":
			if d.Label == sp.Value {
				hits = append(hits, d)
			}
		case "uuid":
			if strings.EqualFold(d.UUID, sp.Value) {
				hits = append(hits, d)
			}
		case "lv":
			if d.VG == sp.Value && d.LV == sp.LV {
				hits = append(hits, d)
			}
		}
	}
	switch {
	case len(hits) == 0:
		return Device{}, fmt.Errorf("mount %q: no such filesystem; found %s", orAuto(spec), describe(devs))
	case sp.Kind == "auto" && len(hits) > 1:
		sort.SliceStable(hits, func(i, j int) bool {
			if hits[i].Disk != hits[j].Disk {
				return hits[i].Disk < hits[j].Disk
			}
			return hits[i].Size > hits[j].Size
		})
	case len(hits) > 1:
		return Device{}, fmt.Errorf("mount %q: ambiguous, matches %s", spec, describe(hits))
	}
	d := hits[0]
	if d.FSType == "" {
		return Device{}, fmt.Errorf("mount %q: %s has no filesystem; found %s", orAuto(spec), d.Name(), describe(devs))
	}
	if !d.Mountable() {
		return Device{}, fmt.Errorf("mount %q: %s holds %s, not a mountable filesystem", orAuto(spec), d.Name(), d.FSType)
	}
	return d, nil
}

func orAuto(s string) string {
	if s == "" {
		return "auto"
	}
	return s
}

func describe(devs []Device) string {
	if len(devs) == 0 {
		return "no devices"
	}
	var s []string
	for _, d := range devs {
		s = append(s, d.String())
	}
	return strings.Join(s, ", ")
}
