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
// backup's id). Stock tools read it back:
//
//	borg extract --stdout REPO::vm+ARCHIVE layout.json
//	restic dump --tag snapshot-backup-vm latest /run/sb/vm/layout.json
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
	// BorgPrefix starts the name of a borg record archive: "vm+" and the
	// backup's archive name. A client's name cannot hold "+", so no
	// client's archives (CLIENT-*) are ever one.
	BorgPrefix = "vm+"
	// ResticTag tags every restic record snapshot (backups carry
	// retention.ResticTag instead).
	ResticTag = "snapshot-backup-vm"
	// ResticOf prefixes the tag that names the backup a record belongs to.
	ResticOf = "of:"
	// Max bounds a record's encoding.
	Max = 1 << 20
	// Version is the record format this code writes.
	Version = 1

	maxDisks, maxFilesystems = 64, 256
	maxText                  = 4096     // a label, UUID, option string
	maxTable                 = 64 << 10 // an sfdisk dump
)

// Record describes a backed-up VM.
type Record struct {
	Version     int          `json:"version"`
	Client      string       `json:"client"`
	Disks       []Disk       `json:"disks"`
	Filesystems []Filesystem `json:"filesystems"`
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

// Summary is the record in one line, for the report.
func (r *Record) Summary() string {
	var parts []string
	for _, f := range r.Filesystems {
		parts = append(parts, fmt.Sprintf("%s %s on %s", f.Where, f.Type, f.Device()))
	}
	return fmt.Sprintf("%d disk(s), %d filesystem(s): %s", len(r.Disks), len(r.Filesystems), strings.Join(parts, ", "))
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
)

// Check says whether every field is in bounds: names the appliance and
// the tools it runs accept, text without control characters, each mount
// point once and on a disk the record lists.
func (r *Record) Check() error {
	if len(r.Disks) > maxDisks || len(r.Filesystems) > maxFilesystems {
		return fmt.Errorf("VM record: %d disks and %d filesystems, at most %d and %d", len(r.Disks), len(r.Filesystems), maxDisks, maxFilesystems)
	}
	disks := map[string]bool{}
	for _, d := range r.Disks {
		if !diskName.MatchString(d.Dev) || d.Size < 0 || disks[d.Dev] {
			return fmt.Errorf("VM record: disk %q (size %d): not a disk name, or listed twice", clip(d.Dev), d.Size)
		}
		disks[d.Dev] = true
		if err := text("partition table of "+d.Dev, d.PartitionTable, maxTable, true); err != nil {
			return err
		}
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
		switch {
		case f.LV != "" || f.VG != "":
			if !lvmName.MatchString(f.VG) || !lvmName.MatchString(f.LV) || f.Disk != "" || f.Part != 0 {
				return fmt.Errorf("VM record: %s: volume %q/%q is not a guest LVM volume name", f.Where, clip(f.VG), clip(f.LV))
			}
		case !disks[f.Disk] || f.Part < 0 || f.Part > 999:
			return fmt.Errorf("VM record: %s: device %q partition %d is not on a recorded disk", f.Where, clip(f.Disk), f.Part)
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
		if multiline && (c == '\n' || c == '\t') {
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
