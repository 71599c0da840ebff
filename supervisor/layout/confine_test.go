package layout

import (
	"strings"
	"testing"

	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

func TestCheckConfined(t *testing.T) {
	opts := func(s string) []string { return strings.Split(s, ",") }
	appliance := []mountinfo.Mount{
		{MountPoint: "/run/sb/ro", Source: "/dev/vda2", Options: opts("ro,relatime")},
		{MountPoint: "/sysroot", Source: "overlay", Options: opts("rw")},
		{MountPoint: "/sysroot/cache", Source: "/dev/vdy", Options: opts("rw,nosuid,nodev")},
	}
	client := func(src string) bool {
		return strings.HasPrefix(src, "/dev/vd") && src != "/dev/vda2" && src != "/dev/vdy"
	}
	for _, tc := range []struct {
		name   string
		mounts []mountinfo.Mount
		dir    string
		use    blockdev.Use
		err    string
	}{
		{"tree below the snapshot dir", []mountinfo.Mount{
			{MountPoint: "/sysroot/snapshot", Source: "/dev/vdc1", Options: opts("ro,nosuid,nodev,noexec,relatime")},
			{MountPoint: "/sysroot/snapshot/srv data", Source: "/dev/vdd", Options: opts("ro,nosuid,nodev,noexec")},
		}, "/sysroot/snapshot", blockdev.Snapshot, ""},
		{"a guest mount on the tools' PATH", []mountinfo.Mount{
			{MountPoint: "/sysroot/snapshot", Source: "/dev/vdc1", Options: opts("ro,nosuid,nodev,noexec")},
			{MountPoint: "/sysroot/usr/local/sbin", Source: "/dev/vdd", Options: opts("ro,nosuid,nodev,noexec")},
		}, "/sysroot/snapshot", blockdev.Snapshot, "/dev/vdd on /sysroot/usr/local/sbin is outside /sysroot/snapshot"},
		{"a sibling that shares the prefix", []mountinfo.Mount{
			{MountPoint: "/sysroot/snapshotx", Source: "/dev/vdc1", Options: opts("ro,nosuid,nodev,noexec")},
		}, "/sysroot/snapshot", blockdev.Snapshot, "is outside"},
		{"exec on a snapshot", []mountinfo.Mount{
			{MountPoint: "/sysroot/snapshot", Source: "/dev/vdc1", Options: opts("ro,nosuid,nodev")},
		}, "/sysroot/snapshot", blockdev.Snapshot, "/dev/vdc1 on /sysroot/snapshot lacks noexec"},
		{"a writable snapshot", []mountinfo.Mount{
			{MountPoint: "/sysroot/snapshot", Source: "/dev/vdc1", Options: opts("rw,nosuid,nodev,noexec")},
		}, "/sysroot/snapshot", blockdev.Snapshot, "lacks ro"},
		{"suid on a restore destination", []mountinfo.Mount{
			{MountPoint: "/sysroot/restore", Source: "/dev/vdc", Options: opts("rw,nodev,noexec")},
		}, "/sysroot/restore", blockdev.Destination, "lacks nosuid"},
		{"the client's own system may exec", []mountinfo.Mount{
			{MountPoint: "/sysroot/restore", Source: "/dev/dm-3", Options: opts("rw,nosuid,nodev")},
			{MountPoint: "/sysroot/restore/dev", Source: "devtmpfs", Options: opts("rw,nosuid")},
		}, "/sysroot/restore", blockdev.System, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckConfined(append(append([]mountinfo.Mount(nil), appliance...), tc.mounts...), func(s string) bool {
				return client(s) || strings.HasPrefix(s, "/dev/dm-")
			}, tc.dir, tc.use)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}
