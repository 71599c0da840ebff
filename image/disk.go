package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// Names in the appliance disk's GPT. The supervisor finds the disk by its
// virtio serial (job.SerialAppliance) and mounts partition RootPartition.
const (
	ESPLabel      = "SB-ESP"  // FAT volume label and GPT name of partition 1
	RootName      = "sb-root" // GPT name of partition 2 (the squashfs)
	ESPPartition  = 1
	RootPartition = 2
	// Files on the ESP, for boot loaders and for humans; libvirt boots the
	// copies next to the image directly.
	ESPKernel    = "vmlinuz"
	ESPInitramfs = "initrd.img"
)

const (
	mib        = int64(1) << 20
	sectorSize = 512
	// minESP keeps FAT32 well above its minimum cluster count.
	minESP = 64 * mib
)

// Layout is the appliance disk's partition layout. Every size and offset is
// a whole MiB: go-diskfs 1.9.4 writes an invalid FAT32 for some odd sizes.
type Layout struct {
	ESPStart, ESPSize   int64
	RootStart, RootSize int64
	DiskSize            int64
}

// PlanLayout sizes the disk for an ESP holding espBytes of files and a root
// partition holding rootBytes (the squashfs).
func PlanLayout(espBytes, rootBytes int64) Layout {
	// FAT overhead and room for a larger kernel on a rebuild in place.
	esp := roundUp(espBytes+espBytes/4+8*mib, mib)
	if esp < minESP {
		esp = minESP
	}
	for !fat32Fits(esp) {
		esp += mib
	}
	root := roundUp(rootBytes, mib)
	if root == 0 {
		root = mib
	}
	l := Layout{ESPStart: mib, ESPSize: esp}
	l.RootStart = l.ESPStart + l.ESPSize
	l.RootSize = root
	// One MiB at the end holds the backup GPT.
	l.DiskSize = l.RootStart + l.RootSize + mib
	return l
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// fat32Geometry mirrors how go-diskfs 1.9.4 lays out a FAT32 of size bytes
// (512-byte sectors): cluster count and FAT entries.
func fat32Geometry(size int64) (clusters, entries int64) {
	const bps, reserved = 512, 32
	var clusterBytes int64
	switch {
	case size <= 260*mib:
		clusterBytes = 512
	case size <= 8<<30:
		clusterBytes = 4 << 10
	default:
		clusterBytes = 8 << 10
	}
	spc := clusterBytes / bps
	total := size / bps
	spf := (4*(total-reserved) + bps*spc + 8 - 1) / (bps*spc + 8)
	return (total - reserved - 2*spf) / spc, spf * bps / 4
}

// fat32Fits reports whether go-diskfs's FAT32 of this size is valid: its
// FAT must have an entry for every cluster plus the two reserved ones. Its
// sizing formula forgets those two for some sizes (fixed upstream after
// 1.9.4); fsck.vfat then reports "N clusters but only space for N-2".
func fat32Fits(size int64) bool {
	clusters, entries := fat32Geometry(size)
	return clusters+2 <= entries
}

// checkFAT32 validates the boot sector go-diskfs wrote, so that a library
// whose sizing differs from fat32Geometry fails the build, not the boot.
func checkFAT32(f io.ReaderAt, start int64) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, start); err != nil {
		return err
	}
	le16 := func(o int) int64 { return int64(bs[o]) | int64(bs[o+1])<<8 }
	le32 := func(o int) int64 { return le16(o) | le16(o+2)<<16 }
	bps, spc, reserved, nfats := le16(11), int64(bs[13]), le16(14), int64(bs[16])
	total, spf := le32(32), le32(36)
	if bps == 0 || spc == 0 || bs[510] != 0x55 || bs[511] != 0xAA {
		return errors.New("ESP: no FAT boot sector")
	}
	clusters := (total - reserved - nfats*spf) / spc
	if entries := spf * bps / 4; clusters+2 > entries {
		return fmt.Errorf("ESP: FAT32 has %d clusters but only %d FAT entries", clusters, entries)
	}
	return nil
}

// DiskSpec is what goes onto the appliance disk.
type DiskSpec struct {
	Layout   Layout
	ESPFiles []ESPFile // copied onto the FAT32 ESP
	Root     io.Reader // the squashfs, written raw to partition 2
	DiskGUID string    // "" = random
	ESPGUID  string
	RootGUID string
}

// ESPFile is one file on the ESP.
type ESPFile struct {
	Name string // in the root directory
	Path string // host file to copy
}

// WriteDisk creates the image file at path (which must not exist).
func WriteDisk(path string, s DiskSpec) (err error) {
	l := s.Layout
	d, err := diskfs.Create(path, l.DiskSize, diskfs.SectorSize(sectorSize))
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if cerr := d.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	table := &gpt.Table{
		LogicalSectorSize:  sectorSize,
		PhysicalSectorSize: sectorSize,
		ProtectiveMBR:      true,
		GUID:               s.DiskGUID,
		Partitions: []*gpt.Partition{
			{
				Index: ESPPartition,
				Start: uint64(l.ESPStart / sectorSize), End: uint64((l.ESPStart+l.ESPSize)/sectorSize - 1),
				Type: gpt.EFISystemPartition, Name: ESPLabel, GUID: s.ESPGUID,
			},
			{
				Index: RootPartition,
				Start: uint64(l.RootStart / sectorSize), End: uint64((l.RootStart+l.RootSize)/sectorSize - 1),
				Type: gpt.LinuxFilesystem, Name: RootName, GUID: s.RootGUID,
			},
		},
	}
	if err := d.Partition(table); err != nil {
		return fmt.Errorf("partition %s: %w", path, err)
	}
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{
		Partition: ESPPartition, FSType: filesystem.TypeFat32, VolumeLabel: ESPLabel, Reproducible: true,
	})
	if err != nil {
		return fmt.Errorf("%s: create FAT32 on partition %d: %w", path, ESPPartition, err)
	}
	if err := checkFAT32(d.Backend, l.ESPStart); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, f := range s.ESPFiles {
		if err := copyToFS(fs, f); err != nil {
			return fmt.Errorf("%s: ESP: %w", path, err)
		}
	}
	// Pad the squashfs to the partition size: go-diskfs insists on filling
	// the partition, and zeros after a squashfs are harmless.
	root := io.MultiReader(bufio.NewReaderSize(s.Root, 1<<20), zeroReader{})
	if _, err := d.WritePartitionContents(RootPartition, io.LimitReader(root, l.RootSize)); err != nil {
		return fmt.Errorf("%s: write partition %d: %w", path, RootPartition, err)
	}
	return nil
}

func copyToFS(fs filesystem.FileSystem, f ESPFile) error {
	src, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := fs.OpenFile("/"+f.Name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", f.Name, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("write %s: %w", f.Name, err)
	}
	return dst.Close()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// ReadLayout reads the partition table of an appliance image back, for
// checks: the two partitions' names and byte ranges.
func ReadLayout(path string) (Layout, []string, error) {
	d, err := diskfs.Open(path, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return Layout{}, nil, err
	}
	defer d.Close()
	t, err := d.GetPartitionTable()
	if err != nil {
		return Layout{}, nil, err
	}
	gt, ok := t.(*gpt.Table)
	if !ok {
		return Layout{}, nil, errors.New("not a GPT disk")
	}
	if len(gt.Partitions) < 2 {
		return Layout{}, nil, fmt.Errorf("%d partitions, want 2", len(gt.Partitions))
	}
	var names []string
	for _, p := range gt.Partitions {
		names = append(names, p.Name)
	}
	p1, p2 := gt.Partitions[0], gt.Partitions[1]
	return Layout{
		ESPStart: int64(p1.Start) * sectorSize, ESPSize: int64(p1.End-p1.Start+1) * sectorSize,
		RootStart: int64(p2.Start) * sectorSize, RootSize: int64(p2.End-p2.Start+1) * sectorSize,
		DiskSize: d.Size,
	}, names, nil
}
