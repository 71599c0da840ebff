package jobdisk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
)

// Contents is what the appliance left on a job disk.
type Contents struct {
	Result []byte // result.jsonl, nil when absent
	Log    []byte // job.log, nil when absent
	// VMRecord is the VM record a list job was asked for (FileVMRecord),
	// nil when absent; at most vmrecord.Max bytes.
	VMRecord []byte
}

// Read reads the result and log back from the job disk at p.
//
// The disk comes back from an appliance that a guest may have taken over,
// so every byte of it is attacker input, and go-diskfs trusts what it
// reads: a loop in a cluster chain makes it loop (and allocate) forever, a
// crafted boot sector makes it allocate gigabytes, a file size beyond its
// clusters makes it index out of range. So before go-diskfs sees the disk,
// the boot sector must describe a FAT32 no larger than the disk and the FAT
// must be a set of chains without loops inside the data area (checkFAT);
// the files together must fit in the disk and in their own chains, the VM
// record in vmrecord.Max; a panic in go-diskfs on what is left is an
// error.
func Read(p string) (c *Contents, err error) {
	if err := checkFAT(p); err != nil {
		return nil, fmt.Errorf("job disk %s: %w", p, err)
	}
	defer func() {
		if v := recover(); v != nil {
			c, err = nil, fmt.Errorf("job disk %s: malformed FAT32 (reading it panicked: %v)", p, v)
		}
	}()
	d, err := diskfs.Open(p, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("open job disk %s: %w", p, err)
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		return nil, fmt.Errorf("job disk %s: read FAT32: %w", p, err)
	}
	entries, err := fsys.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("job disk %s: list root directory: %w", p, err)
	}
	// Sizes first, from the directory: nothing is allocated for a file
	// before both are known to fit.
	budget := int64(Size)
	names := []string{job.FileResult, job.FileLog, job.FileVMRecord}
	limits := []int64{Size, Size, vmrecord.Max}
	sizes := make([]int64, len(names))
	for i, n := range names {
		de := lookup(entries, n)
		if de == nil {
			sizes[i] = -1 // an appliance that died early writes nothing
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("job disk %s: %s: %w", p, n, err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("job disk %s: %s is a directory", p, n)
		}
		sizes[i] = fi.Size()
		if sizes[i] > limits[i] {
			return nil, fmt.Errorf("job disk %s: %s claims %d bytes, more than the %d it may have", p, n, sizes[i], limits[i])
		}
		if sizes[i] > budget {
			return nil, fmt.Errorf("job disk %s: %s claims %d bytes: with the files before it, more than the job disk holds (%d bytes)", p, n, sizes[i], int64(Size))
		}
		budget -= sizes[i]
	}
	var c2 Contents
	for i, dst := range []*[]byte{&c2.Result, &c2.Log, &c2.VMRecord} {
		if sizes[i] < 0 {
			continue
		}
		if *dst, err = readFile(fsys, "/"+names[i], sizes[i]); err != nil {
			return nil, fmt.Errorf("job disk %s: %w", p, err)
		}
	}
	return &c2, nil
}

// lookup finds name in a directory listing (FAT names ignore case).
// go-diskfs does not wrap fs.ErrNotExist, so existence is looked up in
// the listing rather than by opening.
func lookup(entries []fs.DirEntry, name string) fs.DirEntry {
	for _, e := range entries {
		if strings.EqualFold(e.Name(), name) {
			return e
		}
	}
	return nil
}

// clusterChain is what go-diskfs's FAT files can say about their clusters.
type clusterChain interface {
	GetClusterChain() ([]uint32, error)
}

// readFile reads size bytes of name, which must be covered by the file's
// own cluster chain.
func readFile(fsys filesystem.FileSystem, name string, size int64) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	if size == 0 {
		return []byte{}, nil
	}
	cc, ok := f.(clusterChain)
	if !ok {
		return nil, fmt.Errorf("%s: no cluster chain to check its size against", name)
	}
	chain, err := cc.GetClusterChain()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if have := int64(len(chain)) * clusterBytes(fsys); size > have {
		return nil, fmt.Errorf("%s claims %d bytes, more than its %d clusters (%d bytes) hold", name, size, len(chain), have)
	}
	// One Read of exactly the file's size: go-diskfs 1.9.4 returns bytes
	// past the end of the file when a Read starts inside a cluster, so the
	// small reads of io.ReadAll would bring back NULs after the data.
	data := make([]byte, size)
	if _, err := io.ReadFull(io.LimitReader(f, size), data); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// layout is the geometry of a FAT32 as its boot sector gives it.
type layout struct {
	bytesPerSector, sectorsPerCluster int64
	reserved, fats, sectorsPerFAT     int64
	totalSectors, rootCluster         int64
	clusters                          int64 // in the data area
}

// clusterBytes is the cluster size of a go-diskfs FAT filesystem.
func clusterBytes(fsys filesystem.FileSystem) int64 {
	if cs, ok := fsys.(interface{ BytesPerCluster() int }); ok {
		return int64(cs.BytesPerCluster())
	}
	return 0
}

// checkFAT checks the boot sector and the FATs of the image at p (see Read).
func checkFAT(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != Size {
		return fmt.Errorf("%d bytes, not the %d hostctl made", fi.Size(), int64(Size))
	}
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 0); err != nil {
		return fmt.Errorf("boot sector: %w", err)
	}
	l, err := parseBootSector(bs)
	if err != nil {
		return fmt.Errorf("boot sector: %w", err)
	}
	fatBytes := l.sectorsPerFAT * l.bytesPerSector
	fat := make([]byte, fatBytes)
	if _, err := f.ReadAt(fat, l.reserved*l.bytesPerSector); err != nil {
		return fmt.Errorf("read the FAT: %w", err)
	}
	if err := checkChains(fat, l); err != nil {
		return err
	}
	// go-diskfs requires the copies to agree; checking the first is then
	// enough, and a mismatch is its error to give.
	return nil
}

// parseBootSector reads a FAT32 boot sector and refuses a geometry that
// does not fit a job disk: that bounds what parsing the rest allocates.
func parseBootSector(bs []byte) (layout, error) {
	u16 := func(off int) int64 { return int64(binary.LittleEndian.Uint16(bs[off:])) }
	u32 := func(off int) int64 { return int64(binary.LittleEndian.Uint32(bs[off:])) }
	l := layout{bytesPerSector: u16(0x0B), sectorsPerCluster: int64(bs[0x0D]), reserved: u16(0x0E),
		fats: int64(bs[0x10]), totalSectors: u32(0x20), sectorsPerFAT: u32(0x24), rootCluster: u32(0x2C)}
	spc := l.sectorsPerCluster
	switch {
	case l.bytesPerSector != 512:
		return l, fmt.Errorf("%d bytes per sector, not 512", l.bytesPerSector)
	case spc == 0 || spc > 128 || spc&(spc-1) != 0:
		return l, fmt.Errorf("%d sectors per cluster", spc)
	case l.fats != 2:
		return l, fmt.Errorf("%d FATs, not 2", l.fats)
	case l.reserved < 1 || u16(0x30) >= l.reserved:
		return l, fmt.Errorf("%d reserved sectors with the FSInfo sector at %d", l.reserved, u16(0x30))
	case l.totalSectors == 0 || l.totalSectors*512 > Size:
		return l, fmt.Errorf("%d sectors on a disk of %d bytes", l.totalSectors, int64(Size))
	}
	// The FAT needs 4 bytes per cluster; one larger than a disk of this
	// size with one-sector clusters could need is not a job disk's.
	if maxFAT := (l.totalSectors + 2) * 4; l.sectorsPerFAT == 0 || l.sectorsPerFAT*512 > maxFAT+511 {
		return l, fmt.Errorf("%d sectors per FAT", l.sectorsPerFAT)
	}
	dataStart := l.reserved + l.fats*l.sectorsPerFAT
	if dataStart >= l.totalSectors {
		return l, errors.New("no room for data after the FATs")
	}
	l.clusters = (l.totalSectors - dataStart) / spc
	if fatEntries := l.sectorsPerFAT * 512 / 4; l.clusters+2 > fatEntries {
		l.clusters = fatEntries - 2 // clusters the FAT cannot describe are unused
	}
	if l.rootCluster < 2 || l.rootCluster > l.clusters+1 {
		return l, fmt.Errorf("root directory at cluster %d of %d", l.rootCluster, l.clusters)
	}
	return l, nil
}

// FAT32 entry values (as go-diskfs reads them: the whole 32 bits).
const (
	fatFree = 0
	fatBad  = 0x0FFFFFF7
)

func isEOC(v uint32) bool { return v&0x0FFFFFF8 == 0x0FFFFFF8 }

// checkChains checks a FAT: every entry of a data cluster is free, bad,
// an end of chain or a pointer to another allocated data cluster; the
// entries past the data area are free; no chain loops; the root directory
// is allocated. go-diskfs follows chains without any of these checks.
func checkChains(fat []byte, l layout) error {
	n := int64(len(fat) / 4)
	entry := func(i int64) uint32 { return binary.LittleEndian.Uint32(fat[4*i:]) }
	last := l.clusters + 1 // the highest data cluster
	for i := int64(2); i < n; i++ {
		v := entry(i)
		switch {
		case i > last:
			if v != fatFree {
				return fmt.Errorf("FAT entry of cluster %d, past the data area (%d clusters), is in use", i, l.clusters)
			}
		case v == fatFree, v == fatBad, isEOC(v):
		case int64(v) < 2 || int64(v) > last:
			return fmt.Errorf("the cluster chain at %d points to cluster %d, outside the data area (2..%d)", i, v, last)
		case entry(int64(v)) == fatFree || entry(int64(v)) == fatBad:
			return fmt.Errorf("the cluster chain at %d continues in cluster %d, which is not allocated", i, v)
		}
	}
	if v := entry(l.rootCluster); v == fatFree || v == fatBad {
		return fmt.Errorf("the root directory's cluster %d is not allocated", l.rootCluster)
	}
	// Every cluster has one successor, so the chains form a functional
	// graph: walk each, marking clusters on the current walk (1) and done
	// (2); reaching one of the current walk is a loop.
	state := make([]uint8, last+1)
	for start := int64(2); start <= last; start++ {
		var walk []int64
		c := start
		for c >= 2 && c <= last && state[c] == 0 {
			state[c] = 1
			walk = append(walk, c)
			v := entry(c)
			if v == fatFree || v == fatBad || isEOC(v) {
				break
			}
			c = int64(v)
		}
		if c >= 2 && c <= last && state[c] == 1 && !endsAt(entry(c)) {
			return fmt.Errorf("the cluster chain through cluster %d is a loop", c)
		}
		for _, w := range walk {
			state[w] = 2
		}
	}
	// go-diskfs parses the whole root directory into memory: a root
	// directory over the whole data area would be a million entries.
	length := int64(0)
	for c := l.rootCluster; ; c = int64(entry(c)) {
		length++
		if v := entry(c); endsAt(v) {
			break
		}
	}
	if size := length * l.sectorsPerCluster * l.bytesPerSector; size > maxRootDir {
		return fmt.Errorf("the root directory spans %d bytes (a job disk's holds a handful of files: at most %d)", size, maxRootDir)
	}
	return nil
}

// maxRootDir bounds the root directory: job.toml, the secrets, the result
// and the log, with their long names, fill a few hundred bytes.
const maxRootDir = 64 << 10

// endsAt says whether a FAT entry ends its chain (the walk stopped there,
// not because it came round again).
func endsAt(v uint32) bool { return v == fatFree || v == fatBad || isEOC(v) }
