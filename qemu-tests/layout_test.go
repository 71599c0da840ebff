package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// TestGuestLayoutFstab backs up a shut-off client whose / and /var are
// logical volumes of the guest's own LVM on a GPT partition and whose
// /srv/data is a second disk with XFS, with backup.mount = "fstab": the
// appliance activates the guest's volume group, reads /etc/fstab from the
// root LV and assembles the tree. The archive holds that whole tree and
// neither disk changed by a single bit.
func TestGuestLayoutFstab(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	needTools(t, "lvm", "mkfs.xfs", "sfdisk")
	ctx := context.Background()
	dir := t.TempDir()
	lay, err := fixture.MakeLayout(ctx, dir)
	require.NoError(t, err)

	name, domain := "layout", testDomain("layout")
	x, err := fixture.ClientDomain{Name: domain, Kernel: e.kernel, Initrd: e.idle, Disk: lay.Disks[0],
		DiskFormat: "raw", ConsoleLog: filepath.Join(dir, "client-console.log")}.XML()
	require.NoError(t, err)
	x, err = fixture.AddDisks(x, lay.Disks[1])
	require.NoError(t, err)
	xf := filepath.Join(dir, "client.xml")
	require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
	exec.Command("virsh", "-c", "qemu:///system", "undefine", domain).Run()
	virsh(t, "define", xf)
	t.Cleanup(func() {
		// recover starts the client: a failed check must not leave it running.
		exec.Command("virsh", "-c", "qemu:///system", "destroy", domain).Run()
		exec.Command("virsh", "-c", "qemu:///system", "undefine", domain).Run()
	})

	pass := "layout passphrase"
	stateDir := filepath.Join(dir, "state")
	cfg, err := fixture.Config{Accel: e.accel, StateDir: stateDir, ImageDir: e.imageDir, TargetRoot: filepath.Join(dir, "backup"),
		Client: name, Domain: domain, Exclude: []string{fixture.Excluded}, Passphrase: pass}.Write(filepath.Join(dir, "etc"))
	require.NoError(t, err)
	clientFile := filepath.Join(dir, "etc", "clients", name+".toml")
	f, err := os.OpenFile(clientFile, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("mount = \"fstab\"\n") // the file ends in [backup]
	require.NoError(t, err)
	require.NoError(t, f.Close())

	before := []string{fileSHA256(t, lay.Disks[0]), fileSHA256(t, lay.Disks[1])}
	code, out, _ := hostctl(t, ctx, "check", "-c", cfg, name)
	require.Equal(t, 0, code)
	require.Contains(t, out, "fstab")
	code, _, _ = hostctl(t, ctx, "run", "-c", cfg)
	jobLog, _ := filepath.Glob(filepath.Join(stateDir, "runs", "*", name, "job.log"))
	for _, l := range jobLog {
		b, _ := os.ReadFile(l)
		t.Logf("%s:\n%s", l, b)
	}
	require.Equal(t, 0, code)
	require.Equal(t, before, []string{fileSHA256(t, lay.Disks[0]), fileSHA256(t, lay.Disks[1])}, "the backup wrote to a client disk")
	entries, err := os.ReadDir(filepath.Join(stateDir, "ledger"))
	require.NoError(t, err)
	require.Empty(t, entries, "ledger entries left")
	require.Empty(t, appliances(t, stateDir, false), "appliance domain left")

	repo := filepath.Join(dir, "backup", name)
	arch := borgBackups(t, pass, dir, repo)
	require.Len(t, arch, 1)
	dst := t.TempDir()
	borg(t, pass, dst, "extract", repo+"::"+arch[0])
	// Mount point directories show the mounted filesystem's root (its
	// mtime, not the fixture's); lost+found belongs to the ext4s.
	skip := []string{"lost+found", "var/lost+found", strings.TrimPrefix(fixture.Excluded, "/")}
	want, err := fixture.Scan(lay.Want, skip...)
	require.NoError(t, err)
	got, err := fixture.Scan(dst, skip...)
	require.NoError(t, err)
	for _, mp := range []string{"var", "srv/data"} {
		require.Contains(t, got, mp)
		delete(want, mp)
		delete(got, mp)
	}
	require.Empty(t, fixture.Diff(want, got), "the archive is not the guest's assembled tree")
	require.FileExists(t, filepath.Join(dst, "var/lib/app/state.db"))
	require.FileExists(t, filepath.Join(dst, "srv/data/reports/2026-11.csv"))

	// The VM record beside it (stock borg): where each filesystem was,
	// the GPT table of the PV's disk, the guest volume group's metadata.
	var rec vmrecord.Record
	require.NoError(t, json.Unmarshal([]byte(borg(t, pass, dir, "extract", "--stdout", repo+"::vm+"+arch[0], vmrecord.File)), &rec))
	var where []string
	for _, f := range rec.Filesystems {
		where = append(where, fmt.Sprintf("%s %s %s %s", f.Where, f.Type, strings.TrimPrefix(f.Device(), "/"), f.Label))
	}
	require.Equal(t, []string{"/ ext4 guestvg/root root", "/var ext4 guestvg/var var", "/srv/data xfs vdb data"}, where)
	require.Len(t, rec.Disks, 2)
	require.Contains(t, rec.Disks[0].PartitionTable, "label: gpt")
	require.Empty(t, rec.Disks[1].PartitionTable, "a whole-disk filesystem has no table")
	require.Len(t, rec.VolumeGroups, 1)
	require.Equal(t, "guestvg", rec.VolumeGroups[0].Name)
	require.Contains(t, rec.VolumeGroups[0].Metadata, "logical_volumes {")
	require.Nil(t, rec.BootLoader, "the fixture has no boot loader")
	require.Contains(t, rec.Domain, "<name>"+domain+"</name>")

	// A recovery onto blank disks (the domain kept, its disks replaced by
	// empty ones of the same size): the record lays them out again, with
	// the partition table, the guest volume group and the filesystems'
	// UUIDs and labels, and the backup goes back onto them. A second
	// backup of the recovered VM holds the same tree.
	for _, d := range lay.Disks {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		require.NoError(t, os.Remove(d))
		require.NoError(t, os.WriteFile(d, nil, 0o644))
		require.NoError(t, os.Truncate(d, fi.Size()))
	}
	code, _, errOut := hostctl(t, ctx, "recover", "--yes", "-c", cfg, name)
	require.Equal(t, 0, code, errOut)
	requireOrder(t, errOut, name+": find client filesystems done", name+": lay out blank disks done",
		name+": create filesystems done", name+": restore done", name+": start the client…")
	exec.Command("virsh", "-c", "qemu:///system", "destroy", domain).Run()
	dump, err := exec.Command("sfdisk", "--dump", lay.Disks[0]).Output()
	require.NoError(t, err)
	partLines := func(d string) []string {
		var out []string
		for _, l := range strings.Split(d, "\n") {
			if i := strings.Index(l, " : "); i >= 0 {
				out = append(out, l[i:])
			} else if strings.HasPrefix(l, "label") {
				out = append(out, l)
			}
		}
		return out
	}
	require.Equal(t, partLines(rec.Disks[0].PartitionTable), partLines(string(dump)), "the recorded partition table, ids and all")
	blkid, err := exec.Command("blkid", "-p", "-o", "export", lay.Disks[1]).Output()
	require.NoError(t, err)
	require.Contains(t, string(blkid), "UUID="+rec.Filesystems[2].UUID+"\n")
	require.Contains(t, string(blkid), "LABEL=data\n")

	code, _, errOut = hostctl(t, ctx, "run", "-c", cfg)
	require.Equal(t, 0, code, errOut)
	arch = borgBackups(t, pass, dir, repo)
	require.Len(t, arch, 2)
	dst2 := t.TempDir()
	borg(t, pass, dst2, "extract", repo+"::"+arch[1])
	got2, err := fixture.Scan(dst2, skip...)
	require.NoError(t, err)
	for _, mp := range []string{"var", "srv/data"} {
		delete(got2, mp)
	}
	require.Empty(t, fixture.Diff(want, got2), "the recovered VM is not the backed-up one")
	var rec2 vmrecord.Record
	require.NoError(t, json.Unmarshal([]byte(borg(t, pass, dir, "extract", "--stdout", repo+"::vm+"+arch[1], vmrecord.File)), &rec2))
	for i := range rec.Filesystems {
		require.Equal(t, rec.Filesystems[i].UUID, rec2.Filesystems[i].UUID, "%s keeps its UUID", rec.Filesystems[i].Where)
	}
	require.Equal(t, rec.VolumeGroups[0].PVs, rec2.VolumeGroups[0].PVs, "the PV keeps its UUID")
}
