package vmrecord

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sample() *Record {
	return &Record{Version: Version, Client: "web",
		Disks: []Disk{{Dev: "vda", Size: 8 << 30, PartitionTable: "label: dos\nunit: sectors\n\n/dev/vdb1 : start=2048, size=100, type=83\n"}, {Dev: "vdb", Size: 1 << 30}},
		Filesystems: []Filesystem{
			{Where: "/", Disk: "vda", Part: 1, Type: "ext4", UUID: "0b6c…", Label: "root", Options: "errors=remount-ro"},
			{Where: "/var", VG: "deb", LV: "var", Type: "xfs"},
			{Where: "/srv/data", Disk: "vdb", Type: "ext4", Label: "my data"},
		},
		Swap:         []Swap{{VG: "deb", LV: "swap", UUID: "5w4p"}},
		VolumeGroups: []VolumeGroup{{Name: "deb", Metadata: "deb {\n\tid = \"x\"\n}\n", PVs: []PV{{Disk: "vda", Part: 2, UUID: "HfZk0v-3sKY-c1Rk-Jd2r-Hq7W-1xVb-0gYb9Q"}}}},
		BootLoader:   &BootLoader{Kind: "grub-pc", Disk: "vda"},
		Domain:       "<domain type='kvm'>\n  <name>web</name>\n</domain>\n"}
}

func TestRoundTrip(t *testing.T) {
	b, err := sample().Marshal()
	require.NoError(t, err)
	r, err := Parse(b)
	require.NoError(t, err)
	require.Equal(t, sample(), r)
	require.Equal(t, "vda1", r.Filesystems[0].Device())
	require.Equal(t, "deb/var", r.Filesystems[1].Device())
	require.Equal(t, "vdb", r.Filesystems[2].Device())
	require.Equal(t, "2 disk(s), 3 filesystem(s): / ext4 on vda1, /var xfs on deb/var, /srv/data ext4 on vdb; 1 swap area(s), 1 volume group(s), grub-pc on vda, the domain's definition", r.Summary())
	for i := 0; i < 200; i++ {
		r.Filesystems = append(r.Filesystems, Filesystem{Where: fmt.Sprintf("/srv/%03d", i), Disk: "vdb", Part: i + 1, Type: "ext4"})
	}
	require.LessOrEqual(t, len(r.Summary()), 1000, "the summary fits a done record")
	require.Equal(t, "/srv/data (ext4 on vdb, LABEL=my data)", r.Filesystems[2].String())
}

// A record comes back from a repository that a hostile guest's appliance
// may have written: every field is bounded and checked.
func TestParseRefusesHostileRecords(t *testing.T) {
	for name, mangle := range map[string]func(r *Record){
		"mount point with ..":       func(r *Record) { r.Filesystems[2].Where = "/srv/../etc" },
		"relative mount point":      func(r *Record) { r.Filesystems[2].Where = "srv/data" },
		"mount point twice":         func(r *Record) { r.Filesystems[2].Where = "/var" },
		"newline in mount point":    func(r *Record) { r.Filesystems[2].Where = "/srv/x\ny" },
		"escape in label":           func(r *Record) { r.Filesystems[2].Label = "a\x1b[2Jb" },
		"C1 control in UUID":        func(r *Record) { r.Filesystems[0].UUID = "a\u009bb" },
		"a host device as disk":     func(r *Record) { r.Filesystems[2].Disk = "../../dev/sda" },
		"unrecorded disk":           func(r *Record) { r.Filesystems[2].Disk = "vdc" },
		"disk name":                 func(r *Record) { r.Disks[1].Dev = "nvme0n1" },
		"disk twice":                func(r *Record) { r.Disks[1].Dev = "vda" },
		"option flag as type":       func(r *Record) { r.Filesystems[2].Type = "-O" },
		"lvm name with slash":       func(r *Record) { r.Filesystems[1].LV = "a/b" },
		"lvm name starting with -":  func(r *Record) { r.Filesystems[1].VG = "-ay" },
		"lv and a disk":             func(r *Record) { r.Filesystems[1].Disk = "vda" },
		"negative size":             func(r *Record) { r.Filesystems[1].Size = -1 },
		"partition number":          func(r *Record) { r.Filesystems[0].Part = 5000 },
		"huge options":              func(r *Record) { r.Filesystems[0].Options = strings.Repeat("x", maxText+1) },
		"escape in partition table": func(r *Record) { r.Disks[0].PartitionTable = "label: dos\x1b]0;x\a" },
		"escape in domain XML":      func(r *Record) { r.Domain = "<domain>\x1b[2J</domain>" },
		"huge domain XML":           func(r *Record) { r.Domain = strings.Repeat("x", MaxDomain+1) },
		"swap on an unlisted disk":  func(r *Record) { r.Swap[0] = Swap{Disk: "vdz"} },
		"swap volume name":          func(r *Record) { r.Swap[0].LV = "../x" },
		"volume group twice":        func(r *Record) { r.VolumeGroups = append(r.VolumeGroups, r.VolumeGroups[0]) },
		"volume group name":         func(r *Record) { r.VolumeGroups[0].Name = "-ff" },
		"escape in LVM metadata":    func(r *Record) { r.VolumeGroups[0].Metadata = "\x1b[2J" },
		"volume group without PVs":  func(r *Record) { r.VolumeGroups[0].PVs = nil },
		"PV on an unlisted disk":    func(r *Record) { r.VolumeGroups[0].PVs[0].Disk = "vdq" },
		"PV UUID as an option":      func(r *Record) { r.VolumeGroups[0].PVs[0].UUID = "--force" },
		"unknown boot loader":       func(r *Record) { r.BootLoader.Kind = "lilo; rm -rf /" },
		"grub-pc without a disk":    func(r *Record) { r.BootLoader.Disk = "" },
		"boot loader on other disk": func(r *Record) { r.BootLoader.Disk = "sdz" },
		"too many filesystems": func(r *Record) {
			for i := 0; i <= maxFilesystems; i++ {
				r.Filesystems = append(r.Filesystems, Filesystem{Where: "/x" + strings.Repeat("y", i), Disk: "vda", Type: "ext4"})
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := sample()
			mangle(r)
			b, err := json.Marshal(r)
			require.NoError(t, err)
			_, err = Parse(b)
			require.Error(t, err)
			_, err = r.Marshal()
			require.Error(t, err, "and the appliance never writes one")
		})
	}
	for name, b := range map[string]string{
		"not json":        "{",
		"two values":      `{"version":1} {"version":1}`,
		"another version": `{"version":2}`,
		"too large":       `{"version":1,"client":"` + strings.Repeat("a", Max) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(b))
			require.Error(t, err)
		})
	}
}
