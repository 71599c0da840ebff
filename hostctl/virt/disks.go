package virt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// ClientDisk is one disk of a client domain that hostctl backs up.
type ClientDisk struct {
	Target   string // vda, sdb, …
	Path     string // file path or block device
	Format   string // raw, qcow2, …
	Block    bool   // source is a block device (LV)
	ReadOnly bool   // the domain sees it read-only: consistent without a snapshot
}

// ClientDisks lists the disks of a domain from its XML: every
// <disk device="disk"> with a file or block source. CD-ROMs and floppies are
// not backed up; network and other sources are an error, because silently
// skipping a disk would make an incomplete backup look complete.
func ClientDisks(domainXML string) ([]ClientDisk, error) {
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(domainXML); err != nil {
		return nil, fmt.Errorf("parse domain XML: %w", err)
	}
	if dom.Devices == nil {
		return nil, nil
	}
	var out []ClientDisk
	for _, d := range dom.Devices.Disks {
		if d.Device != "" && d.Device != "disk" {
			continue
		}
		if d.Target == nil || d.Target.Dev == "" {
			return nil, fmt.Errorf("domain %s: a disk without a target", dom.Name)
		}
		cd := ClientDisk{Target: d.Target.Dev, Format: "raw", ReadOnly: d.ReadOnly != nil}
		if d.Driver != nil && d.Driver.Type != "" {
			cd.Format = d.Driver.Type
		}
		switch {
		case d.Source != nil && d.Source.File != nil && d.Source.File.File != "":
			cd.Path = d.Source.File.File
		case d.Source != nil && d.Source.Block != nil && d.Source.Block.Dev != "":
			cd.Path, cd.Block = d.Source.Block.Dev, true
		default:
			return nil, fmt.Errorf("domain %s disk %s: only file and block sources can be backed up", dom.Name, cd.Target)
		}
		out = append(out, cd)
	}
	return out, nil
}

// SnapshotXML renders the <domainsnapshot> for an external disk-only
// snapshot: each disk in overlays (target → overlay path) gets an external
// qcow2 overlay, every other disk is left out of the snapshot.
func SnapshotXML(name string, disks []ClientDisk, overlays map[string]string) (string, error) {
	snap := &libvirtxml.DomainSnapshot{
		Name:        name,
		Description: "hostctl backup snapshot (removed by blockcommit after the backup)",
		Disks:       &libvirtxml.DomainSnapshotDisks{},
	}
	for _, d := range disks {
		sd := libvirtxml.DomainSnapshotDisk{Name: d.Target}
		if ov, ok := overlays[d.Target]; ok {
			sd.Snapshot = "external"
			sd.Driver = &libvirtxml.DomainDiskDriver{Type: "qcow2"}
			sd.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: ov}}
		} else {
			sd.Snapshot = "no"
		}
		snap.Disks.Disks = append(snap.Disks.Disks, sd)
	}
	out, err := snap.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal snapshot XML: %w", err)
	}
	return out, nil
}

// ReplaceDiskSource rewrites the source (and format) of disk target in a
// domain's XML: used to point a shut-off domain back at its base image after
// an overlay was committed offline.
func ReplaceDiskSource(domainXML, target, path, format string) (string, error) {
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(domainXML); err != nil {
		return "", fmt.Errorf("parse domain XML: %w", err)
	}
	for i := range dom.Devices.Disks {
		d := &dom.Devices.Disks[i]
		if d.Target == nil || d.Target.Dev != target {
			continue
		}
		d.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}
		d.BackingStore = nil
		if d.Driver == nil {
			d.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu"}
		}
		d.Driver.Type = format
		return dom.Marshal()
	}
	return "", fmt.Errorf("domain %s has no disk %s", dom.Name, target)
}

// DomainUUID returns the UUID in a domain's XML.
func DomainUUID(domainXML string) (string, error) {
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(domainXML); err != nil {
		return "", fmt.Errorf("parse domain XML: %w", err)
	}
	return dom.UUID, nil
}
