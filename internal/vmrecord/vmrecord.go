// Package vmrecord is what every backup records about its VM: the disks
// and the filesystems of the backed-up tree as the appliance saw them
// (which filesystem was mounted where, on which disk, partition or guest
// LVM volume, with its type, UUID, label and fstab options). An in-place
// recovery maps the backup's mount points to the VM's disks by it, never
// by whatever fstab a blank VM happens to have.
//
// The appliance stores the record beside each backup, where the guest
// cannot write: for borg the archive RecordArchive(archive) (its one file
// File), for restic a snapshot of Dir tagged ResticTag (and "of:" the
// backup's id), for duplicity a full backup of Dir with the file prefix
// DuplicityPrefix at the backup's time. Stock tools read it back:
//
//	borg extract --stdout REPO::vm+ARCHIVE layout.json
//	restic dump --tag snapshot-backup-vm latest /run/sb/vm/layout.json
//	duplicity restore --file-prefix vm- --time TIME --file-to-restore layout.json URL layout.json
//
// A record comes back from a repository, which the appliance of a hostile
// guest may have written: Parse bounds and checks every field.
package vmrecord

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
)

const (
	// Dir is where the appliance writes the record (inside the userland,
	// on the /run tmpfs) and where restic stores it.
	Dir = "/run/sb/vm"
	// File is the record's file name in Dir.
	File = "layout.json"
	// DomainFile is the copy of Record.Domain beside it.
	DomainFile = "domain.xml"
	// MaxDomain bounds the domain XML (libvirt's are a few KiB).
	MaxDomain = 256 << 10
	// MaxTable bounds a partition table dump and a volume group's
	// metadata.
	MaxTable = 64 << 10
	// BorgPrefix starts the name of a borg record archive: "vm+" and the
	// backup's archive name. A client's name cannot hold "+", so no
	// client's archives (CLIENT-*) are ever one.
	BorgPrefix = "vm+"
	// ResticTag tags every restic record snapshot (backups carry
	// retention.ResticTag instead).
	ResticTag = "snapshot-backup-vm"
	// ResticOf prefixes the tag that names the backup a record belongs to.
	ResticOf = "of:"
	// DuplicityPrefix is the --file-prefix of duplicity's record sets:
	// one full backup of Dir per backup, at the backup's time, in the same
	// target. duplicity without the prefix does not see them.
	DuplicityPrefix = "vm-"
	// Max bounds a record's encoding.
	Max = 1 << 20
	// Version is the record format this code writes.
	Version = 1

	maxDisks, maxFilesystems = 64, 256
	maxText                  = 4096 // a label, UUID, option string

)

// Record describes a backed-up VM.
type Record struct {
	Version     int          `json:"version"`
	Client      string       `json:"client"`
	Disks       []Disk       `json:"disks"`
	Filesystems []Filesystem `json:"filesystems"`
	Swap        []Swap       `json:"swap,omitempty"`
	// VolumeGroups are the guest LVM volume groups on the client's disks
	// with their metadata (vgcfgbackup), from which vgcfgrestore makes
	// them again.
	VolumeGroups []VolumeGroup `json:"volume_groups,omitempty"`
	// BootLoader is the boot loader found, nil for none.
	BootLoader *BootLoader `json:"boot_loader,omitempty"`
	// Domain is the libvirt domain's inactive XML as the host had it at
	// backup time, without passwords ("" for a client without one). Its
	// copy DomainFile sits beside File for the stock tools.
	Domain string `json:"domain_xml,omitempty"`
}

// Disk is one of the client's disks.
type Disk struct {
	Dev  string `json:"dev"` // the client's name: vda
	Size int64  `json:"size"`
	// PartitionTable is sfdisk --dump's output ("" for a disk without
	// one: a filesystem or a PV on the whole disk).
	PartitionTable string `json:"partition_table,omitempty"`
}

// Filesystem is one filesystem of the backed-up tree.
type Filesystem struct {
	Where string `json:"mount_point"`
	// Disk and Part name a disk or partition (Part 0: the whole disk);
	// VG and LV a guest LVM volume.
	Disk    string `json:"disk,omitempty"`
	Part    int    `json:"partition,omitempty"`
	VG      string `json:"vg,omitempty"`
	LV      string `json:"lv,omitempty"`
	Type    string `json:"type"`
	UUID    string `json:"uuid,omitempty"`
	Label   string `json:"label,omitempty"`
	Size    int64  `json:"size,omitempty"`
	Subvol  string `json:"subvol,omitempty"`
	Options string `json:"options,omitempty"` // the fstab's, "" when no fstab line names it
}

// Swap is a swap area on the client's disks.
type Swap struct {
	Disk  string `json:"disk,omitempty"`
	Part  int    `json:"partition,omitempty"`
	VG    string `json:"vg,omitempty"`
	LV    string `json:"lv,omitempty"`
	UUID  string `json:"uuid,omitempty"`
	Label string `json:"label,omitempty"`
	Size  int64  `json:"size,omitempty"`
}

// VolumeGroup is a guest LVM volume group, its metadata and its
// physical volumes.
type VolumeGroup struct {
	Name     string `json:"name"`
	Metadata string `json:"metadata"`
	PVs      []PV   `json:"pvs"`
}

// PV is a physical volume: where it is and its UUID (pvcreate --uuid).
type PV struct {
	Disk string `json:"disk"`
	Part int    `json:"partition,omitempty"`
	UUID string `json:"uuid"`
}

// BootLoader is the boot loader a backup's VM had: "grub-pc" (GRUB's boot
// code in the MBR of Disk) or "grub-efi" (GRUB's EFI files in the tree;
// Disk is then the one with the EFI system partition, when known).
type BootLoader struct {
	Kind string `json:"kind"`
	Disk string `json:"disk,omitempty"`
}

// Device is the filesystem's device as the client names it: vda2, vg/lv.
func (f Filesystem) Device() string {
	switch {
	case f.LV != "":
		return f.VG + "/" + f.LV
	case f.Part > 0:
		return fmt.Sprintf("%s%d", f.Disk, f.Part)
	}
	return f.Disk
}

// Device is the swap area's device as the client names it: vda3, vg/lv.
func (s Swap) Device() string {
	return Filesystem{Disk: s.Disk, Part: s.Part, VG: s.VG, LV: s.LV}.Device()
}

// String is the boot loader and its disk: "grub-pc on vda".
func (b BootLoader) String() string {
	if b.Disk == "" {
		return b.Kind
	}
	return b.Kind + " on " + b.Disk
}

// String is a filesystem as the log and errors name it.
func (f Filesystem) String() string {
	s := fmt.Sprintf("%s (%s on %s", f.Where, f.Type, f.Device())
	if f.Label != "" {
		s += ", LABEL=" + f.Label
	}
	if f.UUID != "" {
		s += ", UUID=" + f.UUID
	}
	return s + ")"
}

// Summary is the record in one line, for the report: at most 1000 bytes.
func (r *Record) Summary() string {
	s := r.summary()
	if len(s) > 1000 {
		s = strings.ToValidUTF8(s[:996], "") + " …"
	}
	return s
}

func (r *Record) summary() string {
	var parts []string
	for _, f := range r.Filesystems {
		parts = append(parts, fmt.Sprintf("%s %s on %s", f.Where, f.Type, f.Device()))
	}
	var more []string
	if len(r.Swap) > 0 {
		more = append(more, fmt.Sprintf("%d swap area(s)", len(r.Swap)))
	}
	if len(r.VolumeGroups) > 0 {
		more = append(more, fmt.Sprintf("%d volume group(s)", len(r.VolumeGroups)))
	}
	if b := r.BootLoader; b != nil {
		more = append(more, b.String())
	}
	if r.Domain != "" {
		more = append(more, "the domain's definition")
	}
	s := fmt.Sprintf("%d disk(s), %d filesystem(s): %s", len(r.Disks), len(r.Filesystems), strings.Join(parts, ", "))
	if len(more) > 0 {
		s += "; " + strings.Join(more, ", ")
	}
	return s
}

// Marshal encodes a record (after Check, so that what is written is what
// Parse accepts).
func (r *Record) Marshal() ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if len(b) > Max {
		return nil, fmt.Errorf("VM record: %d bytes, more than %d", len(b), Max)
	}
	return append(b, '\n'), nil
}

// Parse decodes and checks a record read back from a repository.
func Parse(b []byte) (*Record, error) {
	if len(b) > Max {
		return nil, fmt.Errorf("VM record: %d bytes, more than %d", len(b), Max)
	}
	var r Record
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&r); err != nil {
		return nil, fmt.Errorf("VM record: %w", err)
	}
	if d.More() {
		return nil, errors.New("VM record: data after the record")
	}
	if r.Version != Version {
		return nil, fmt.Errorf("VM record: version %d, this hostctl reads version %d", r.Version, Version)
	}
	return &r, r.Check()
}

var (
	diskName = regexp.MustCompile(`^(vd|sd|hd|xvd)[a-z]{1,3}$`)
	lvmName  = regexp.MustCompile(`^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$`)
	fsType   = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	pvUUID   = regexp.MustCompile(`^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$`)
)

// Check says whether every field is in bounds: names the appliance and
// the tools it runs accept, text without control characters, each mount
// point once and on a disk the record lists.
func (r *Record) Check() error {
	if len(r.Disks) > maxDisks || len(r.Filesystems) > maxFilesystems || len(r.Swap) > maxFilesystems || len(r.VolumeGroups) > maxFilesystems {
		return fmt.Errorf("VM record: %d disks, %d filesystems, %d swap areas and %d volume groups, at most %d disks and %d of the others",
			len(r.Disks), len(r.Filesystems), len(r.Swap), len(r.VolumeGroups), maxDisks, maxFilesystems)
	}
	if err := text("domain XML", r.Domain, MaxDomain, true); err != nil {
		return err
	}
	disks := map[string]bool{}
	for _, d := range r.Disks {
		if !diskName.MatchString(d.Dev) || d.Size < 0 || disks[d.Dev] {
			return fmt.Errorf("VM record: disk %q (size %d): not a disk name, or listed twice", clip(d.Dev), d.Size)
		}
		disks[d.Dev] = true
		if err := text("partition table of "+d.Dev, d.PartitionTable, MaxTable, true); err != nil {
			return err
		}
	}
	if err := r.checkRest(disks); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, f := range r.Filesystems {
		if f.Where == "" || !strings.HasPrefix(f.Where, "/") || path.Clean(f.Where) != f.Where || strings.ContainsRune(f.Where, 0) || len(f.Where) > maxText {
			return fmt.Errorf("VM record: mount point %q is not a clean absolute path", clip(f.Where))
		}
		if err := text("mount point", f.Where, maxText, false); err != nil {
			return err
		}
		if seen[f.Where] {
			return fmt.Errorf("VM record: mount point %s listed twice", f.Where)
		}
		seen[f.Where] = true
		if err := checkDevice(f.Where, f.Disk, f.Part, f.VG, f.LV, disks); err != nil {
			return err
		}
		if !fsType.MatchString(f.Type) {
			return fmt.Errorf("VM record: %s: filesystem type %q", f.Where, clip(f.Type))
		}
		if f.Size < 0 {
			return fmt.Errorf("VM record: %s: size %d", f.Where, f.Size)
		}
		for _, t := range []struct{ what, v string }{{"UUID", f.UUID}, {"label", f.Label}, {"subvolume", f.Subvol}, {"options", f.Options}} {
			if err := text(f.Where+": "+t.what, t.v, maxText, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkRest checks the swap areas, volume groups and boot loader.
func (r *Record) checkRest(disks map[string]bool) error {
	for _, s := range r.Swap {
		if err := checkDevice("swap", s.Disk, s.Part, s.VG, s.LV, disks); err != nil {
			return err
		}
		if s.Size < 0 {
			return fmt.Errorf("VM record: swap size %d", s.Size)
		}
		for _, t := range []string{s.UUID, s.Label} {
			if err := text("swap", t, maxText, false); err != nil {
				return err
			}
		}
	}
	vgs := map[string]bool{}
	for _, vg := range r.VolumeGroups {
		if !lvmName.MatchString(vg.Name) || vgs[vg.Name] {
			return fmt.Errorf("VM record: volume group %s: not an LVM name, or listed twice", clip(vg.Name))
		}
		vgs[vg.Name] = true
		if err := text("metadata of volume group "+vg.Name, vg.Metadata, MaxTable, true); err != nil {
			return err
		}
		if len(vg.PVs) == 0 || len(vg.PVs) > maxDisks*4 {
			return fmt.Errorf("VM record: volume group %s: %d physical volumes", vg.Name, len(vg.PVs))
		}
		for _, pv := range vg.PVs {
			if err := checkDevice("volume group "+vg.Name, pv.Disk, pv.Part, "", "", disks); err != nil {
				return err
			}
			if !pvUUID.MatchString(pv.UUID) {
				return fmt.Errorf("VM record: volume group %s: PV UUID %s", vg.Name, clip(pv.UUID))
			}
		}
	}
	if b := r.BootLoader; b != nil {
		if b.Kind != "grub-pc" && b.Kind != "grub-efi" {
			return fmt.Errorf("VM record: boot loader %s", clip(b.Kind))
		}
		if b.Disk != "" && !disks[b.Disk] || b.Kind == "grub-pc" && b.Disk == "" {
			return fmt.Errorf("VM record: boot loader %s on disk %s, which the record does not list", b.Kind, clip(b.Disk))
		}
	}
	return nil
}

// checkDevice checks a device reference: a partition of a listed disk, or
// a guest LVM volume.
func checkDevice(what, disk string, part int, vg, lv string, disks map[string]bool) error {
	if vg != "" || lv != "" {
		if !lvmName.MatchString(vg) || !lvmName.MatchString(lv) || disk != "" || part != 0 {
			return fmt.Errorf("VM record: %s: volume %s/%s is not a guest LVM volume name", what, clip(vg), clip(lv))
		}
		return nil
	}
	if !disks[disk] || part < 0 || part > 999 {
		return fmt.Errorf("VM record: %s: device %s partition %d is not on a recorded disk", what, clip(disk), part)
	}
	return nil
}

// text checks that s is valid UTF-8 of at most max bytes without control
// characters (newlines and tabs too where multiline).
func text(what, s string, max int, multiline bool) error {
	if len(s) > max {
		return fmt.Errorf("VM record: %s: %d bytes, more than %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("VM record: %s is not UTF-8", what)
	}
	for _, c := range s {
		if multiline && (c == '\n' || c == '\t' || c == '\r') {
			continue
		}
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return fmt.Errorf("VM record: %s holds control character %U", what, c)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(fmt.Sprintf("%q", s), "?")
}
