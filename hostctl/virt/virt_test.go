package virt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

func TestApplianceXMLGolden(t *testing.T) {
	spec := ApplianceSpec{
		Name: "hostctl-backup-web-20261125T220000Z", Accel: "tcg", MemoryMiB: 1024, VCPUs: 2,
		Kernel: "/var/lib/hostctl/image/vmlinuz", Initrd: "/var/lib/hostctl/image/initramfs.img",
		Cmdline: Cmdline("", true),
		Disks: []DiskSpec{
			{Path: "/var/lib/hostctl/image/appliance.img", Format: "raw", Serial: "sb-appliance", Target: "vda", ReadOnly: true},
			{Path: "/run/job.img", Format: "raw", Serial: "sb-job", Target: "vdb"},
			{Path: "/run/vda.appliance.qcow2", Format: "qcow2", Serial: "sb-disk0", Target: "vdc"},
			{Path: "/dev/vg0/hostctl-cache", Format: "raw", Block: true, Serial: "sb-cache", Target: "vdy"},
		},
		Shares:       []ShareSpec{{Dir: "/srv/backup/web", Tag: "sbtarget"}},
		ConsoleLog:   "/run/console.log",
		ProgressPipe: "/run/progress",
		ProgressPort: "org.snapshot-backup.progress",
	}
	x, err := ApplianceXML(spec)
	require.NoError(t, err)
	testutil.Golden(t, "appliance.xml", x)
	// Not a file: an appliance that floods its progress port must not fill
	// the host's disk.
	require.Contains(t, x, `<channel type="pipe">`)
	require.NotContains(t, x, `<channel type="file">`)
	// As root on a host whose qemu.conf says user = "libvirt-qemu" (seen
	// on the Debian hypervisor VM: "Cannot access storage file
	// …/vdb.appliance.qcow2 (as uid:64055, gid:64055): Permission denied").
	require.Contains(t, x, `<seclabel type="static" model="dac" relabel="no">`+"\n    <label>+0:+0</label>")

	spec.Accel = "kvm"
	x, err = ApplianceXML(spec)
	require.NoError(t, err)
	require.Contains(t, x, `<domain type="kvm">`)
}

func TestApplianceXMLRejects(t *testing.T) {
	for name, d := range map[string]DiskSpec{
		"no serial":   {Path: "/a", Format: "raw", Target: "vda"},
		"long serial": {Path: "/a", Format: "raw", Target: "vda", Serial: strings.Repeat("x", 21)},
	} {
		_, err := ApplianceXML(ApplianceSpec{Name: "x", Disks: []DiskSpec{d}})
		require.Error(t, err, name)
	}
	_, err := ApplianceXML(ApplianceSpec{Name: "x", Disks: []DiskSpec{
		{Path: "/a", Serial: "a", Target: "vda"}, {Path: "/b", Serial: "b", Target: "vda"}}})
	require.ErrorContains(t, err, "used twice")
}

func TestCmdlineHasNoSecretsAndConsole(t *testing.T) {
	require.Equal(t, "console=ttyS0 panic=-1 8250.nr_uarts=1 quiet", Cmdline("", true))
	require.Equal(t, "console=ttyS0 panic=-1 8250.nr_uarts=1 sb.mode=shell", Cmdline("shell", false))
}

const clientXML = `<domain type='qemu'><name>web</name><devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/vms/web.qcow2'/><target dev='vda' bus='virtio'/></disk>
  <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg0/web-data'/><target dev='vdb' bus='virtio'/></disk>
  <disk type='file' device='cdrom'><source file='/iso/debian.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
  <disk type='file' device='disk'><source file='/var/lib/vms/ro.img'/><target dev='vdc' bus='virtio'/><readonly/></disk>
</devices></domain>`

func TestClientDisks(t *testing.T) {
	disks, err := ClientDisks(clientXML)
	require.NoError(t, err)
	require.Equal(t, []ClientDisk{
		{Target: "vda", Path: "/var/lib/vms/web.qcow2", Format: "qcow2"},
		{Target: "vdb", Path: "/dev/vg0/web-data", Format: "raw", Block: true},
		{Target: "vdc", Path: "/var/lib/vms/ro.img", Format: "raw", ReadOnly: true},
	}, disks)

	_, err = ClientDisks(`<domain type='qemu'><name>n</name><devices><disk type='network' device='disk'><source protocol='rbd' name='p/i'/><target dev='vda'/></disk></devices></domain>`)
	require.ErrorContains(t, err, "only file and block sources")
}

func TestSnapshotXML(t *testing.T) {
	disks, err := ClientDisks(clientXML)
	require.NoError(t, err)
	x, err := SnapshotXML("hostctl-r1", disks, map[string]string{"vda": "/state/vda.snapshot.qcow2"})
	require.NoError(t, err)
	testutil.Golden(t, "snapshot.xml", x)
}

func TestReplaceDiskSource(t *testing.T) {
	onOverlay := strings.Replace(clientXML, "/var/lib/vms/web.qcow2", "/state/vda.snapshot.qcow2", 1)
	fixed, err := ReplaceDiskSource(onOverlay, "vda", "/var/lib/vms/web.qcow2", "qcow2")
	require.NoError(t, err)
	disks, err := ClientDisks(fixed)
	require.NoError(t, err)
	require.Equal(t, "/var/lib/vms/web.qcow2", disks[0].Path)
	require.Equal(t, "qcow2", disks[0].Format)
	_, err = ReplaceDiskSource(clientXML, "vdz", "/x", "raw")
	require.ErrorContains(t, err, "no disk vdz")
}
