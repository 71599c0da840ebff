package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

func TestPlanLayout(t *testing.T) {
	tests := []struct {
		name             string
		esp, root        int64
		wantESP, wantRoo int64
	}{
		{"small ESP content gets the minimum (64 MiB is bad for go-diskfs, so 65)", 15 * mib, 90*mib + 1, 65 * mib, 91 * mib},
		{"root rounded up to MiB", 1, 5 * mib, 65 * mib, 5 * mib},
		{"exact MiB root unchanged", 1, 7 * mib, 65 * mib, 7 * mib},
		{"large ESP content: +25% +8 MiB", 80 * mib, mib, 108 * mib, mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := PlanLayout(tt.esp, tt.root)
			if l.ESPSize != tt.wantESP || l.RootSize != tt.wantRoo {
				t.Errorf("ESP %d MiB root %d MiB, want %d and %d", l.ESPSize/mib, l.RootSize/mib, tt.wantESP/mib, tt.wantRoo/mib)
			}
			for _, v := range []int64{l.ESPStart, l.ESPSize, l.RootStart, l.RootSize, l.DiskSize} {
				if v%mib != 0 {
					t.Errorf("%d is not a whole MiB: %+v", v, l)
				}
			}
			if l.RootStart != l.ESPStart+l.ESPSize || l.DiskSize != l.RootStart+l.RootSize+mib {
				t.Errorf("overlap or no room for the backup GPT: %+v", l)
			}
			if !fat32Fits(l.ESPSize) {
				t.Errorf("ESP size %d MiB gives an invalid FAT32", l.ESPSize/mib)
			}
		})
	}
}

func TestFat32Fits(t *testing.T) {
	// 64 MiB is one of the sizes where go-diskfs 1.9.4 writes 129024
	// clusters but FAT entries for only 129022 (measured with fsck.vfat).
	if fat32Fits(64 * mib) {
		t.Error("64 MiB reported as fitting")
	}
	if !fat32Fits(65 * mib) {
		t.Error("65 MiB reported as not fitting")
	}
}

// TestWriteDisk builds appliance disks for a spread of ESP sizes from fake
// kernel, initramfs and squashfs, and checks them with fsck.vfat, sfdisk and
// go-diskfs reading back.
func TestWriteDisk(t *testing.T) {
	for _, tool := range []string{"fsck.vfat", "sfdisk"} {
		testutil.NeedTool(t, tool, "apt-get install dosfstools fdisk")
	}
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	initrd := filepath.Join(dir, "initrd")
	os.WriteFile(kernel, bytes.Repeat([]byte("K"), 3*int(mib)+17), 0o644)
	os.WriteFile(initrd, bytes.Repeat([]byte("I"), 2*int(mib)+5), 0o644)
	squash := append([]byte("hsqs"), bytes.Repeat([]byte{0xAB}, int(mib)+100)...)

	for _, espMiB := range []int64{65, 66, 70, 97, 130} {
		t.Run(fmt.Sprintf("%dMiB", espMiB), func(t *testing.T) {
			l := PlanLayout(1, int64(len(squash)))
			l.ESPSize = espMiB * mib
			if !fat32Fits(l.ESPSize) {
				t.Skipf("%d MiB is a size go-diskfs gets wrong; PlanLayout never picks it", espMiB)
			}
			l.RootStart = l.ESPStart + l.ESPSize
			l.DiskSize = l.RootStart + l.RootSize + mib
			img := filepath.Join(t.TempDir(), "appliance.img")
			err := WriteDisk(img, DiskSpec{
				Layout:   l,
				ESPFiles: []ESPFile{{Name: ESPKernel, Path: kernel}, {Name: ESPInitramfs, Path: initrd}},
				Root:     bytes.NewReader(squash),
				DiskGUID: guidFrom("seed", "disk"), ESPGUID: guidFrom("seed", "esp"), RootGUID: guidFrom("seed", "root"),
			})
			if err != nil {
				t.Fatal(err)
			}
			checkDisk(t, img, l, map[string]string{ESPKernel: kernel, ESPInitramfs: initrd}, squash)
		})
	}
}

// checkDisk verifies an appliance image: GPT per sfdisk, FAT32 per fsck.vfat,
// ESP files and root bytes per go-diskfs.
func checkDisk(t *testing.T, img string, l Layout, espFiles map[string]string, root []byte) {
	t.Helper()
	ctx := context.Background()
	out, err := execx.Output(ctx, "sfdisk", "--json", img)
	if err != nil {
		t.Fatal(err)
	}
	var sf struct {
		PartitionTable struct {
			Label      string `json:"label"`
			Partitions []struct {
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
				Type  string `json:"type"`
				Name  string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &sf); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	pt := sf.PartitionTable
	if pt.Label != "gpt" || len(pt.Partitions) != 2 {
		t.Fatalf("sfdisk: %s", out)
	}
	p1, p2 := pt.Partitions[0], pt.Partitions[1]
	if p1.Name != ESPLabel || p1.Type != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" || p1.Start*512 != l.ESPStart || p1.Size*512 != l.ESPSize {
		t.Errorf("partition 1: %+v", p1)
	}
	if p2.Name != RootName || p2.Start*512 != l.RootStart || p2.Size*512 != l.RootSize {
		t.Errorf("partition 2: %+v", p2)
	}
	// sfdisk --verify finds overlaps and a bad backup GPT.
	if out, err := execx.Output(ctx, "sfdisk", "--verify", img); err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}

	// fsck.vfat on the ESP, cut out of the image.
	esp := filepath.Join(t.TempDir(), "esp.img")
	f, _ := os.Open(img)
	defer f.Close()
	w, _ := os.Create(esp)
	if _, err := io.Copy(w, io.NewSectionReader(f, l.ESPStart, l.ESPSize)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if out, err := execx.Output(ctx, "fsck.vfat", "-n", esp); err != nil {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}

	// go-diskfs reads the files and the label back.
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(ESPPartition)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(fs.Label()); got != ESPLabel {
		t.Errorf("FAT label %q", got)
	}
	for name, src := range espFiles {
		want, _ := os.ReadFile(src)
		got, err := fs.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ESP %s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	if root != nil {
		var buf bytes.Buffer
		if _, err := d.ReadPartitionContents(RootPartition, &buf); err != nil {
			t.Fatal(err)
		}
		got := buf.Bytes()
		if !bytes.Equal(got[:len(root)], root) || bytes.Count(got[len(root):], []byte{0}) != len(got)-len(root) {
			t.Error("root partition is not the squashfs followed by zeros")
		}
	}
	lay, names, err := ReadLayout(img)
	if err != nil || lay != l || names[0] != ESPLabel || names[1] != RootName {
		t.Errorf("ReadLayout = %+v %v %v, want %+v", lay, names, err, l)
	}
}
