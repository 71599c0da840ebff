package virt

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirtxml"
)

// A recorded domain XML comes back from a repository that a hostile
// guest's appliance may have written. The rebuilt definition must name no
// host path but the disks made for it and its console log, and the plan
// must say what was left out.
func TestRebuildDomainHostile(t *testing.T) {
	rec, err := os.ReadFile("testdata/hostile-domain.xml")
	require.NoError(t, err)
	disks := []NewDisk{{Target: "vda", Path: "/srv/recover/web-1-vda.qcow2", Format: "qcow2"},
		{Target: "vdb", Path: "/srv/recover/web-1-vdb.qcow2", Format: "qcow2"}}
	rb, err := RebuildDomain(string(rec), "web-1-new", disks, "/srv/recover/web-1.console.log")
	require.NoError(t, err)

	// Every path in the definition is one hostctl chose.
	paths := regexp.MustCompile(`(?:['"]|>)(/[^'"<]*)`).FindAllStringSubmatch(rb.XML, -1)
	require.NotEmpty(t, paths)
	allowed := []string{disks[0].Path, disks[1].Path, "/srv/recover/web-1.console.log", "/dev/urandom"}
	for _, p := range paths {
		require.Contains(t, allowed, p[1], "a host path from the record: %s", rb.XML)
	}
	for _, bad := range []string{"/etc/", "/root/", "/dev/sd", "/tmp/", "/run/", "vmlinuz", "other-vm", "nvram", "10.0.0.", "0.0.0.0",
		"hostdev", "filesystem", "hostroot", "tap-evil", "eth0", "com.evil", "tpm", "shmem", "seclabel", "commandline", "qemu:arg",
		"cpuset", "cputune", "memoryBacking", "<kernel", "<initrd", "<loader", "<emulator", "vdc", "cdrom", "Haswell", "vmx"} {
		require.NotContains(t, rb.XML, bad)
	}
	var got libvirtxml.Domain
	require.NoError(t, got.Unmarshal(rb.XML))
	require.Equal(t, "web-1-new", got.Name)
	require.Equal(t, "0b8e5a2c-3f1d-4d7e-9a41-1c2b3d4e5f60", got.UUID)
	require.Equal(t, "kvm", got.Type)
	require.Equal(t, uint(2048), got.Memory.Value)
	require.Equal(t, uint(2), got.VCPU.Value)
	require.Equal(t, "efi", got.OS.Firmware)
	require.Equal(t, "pc-q35-7.2", got.OS.Type.Machine)
	require.Len(t, got.Devices.Disks, 2)
	require.Equal(t, "none", got.Devices.Disks[0].Driver.Cache)
	require.Equal(t, "sys-disk", got.Devices.Disks[0].Serial)
	require.Len(t, got.Devices.Interfaces, 1)
	nic := got.Devices.Interfaces[0]
	require.Equal(t, "default", nic.Source.Network.Network)
	require.Equal(t, "52:54:00:12:34:56", nic.MAC.Address)
	require.Equal(t, "clean-traffic", nic.FilterRef.Filter, "a traffic filter stays")
	require.Len(t, got.Devices.Channels, 1)
	require.Equal(t, agentChannel, got.Devices.Channels[0].Target.VirtIO.Name)
	require.Empty(t, got.Devices.Channels[0].Source.UNIX.Path, "libvirt picks the agent socket")
	require.Equal(t, "127.0.0.1", got.Devices.Graphics[0].VNC.Listeners[0].Address.Address)
	require.Len(t, got.Devices.RNGs, 1)

	left := strings.Join(rb.Left, "\n")
	for _, want := range []string{"hostdev", "filesystem (host directory passthrough)", "qemu:commandline", "direct kernel boot",
		"loader /etc/shadow", "nvram", "emulator /tmp/evil-qemu", "VNC listen address 0.0.0.0", "disk vdc", "cdrom sda",
		"seclabel", "not on a libvirt network", "rng other than", "tpm", "shmem", "cputune", "memoryBacking", "cpu mode \"custom\"",
		"channel other than", "serial console's file"} {
		require.Contains(t, left, want)
	}
	require.True(t, slices.IsSorted(rb.Left))
	require.Contains(t, strings.Join(rb.Kept, "\n"), "disk vda (virtio) = /srv/recover/web-1-vda.qcow2 (qcow2)")
}

func TestRebuildDomainRefuses(t *testing.T) {
	disk := []NewDisk{{Target: "vda", Path: "/srv/r/vda.qcow2", Format: "qcow2"}}
	base := func(s string) string {
		return `<domain type='kvm'><name>x</name><memory unit='MiB'>512</memory><os><type arch='x86_64'>hvm</type></os>` + s + `</domain>`
	}
	for _, tc := range []struct{ name, xml, err string }{
		{"not XML", "<domain", "recorded domain XML"},
		{"lxc", `<domain type='lxc'><name>x</name></domain>`, `type "lxc"`},
		{"no memory", `<domain type='kvm'><name>x</name><os><type>hvm</type></os></domain>`, "no memory"},
		{"xen pv", `<domain type='kvm'><name>x</name><memory>1</memory><os><type>xen</type></os></domain>`, "not an hvm guest"},
		{"arm", `<domain type='kvm'><name>x</name><memory>1</memory><os><type arch='aarch64'>hvm</type></os></domain>`, "not x86"},
		{"bad uuid", `<domain type='kvm'><name>x</name><uuid>../../x</uuid><memory>1</memory><os><type>hvm</type></os></domain>`, "UUID"},
		{"bad action", base(`<on_crash>coredump-destroy</on_crash>`), "lifecycle action"},
		{"record disk missing", base(`<devices></devices>`), "disk vda of the VM record is not in"},
		{"disk twice", base(`<devices><disk device='disk'><target dev='vda'/></disk><disk device='disk'><target dev='vda'/></disk></devices>`), "disk vda twice"},
		{"bad mac", base(`<devices><disk device='disk'><target dev='vda'/></disk><interface type='network'><mac address='52:54:00:12:34:56&quot;/&gt;&lt;x'/><source network='default'/></interface></devices>`), "MAC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RebuildDomain(tc.xml, "x", disk, "")
			require.ErrorContains(t, err, tc.err)
		})
	}
}

// The definition of a plain recorded VM (as hostctl's tests define them)
// keeps what it needs to run: its disks, agent, console and boot order.
func TestRebuildDomainPlain(t *testing.T) {
	rec := `<domain type='qemu'><name>c</name><uuid>1b8e5a2c-3f1d-4d7e-9a41-1c2b3d4e5f60</uuid><memory unit='KiB'>524288</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type><boot dev='hd'/></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/old/root.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/old/data.qcow2'/><target dev='vdb' bus='virtio'/></disk>
<serial type='pty'><target port='0'/><log file='/old/console.log' append='on'/></serial><console type='pty'><target type='serial' port='0'/></console>
<channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-1-c/org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
<memballoon model='none'/></devices></domain>`
	disks := []NewDisk{{Target: "vda", Path: "/new/c-vda.qcow2", Format: "qcow2"}, {Target: "vdb", Path: "/dev/vg0/c-vdb", Format: "raw", Block: true}}
	rb, err := RebuildDomain(rec, "c", disks, "/new/c.console.log")
	require.NoError(t, err)
	var got libvirtxml.Domain
	require.NoError(t, got.Unmarshal(rb.XML))
	require.Equal(t, "qemu", got.Type)
	require.Equal(t, "destroy", got.OnPoweroff)
	require.Equal(t, []libvirtxml.DomainBootDevice{{Dev: "hd"}}, got.OS.BootDevices)
	require.Equal(t, "/new/c-vda.qcow2", got.Devices.Disks[0].Source.File.File)
	require.Equal(t, "/dev/vg0/c-vdb", got.Devices.Disks[1].Source.Block.Dev)
	require.Equal(t, "raw", got.Devices.Disks[1].Driver.Type)
	require.Equal(t, "/new/c.console.log", got.Devices.Serials[0].Log.File)
	require.NotNil(t, got.Devices.Channels[0].Source.UNIX)
	require.Equal(t, "none", got.Devices.MemBalloon.Model)
	require.Equal(t, []string{"emulator /usr/bin/qemu-system-x86_64: libvirt's default QEMU", "serial console's file, socket or log: a pty, logged to /new/c.console.log"}, rb.Left)
}
