package jobdisk

import (
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
)

// The job disk comes back from an appliance a guest may have taken over:
// every byte of it is attacker input. These tests craft the FAT32 structures
// hostctl parses (the boot sector, the FATs, directory entries) and check
// that Read fails with an error, quickly, without a panic and without
// allocating more than the disk holds.

// maxReadAlloc bounds what one Read of a crafted disk may allocate: the
// disk's size, and a little for the parser.
const maxReadAlloc = Size + 16<<20

// crafted is a job disk with a result and a log written, and the layout
// needed to damage it.
type crafted struct {
	path                                        string
	bps, spc, reserved, nfats, spf, rootCluster int64
}

func newCrafted(t *testing.T, result, log []byte) *crafted {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.img")
	j := backupJob()
	require.NoError(t, Create(p, j, nil))
	d, err := diskfs.Open(p)
	require.NoError(t, err)
	fsys, err := d.GetFilesystem(0)
	require.NoError(t, err)
	if result != nil {
		require.NoError(t, writeFile(fsys, "/"+job.FileResult, result))
	}
	if log != nil {
		require.NoError(t, writeFile(fsys, "/"+job.FileLog, log))
	}
	require.NoError(t, d.Close())
	bs := make([]byte, 512)
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.ReadAt(bs, 0)
	require.NoError(t, err)
	return &crafted{path: p,
		bps: int64(binary.LittleEndian.Uint16(bs[0x0B:])), spc: int64(bs[0x0D]),
		reserved: int64(binary.LittleEndian.Uint16(bs[0x0E:])), nfats: int64(bs[0x10]),
		spf: int64(binary.LittleEndian.Uint32(bs[0x24:])), rootCluster: int64(binary.LittleEndian.Uint32(bs[0x2C:]))}
}

func (c *crafted) fatOffset(i int64) int64 { return (c.reserved + i*c.spf) * c.bps }

func (c *crafted) clusterOffset(n int64) int64 {
	return (c.reserved+c.nfats*c.spf)*c.bps + (n-2)*c.spc*c.bps
}

func (c *crafted) writeAt(t *testing.T, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(c.path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

func (c *crafted) readAt(t *testing.T, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(c.path)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	return b
}

// entry returns the offset of the short directory entry in the root
// directory (its first cluster) whose 8.3 name starts with prefix.
func (c *crafted) entry(t *testing.T, prefix string) int64 {
	t.Helper()
	base := c.clusterOffset(c.rootCluster)
	dir := c.readAt(t, base, int(c.spc*c.bps))
	for i := 0; i+32 <= len(dir); i += 32 {
		e := dir[i : i+32]
		if e[0] != 0 && e[0] != 0xE5 && e[11] != 0x0F && strings.HasPrefix(string(e[:11]), prefix) {
			return base + int64(i)
		}
	}
	t.Fatalf("no directory entry %s… in the root directory", prefix)
	return 0
}

// setFAT sets the FAT entry of cluster n in every copy of the FAT.
func (c *crafted) setFAT(t *testing.T, n int64, v uint32) {
	for i := int64(0); i < c.nfats; i++ {
		c.writeAt(t, c.fatOffset(i)+4*n, binary.LittleEndian.AppendUint32(nil, v))
	}
}

func (c *crafted) firstCluster(t *testing.T, entry int64) int64 {
	e := c.readAt(t, entry, 32)
	return int64(binary.LittleEndian.Uint16(e[20:]))<<16 | int64(binary.LittleEndian.Uint16(e[26:]))
}

// readCrafted runs Read(p) with a time limit and reports what it
// allocated; a panic or a hang fails the test.
func readCrafted(t *testing.T, p string) (*Contents, error, uint64) {
	t.Helper()
	type res struct {
		c     *Contents
		err   error
		panic any
	}
	done := make(chan res, 1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go func() {
		var r res
		defer func() {
			r.panic = recover()
			done <- r
		}()
		r.c, r.err = Read(p)
	}()
	select {
	case r := <-done:
		runtime.ReadMemStats(&after)
		require.Nil(t, r.panic, "Read panicked")
		return r.c, r.err, after.TotalAlloc - before.TotalAlloc
	case <-time.After(20 * time.Second):
		t.Fatal("Read did not return within 20s (a loop in the cluster chain?)")
		return nil, nil, 0
	}
}

func TestReadCraftedFileSize(t *testing.T) {
	c := newCrafted(t, []byte(`{"type":"done","done":{"status":"ok"}}`+"\n"), nil)
	// The result's directory entry claims 4 GiB.
	c.writeAt(t, c.entry(t, "RESULT")+28, []byte{0xff, 0xff, 0xff, 0xff})
	_, err, alloc := readCrafted(t, c.path)
	require.ErrorContains(t, err, "result.jsonl")
	require.ErrorContains(t, err, "4294967295 bytes")
	require.Less(t, alloc, uint64(maxReadAlloc), "allocated %d bytes", alloc)
}

func TestReadCraftedClusterLoop(t *testing.T) {
	c := newCrafted(t, []byte(strings.Repeat("r", 3000)+"\n"), nil)
	first := c.firstCluster(t, c.entry(t, "RESULT"))
	c.setFAT(t, first, uint32(first)) // the chain points back at itself
	_, err, alloc := readCrafted(t, c.path)
	require.ErrorContains(t, err, "loop")
	require.Less(t, alloc, uint64(maxReadAlloc), "allocated %d bytes", alloc)
}

func TestReadCraftedChainOutOfRange(t *testing.T) {
	c := newCrafted(t, []byte(strings.Repeat("r", 3000)+"\n"), nil)
	first := c.firstCluster(t, c.entry(t, "RESULT"))
	c.setFAT(t, first, 0x0FFFFFF0) // no such cluster
	_, err, _ := readCrafted(t, c.path)
	require.ErrorContains(t, err, "cluster")
}

// TestReadCraftedHugeRootDir: a root directory chained through the whole
// data area would be parsed into a million entries.
func TestReadCraftedHugeRootDir(t *testing.T) {
	c := newCrafted(t, []byte("{}\n"), nil)
	clusters := (Size/c.bps - c.reserved - c.nfats*c.spf) / c.spc
	from := c.rootCluster
	for n := clusters / 2; n < clusters; n++ {
		c.setFAT(t, from, uint32(n))
		from = n
	}
	c.setFAT(t, from, 0x0FFFFFFF)
	_, err, alloc := readCrafted(t, c.path)
	require.ErrorContains(t, err, "root directory spans")
	require.Less(t, alloc, uint64(maxReadAlloc), "allocated %d bytes", alloc)
}

func TestReadCraftedGarbageFAT(t *testing.T) {
	c := newCrafted(t, []byte("{}\n"), []byte("log\n"))
	garbage := make([]byte, c.spf*c.bps)
	rand.New(rand.NewSource(1)).Read(garbage)
	for i := int64(0); i < c.nfats; i++ {
		c.writeAt(t, c.fatOffset(i), garbage)
	}
	_, err, alloc := readCrafted(t, c.path)
	require.Error(t, err)
	require.Less(t, alloc, uint64(maxReadAlloc), "allocated %d bytes", alloc)
}

func TestReadCraftedBootSector(t *testing.T) {
	for name, patch := range map[string]func(c *crafted){
		"sectors per FAT 4G": func(c *crafted) { c.writeAt(t, 0x24, []byte{0x00, 0xff, 0xff, 0xff}) },
		"4096-byte sectors":  func(c *crafted) { c.writeAt(t, 0x0B, []byte{0x00, 0x10}) },
		"no FAT":             func(c *crafted) { c.writeAt(t, 0x10, []byte{0}) },
		"root cluster 0":     func(c *crafted) { c.writeAt(t, 0x2C, []byte{0, 0, 0, 0}) },
		"zero":               func(c *crafted) { c.writeAt(t, 0, make([]byte, 512)) },
	} {
		t.Run(name, func(t *testing.T) {
			c := newCrafted(t, []byte("{}\n"), nil)
			patch(c)
			_, err, alloc := readCrafted(t, c.path)
			require.Error(t, err)
			require.Less(t, alloc, uint64(maxReadAlloc), "allocated %d bytes", alloc)
		})
	}
}

// TestReadCraftedCrossLinked: two files sharing one 30 MiB chain would
// bring back 60 MiB from a 48 MiB disk: the result and the log together
// never exceed the disk.
func TestReadCraftedCrossLinked(t *testing.T) {
	c := newCrafted(t, []byte(strings.Repeat("r", 30<<20)), []byte("short log\n"))
	res := c.entry(t, "RESULT")
	log := c.entry(t, "JOB     LOG")
	e := c.readAt(t, res, 32)
	// The log's entry now points at the result's chain, with its size.
	c.writeAt(t, log+20, e[20:22])
	c.writeAt(t, log+26, e[26:32])
	_, err, alloc := readCrafted(t, c.path)
	require.ErrorContains(t, err, "job.log")
	require.ErrorContains(t, err, "more than the job disk holds")
	require.Less(t, alloc, uint64(maxReadAlloc), "allocated %d bytes", alloc)
}

// TestReadLargeLog: a log that fills much of the disk is read back whole.
func TestReadLargeLog(t *testing.T) {
	want := []byte(strings.Repeat("a line of a chatty backend log\n", (40<<20)/31))
	c := newCrafted(t, []byte(`{"type":"done","done":{"status":"ok"}}`+"\n"), want)
	got, err, _ := readCrafted(t, c.path)
	require.NoError(t, err)
	require.Equal(t, len(want), len(got.Log))
	require.Equal(t, string(want), string(got.Log))
}

// FuzzRead damages the metadata at the start of a job disk (boot sector,
// FSInfo, FATs, root directory) and reads it back: an error is fine, a
// panic, a hang or an allocation beyond the disk's size is not.
func FuzzRead(f *testing.F) {
	f.Add(uint32(0x24), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(uint32(0x4000), []byte{0x03, 0x00, 0x00, 0x00})
	f.Add(uint32(0x0B), []byte{0x00, 0x02, 0x80})
	dir := f.TempDir()
	template := filepath.Join(dir, "template.img")
	j := backupJob()
	if err := Create(template, j, nil); err != nil {
		f.Fatal(err)
	}
	d, err := diskfs.Open(template)
	if err != nil {
		f.Fatal(err)
	}
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		f.Fatal(err)
	}
	if err := writeFile(fsys, "/"+job.FileResult, []byte(`{"type":"done","done":{"status":"ok"}}`+"\n")); err != nil {
		f.Fatal(err)
	}
	if err := writeFile(fsys, "/"+job.FileLog, []byte(strings.Repeat("log line\n", 1000))); err != nil {
		f.Fatal(err)
	}
	d.Close()
	img, err := os.ReadFile(template)
	if err != nil {
		f.Fatal(err)
	}
	// The metadata: everything up to a little past the root directory.
	meta := len(img)
	for meta > 0 && img[meta-1] == 0 {
		meta--
	}
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		p := filepath.Join(t.TempDir(), "job.img")
		b := append([]byte(nil), img...)
		copy(b[int(off)%meta:], patch)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, alloc := readCrafted(t, p)
		if alloc > maxReadAlloc {
			t.Fatalf("allocated %d bytes", alloc)
		}
	})
}

// A list job's VM record comes back whole; one larger than a record may be
// is refused before it is read (the guest's appliance could write up to
// the disk's size).
func TestReadVMRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{{"record", 40 << 10, true}, {"at the bound", vmrecord.Max, true}, {"beyond the bound", vmrecord.Max + 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCrafted(t, []byte(`{"type":"done","done":{"status":"ok"}}`+"\n"), nil)
			d, err := diskfs.Open(c.path)
			require.NoError(t, err)
			fsys, err := d.GetFilesystem(0)
			require.NoError(t, err)
			want := []byte(strings.Repeat("r", tc.size))
			require.NoError(t, writeFile(fsys, "/"+job.FileVMRecord, want))
			require.NoError(t, d.Close())
			got, err, _ := readCrafted(t, c.path)
			if !tc.ok {
				require.ErrorContains(t, err, "vmrecord.json claims 1048577 bytes, more than the 1048576 it may have")
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, got.VMRecord)
		})
	}
}
