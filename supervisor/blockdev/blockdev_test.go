package blockdev

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
		err  string
	}{
		{"", Spec{Kind: "auto"}, ""},
		{"auto", Spec{Kind: "auto"}, ""},
		{"vda", Spec{Kind: "disk", Value: "vda"}, ""},
		{"vda2", Spec{Kind: "part", Value: "vda", Part: 2}, ""},
		{"sdb10", Spec{Kind: "part", Value: "sdb", Part: 10}, ""},
		{"nvme0n1", Spec{Kind: "disk", Value: "nvme0n1"}, ""},
		{"nvme0n1p3", Spec{Kind: "part", Value: "nvme0n1", Part: 3}, ""},
		{"LABEL=root fs", Spec{Kind: "label", Value: "root fs"}, ""},
		{"UUID=ab-cd", Spec{Kind: "uuid", Value: "ab-cd"}, ""},
		{"vg0/root", Spec{Kind: "lv", Value: "vg0", LV: "root"}, ""},
		{"/dev/vg0/root", Spec{Kind: "lv", Value: "vg0", LV: "root"}, ""},
		{"/dev/mapper/my--vg-root", Spec{Kind: "lv", Value: "my-vg", LV: "root"}, ""},
		{"/dev/disk/by-uuid/ab-cd", Spec{Kind: "uuid", Value: "ab-cd"}, ""},
		{"/dev/disk/by-label/my\\x20data", Spec{Kind: "label", Value: "my data"}, ""},
		{"vg0/-bad", Spec{}, "vg/lv"},
		{"PARTUUID=12", Spec{}, "want auto"},
		{"vda0", Spec{}, "want auto"},
		{"/dev/vda1", Spec{Kind: "part", Value: "vda", Part: 1}, ""},
		{"Vda", Spec{}, "want auto"},
	} {
		got, err := ParseSpec(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSpec(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	// Two client disks: vda (GPT: ESP, root, swap) and vdb (whole-disk xfs).
	twoDisks := []Device{
		{Dev: "vdd", ClientDev: "vda", Disk: 0, Size: 10 << 30},
		{Dev: "vdd1", ClientDev: "vda", Part: 1, Disk: 0, FSType: "vfat", Label: "EFI", Size: 512 << 20},
		{Dev: "vdd2", ClientDev: "vda", Part: 2, Disk: 0, FSType: "ext4", Label: "root", UUID: "AAAA-1", Size: 8 << 30},
		{Dev: "vdd3", ClientDev: "vda", Part: 3, Disk: 0, FSType: "swap", Size: 1 << 30},
		{Dev: "vde", ClientDev: "vdb", Disk: 1, FSType: "xfs", Label: "data", Size: 100 << 30},
	}
	single := []Device{
		{Dev: "vdd", ClientDev: "vda", Size: 1 << 30},
		{Dev: "vdd1", ClientDev: "vda", Part: 1, FSType: "swap"},
		{Dev: "vdd2", ClientDev: "vda", Part: 2, FSType: "btrfs"},
	}
	for _, tc := range []struct {
		name, spec string
		devs       []Device
		want       string // Dev
		err        string
	}{
		{"auto single", "", single, "vdd2", ""},
		{"auto largest on first disk", "auto", twoDisks, "vdd2", ""},
		{"whole disk", "vdb", twoDisks, "vde", ""},
		{"partition", "vda1", twoDisks, "vdd1", ""},
		{"label", "LABEL=data", twoDisks, "vde", ""},
		{"uuid case-insensitive", "UUID=aaaa-1", twoDisks, "vdd2", ""},
		{"no such partition", "vda9", twoDisks, "", "no such filesystem"},
		{"swap is not mountable", "vda3", twoDisks, "", "not a mountable filesystem"},
		{"partition table only", "vda", twoDisks, "", "has no filesystem"},
		{"nothing mountable", "", []Device{{Dev: "vdd", ClientDev: "vda"}}, "", "no such filesystem"},
		{"ambiguous label", "LABEL=x", []Device{{Dev: "a", ClientDev: "vda", FSType: "ext4", Label: "x"}, {Dev: "b", ClientDev: "vdb", FSType: "ext4", Label: "x"}}, "", "ambiguous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(tc.spec, tc.devs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got.Dev != tc.want {
				t.Fatalf("Select = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestMountOptions(t *testing.T) {
	for _, tc := range []struct {
		fs           string
		use          Use
		roDev        bool
		wantFS, data string
		ro           bool
	}{
		{"ext4", Snapshot, false, "ext4", "", true},
		{"ext4", Snapshot, true, "ext4", "noload", true},
		{"ext3", Snapshot, false, "ext4", "", true},
		{"ext4", Destination, false, "ext4", "", false},
		{"ext4", System, true, "ext4", "", false},
		{"xfs", Snapshot, false, "xfs", "nouuid", true},
		{"xfs", Snapshot, true, "xfs", "nouuid,norecovery", true},
		{"btrfs", Snapshot, true, "btrfs", "rescue=nologreplay", true},
		{"vfat", Snapshot, false, "vfat", "", true},
	} {
		fs, flags, data := MountOptions(Device{FSType: tc.fs}, tc.use, tc.roDev)
		if fs != tc.wantFS || data != tc.data || (flags&unix.MS_RDONLY != 0) != tc.ro {
			t.Errorf("MountOptions(%s %v roDev=%v) = %s %#x %q", tc.fs, tc.use, tc.roDev, fs, flags, data)
		}
		// A guest's filesystem never gives a program privileges or a
		// device, and runs nothing unless it is the client's own system.
		if flags&unix.MS_NOSUID == 0 || flags&unix.MS_NODEV == 0 {
			t.Errorf("MountOptions(%s %v) = %#x: want nosuid,nodev", tc.fs, tc.use, flags)
		}
		if noexec := flags&unix.MS_NOEXEC != 0; noexec != (tc.use != System) {
			t.Errorf("MountOptions(%s %v) = %#x: noexec %v", tc.fs, tc.use, flags, noexec)
		}
	}
}

func TestParseBlkid(t *testing.T) {
	m := ParseBlkid("DEVNAME=/dev/vdb2\nLABEL=my=label\nUUID=1234\nTYPE=ext4\n")
	if m["TYPE"] != "ext4" || m["LABEL"] != "my=label" || m["UUID"] != "1234" {
		t.Fatalf("ParseBlkid = %v", m)
	}
}
