package layout

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

func recorded() ([]blockdev.Device, *vmrecord.Record) {
	devs := []blockdev.Device{
		{Dev: "vdb", ClientDev: "vda", Size: 8 << 30},
		{Dev: "vdb1", ClientDev: "vda", Part: 1, FSType: "ext4", UUID: "r-uuid", Label: "root", Size: 7 << 30},
		{Dev: "vdb2", ClientDev: "vda", Part: 2, FSType: "LVM2_member"},
		{Dev: "vdc", ClientDev: "vdb", Disk: 1, FSType: "ext4", UUID: "d-uuid", Label: "data", Size: 1 << 30},
		{Dev: "dm-0", VG: "deb", LV: "var", FSType: "xfs", UUID: "v-uuid"},
		{Dev: "dm-1", VG: "deb", LV: "swap", FSType: "swap", UUID: "s-uuid", Size: 1 << 20},
	}
	plan := []Planned{{Where: "/", Dev: devs[1]}, {Where: "/var", Dev: devs[4]}, {Where: "/srv/data", Dev: devs[3]}}
	fstab := []blockdev.FstabEntry{{File: "/", Options: []string{"errors=remount-ro"}}, {File: "/srv/data/", Options: []string{"noatime", "nofail"}}}
	return devs, Record("web", devs, plan, fstab)
}

func TestRecord(t *testing.T) {
	_, r := recorded()
	require.NoError(t, r.Check())
	require.Equal(t, []vmrecord.Disk{{Dev: "vda", Size: 8 << 30}, {Dev: "vdb", Size: 1 << 30}}, r.Disks)
	require.Equal(t, []vmrecord.Filesystem{
		{Where: "/", Disk: "vda", Part: 1, Type: "ext4", UUID: "r-uuid", Label: "root", Size: 7 << 30, Options: "errors=remount-ro"},
		{Where: "/var", VG: "deb", LV: "var", Type: "xfs", UUID: "v-uuid"},
		{Where: "/srv/data", Disk: "vdb", Type: "ext4", UUID: "d-uuid", Label: "data", Size: 1 << 30, Options: "noatime,nofail"},
	}, r.Filesystems)
	require.Equal(t, []vmrecord.Swap{{VG: "deb", LV: "swap", UUID: "s-uuid", Size: 1 << 20}}, r.Swap)
}

// The blank VM's filesystems have other UUIDs and labels (and its fstab
// may say anything): a recorded filesystem is found where it was.
func TestPlanRecorded(t *testing.T) {
	devs, r := recorded()
	blank := append([]blockdev.Device(nil), devs...)
	for i := range blank {
		blank[i].UUID, blank[i].Label = "blank", "blank"
	}
	plan, err := PlanRecorded(blank, r, RecordedOpts{})
	require.NoError(t, err)
	require.Equal(t, []string{"/", "/var", "/srv/data"}, []string{plan[0].Where, plan[1].Where, plan[2].Where})
	require.Equal(t, []string{"vdb1", "dm-0", "vdc"}, []string{plan[0].Dev.Dev, plan[1].Dev.Dev, plan[2].Dev.Dev})
	require.Equal(t, "blank", plan[2].Dev.UUID, "without --mkfs the device is taken as it is")

	// The data disk is empty: the recovery stops, naming the mount point.
	empty := append([]blockdev.Device(nil), blank...)
	empty[3].FSType = ""
	_, err = PlanRecorded(empty, r, RecordedOpts{})
	require.ErrorContains(t, err, "/srv/data (ext4 on vdb, LABEL=data, UUID=d-uuid): vdb holds no filesystem (--mkfs creates ext4 on it)")
	// --mkfs plans the recorded filesystem, with its UUID and label.
	plan, err = PlanRecorded(empty, r, RecordedOpts{MkFS: true})
	require.NoError(t, err)
	require.Equal(t, blockdev.Device{Dev: "vdc", ClientDev: "vdb", Disk: 1, FSType: "ext4", UUID: "d-uuid", Label: "data", Size: 1 << 30}, plan[2].Dev)

	// Another filesystem type, a missing disk, a missing volume.
	other := append([]blockdev.Device(nil), blank...)
	other[3].FSType = "xfs"
	_, err = PlanRecorded(other, r, RecordedOpts{})
	require.ErrorContains(t, err, "vdb holds xfs")
	_, err = PlanRecorded(blank[:3], r, RecordedOpts{MkFS: true})
	require.ErrorContains(t, err, "/var (xfs on deb/var, UUID=v-uuid): the VM has no deb/var")
	require.ErrorContains(t, err, "/srv/data (ext4 on vdb, LABEL=data, UUID=d-uuid): the VM has no vdb")
}

// A record read back from a repository is attacker input: its order
// cannot put a filesystem over another's files, and two mount points on
// one device are refused.
func TestPlanRecordedHostileRecord(t *testing.T) {
	devs, r := recorded()
	r.Filesystems[0], r.Filesystems[2] = r.Filesystems[2], r.Filesystems[0]
	plan, err := PlanRecorded(devs, r, RecordedOpts{})
	require.NoError(t, err)
	require.Equal(t, "/", plan[0].Where, "the root is mounted first whatever the record's order")

	_, r = recorded()
	r.Filesystems[2].Disk, r.Filesystems[2].Part = "vda", 1
	_, err = PlanRecorded(devs, r, RecordedOpts{})
	require.ErrorContains(t, err, "puts / and /srv/data on the same device vda1")

	_, r = recorded()
	r.Filesystems = r.Filesystems[1:]
	_, err = PlanRecorded(devs, r, RecordedOpts{})
	require.ErrorContains(t, err, "no root filesystem")
}

// Blank disks (nothing on them) are laid out by the recovery: their
// filesystems are left out of the first plan and made in the second.
func TestPlanRecordedBlankDisks(t *testing.T) {
	devs, r := recorded()
	r.VolumeGroups = []vmrecord.VolumeGroup{{Name: "deb", Metadata: "deb {}", PVs: []vmrecord.PV{{Disk: "vda", Part: 2, UUID: "HfZk0v-3sKY-c1Rk-Jd2r-Hq7W-1xVb-0gYb9Q"}}}}
	blankDisks := []blockdev.Device{{Dev: "vdb", ClientDev: "vda"}, {Dev: "vdc", ClientDev: "vdb", Disk: 1}}
	plan, err := PlanRecorded(blankDisks, r, RecordedOpts{Blank: map[string]bool{"vda": true, "vdb": true}})
	require.NoError(t, err)
	require.Empty(t, plan, "everything is on blank disks")
	_, err = PlanRecorded(blankDisks, r, RecordedOpts{Blank: map[string]bool{"vda": true}})
	require.ErrorContains(t, err, "/srv/data (ext4 on vdb, LABEL=data, UUID=d-uuid): vdb holds no filesystem", "a disk that is not blank is what it is")

	// Laid out: new partitions and volumes without filesystems, made
	// with the recorded type, UUID and label; another device is not.
	laid := append([]blockdev.Device(nil), devs...)
	for i := range laid {
		if laid[i].ClientDev == "vda" || laid[i].VG == "deb" {
			laid[i].FSType, laid[i].UUID, laid[i].Label = "", "", ""
		}
	}
	laid[2].FSType = "LVM2_member"
	plan, err = PlanRecorded(laid, r, RecordedOpts{Fresh: map[string]bool{"vda1": true, "vda2": true, "deb/var": true, "deb/swap": true}})
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, false}, []bool{plan[0].MkFS, plan[1].MkFS, plan[2].MkFS})
	require.Equal(t, blockdev.Device{Dev: "vdb1", ClientDev: "vda", Part: 1, FSType: "ext4", UUID: "r-uuid", Label: "root", Size: 7 << 30}, plan[0].Dev)

	// A volume group on a blank and a used disk is not laid out.
	r.VolumeGroups[0].PVs = append(r.VolumeGroups[0].PVs, vmrecord.PV{Disk: "vdb", UUID: "HfZk0v-3sKY-c1Rk-Jd2r-Hq7W-1xVb-0gYb9R"})
	_, err = PlanRecorded(devs, r, RecordedOpts{Blank: map[string]bool{"vda": true}})
	require.ErrorContains(t, err, "volume group deb lies on blank and on used disks")
}
