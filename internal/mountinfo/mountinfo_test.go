package mountinfo

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	data := `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 28 253:2 / /sysroot/snapshot ro,nosuid,nodev,noexec,relatime - ext4 /dev/vdc1 ro
31 30 0:45 /@home /sysroot/snapshot/home\040dir ro,nosuid,nodev,noexec master:3 shared:9 - btrfs /dev/vdd1 ro,space_cache=v2,subvol=/@home
`
	got, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{ID: 22, Parent: 1, Dev: "0:21", Root: "/", MountPoint: "/proc", Options: []string{"rw", "nosuid", "nodev", "noexec", "relatime"},
			FSType: "proc", Source: "proc", SuperOptions: []string{"rw"}},
		{ID: 30, Parent: 28, Dev: "253:2", Root: "/", MountPoint: "/sysroot/snapshot", Options: []string{"ro", "nosuid", "nodev", "noexec", "relatime"},
			FSType: "ext4", Source: "/dev/vdc1", SuperOptions: []string{"ro"}},
		{ID: 31, Parent: 30, Dev: "0:45", Root: "/@home", MountPoint: "/sysroot/snapshot/home dir", Options: []string{"ro", "nosuid", "nodev", "noexec"},
			FSType: "btrfs", Source: "/dev/vdd1", SuperOptions: []string{"ro", "space_cache=v2", "subvol=/@home"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
	if !got[1].HasOption("noexec") || got[0].HasOption("ro") {
		t.Error("HasOption")
	}
	for _, bad := range []string{"22 1 0:21 / /proc rw - proc\n", "x 1 0:21 / /proc rw - proc proc rw\n", "22 1 0:21 / /proc rw proc proc rw\n"} {
		if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Parse(%q) error = %v", bad, err)
		}
	}
}

func TestBelow(t *testing.T) {
	for _, tc := range []struct {
		p, dir string
		want   bool
	}{
		{"/sysroot/snapshot", "/sysroot/snapshot", true},
		{"/sysroot/snapshot/var", "/sysroot/snapshot", true},
		{"/sysroot/snapshotx", "/sysroot/snapshot", false},
		{"/sysroot/usr/local/sbin", "/sysroot/snapshot", false},
		{"/anything", "/", true},
	} {
		if got := Below(tc.p, tc.dir); got != tc.want {
			t.Errorf("Below(%q, %q) = %v", tc.p, tc.dir, got)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/sysroot/snapshot`: "/sysroot/snapshot", `/mnt/with\040space`: "/mnt/with space", `/a\134b`: `/a\b`, `/x\09`: `/x\09`, `/end\04`: `/end\04`,
		// the rootfs builder's cases (its own copy went)
		`/tmp/a\040b`: "/tmp/a b", `/x\04`: `/x\04`} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
