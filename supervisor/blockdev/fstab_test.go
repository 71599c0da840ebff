package blockdev

import (
	"reflect"
	"strings"
	"testing"
)

const guestFstab = `# /etc/fstab: static file system information.
/dev/mapper/guestvg-root  /          ext4  errors=remount-ro 0 1
/dev/guestvg/var          /var       ext4  defaults          0 2
LABEL=data                /srv/data  xfs   defaults,nofail   0 2
UUID=0a1b-2c3d            /boot/efi  vfat  umask=0077        0 1
/dev/disk/by-uuid/ffff-1  /home/my\040docs btrfs subvol=@docs 0 0
/dev/mapper/guestvg-swap  none       swap  sw                0 0
tmpfs                     /tmp       tmpfs defaults          0 0
proc                      /proc      proc  defaults          0 0
server:/export            /mnt/nfs   nfs   defaults          0 0
//nas/share               /mnt/smb   cifs  credentials=/x    0 0
/srv/data/www             /var/www   none  bind              0 0
/dev/vdc1                 /mnt/usb   ext4  noauto            0 0
/images/disk.img          /mnt/img   ext4  loop              0 0
`

func TestFstabPlan(t *testing.T) {
	entries, err := ParseFstab(guestFstab)
	if err != nil {
		t.Fatal(err)
	}
	plan, skipped, err := FstabPlan(entries)
	if err != nil {
		t.Fatal(err)
	}
	want := []MountPoint{
		{Where: "/", What: "/dev/mapper/guestvg-root", FSType: "ext4"},
		{Where: "/var", What: "/dev/guestvg/var", FSType: "ext4"},
		{Where: "/srv/data", What: "LABEL=data", FSType: "xfs", Optional: true},
		{Where: "/boot/efi", What: "UUID=0a1b-2c3d", FSType: "vfat"},
		{Where: "/home/my docs", What: "/dev/disk/by-uuid/ffff-1", FSType: "btrfs", Subvol: "@docs"},
	}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan:\n got %+v\nwant %+v", plan, want)
	}
	if len(skipped) != 8 {
		t.Errorf("skipped %d entries, want 8: %q", len(skipped), skipped)
	}
	for _, s := range []string{"(type swap)", "(type nfs)", "(type cifs)", "(bind mount)", "(noauto)", "(loop image)", "(type tmpfs)"} {
		if !strings.Contains(strings.Join(skipped, "\n"), s) {
			t.Errorf("skipped lacks %s: %q", s, skipped)
		}
	}
}

func TestFstabErrors(t *testing.T) {
	for _, tc := range []struct{ fstab, err string }{
		{"/dev/vda1 /\n", "line 1"},
		{"PARTUUID=1234 / ext4 defaults 0 1\n", "line 1"},
		{"/dev/vda1 /var ext4 defaults 0 1\n", `no filesystem for "/"`},
		{"/dev/vda1 / ext4 defaults\n/dev/vda2 / ext4 defaults\n", "twice"},
	} {
		entries, err := ParseFstab(tc.fstab)
		if err == nil {
			_, _, err = FstabPlan(entries)
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want %q", tc.fstab, err, tc.err)
		}
	}
}

func TestOrderMounts(t *testing.T) {
	got, err := OrderMounts([]MountPoint{{Where: "/var/lib/db", What: "vg/db"}, {Where: "/var/", What: "vg/var"}, {Where: "/", What: "vg/root"}, {Where: "/home", What: "LABEL=home"}})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range got {
		order = append(order, m.Where)
	}
	if strings.Join(order, " ") != "/ /var /home /var/lib/db" {
		t.Errorf("order %v", order)
	}
	if _, err := OrderMounts([]MountPoint{{Where: "var", What: "x"}}); err == nil {
		t.Error("relative mount point accepted")
	}
}

func TestSplitDMName(t *testing.T) {
	for _, tc := range []struct{ in, vg, lv string }{
		{"vg0-root", "vg0", "root"},
		{"my--vg-root--fs", "my-vg", "root-fs"},
		{"guestvg-var", "guestvg", "var"},
	} {
		vg, lv, ok := SplitDMName(tc.in)
		if !ok || vg != tc.vg || lv != tc.lv {
			t.Errorf("SplitDMName(%q) = %q %q %v", tc.in, vg, lv, ok)
		}
		if DMName(vg, lv) != tc.in {
			t.Errorf("DMName(%q, %q) = %q", vg, lv, DMName(vg, lv))
		}
	}
	if _, _, ok := SplitDMName("nodash"); ok {
		t.Error("nodash split")
	}
}
