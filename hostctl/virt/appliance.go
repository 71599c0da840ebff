package virt

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// ApplianceSpec describes one appliance domain. ApplianceXML turns it into
// libvirt domain XML; the function is pure so the output can be checked
// against golden files.
type ApplianceSpec struct {
	Name      string
	UUID      string // "" lets libvirt choose; a redefinition must keep the old one
	Accel     string // "kvm" or "tcg"
	MemoryMiB int
	VCPUs     int
	Kernel    string
	Initrd    string
	Cmdline   string
	// Disks in the order they are attached; each one is found in the guest
	// by its Serial, never by its position.
	Disks  []DiskSpec
	Shares []ShareSpec
	// Network attaches one virtio NIC on libvirt user-mode networking:
	// outgoing connections only, NATed by QEMU, the host reachable as
	// 10.0.2.2. Only jobs whose target is on the network get it.
	Network bool
	// ConsoleLog receives the serial console (the supervisor's log); the
	// console stays reachable as a pty for `virsh console`.
	ConsoleLog string
	// ProgressPipe is the path prefix of two FIFOs that hostctl made and
	// reads, PATH.out (appliance to host) and PATH.in: the supervisor's
	// progress records (virtio-serial) reach hostctl through the kernel's
	// pipe buffer and never a file, so an appliance that floods its channel
	// fills no disk of the host (a file chardev would grow without bound).
	ProgressPipe string
	// ProgressPort is the virtio-serial port name of ProgressPipe.
	ProgressPort string
}

// DiskSpec is a file or block device given to the appliance.
type DiskSpec struct {
	Path     string
	Format   string // "raw" or "qcow2"
	Block    bool   // a block device (LV) rather than a file
	Serial   string
	Target   string // vda, vdb, … (only a naming hint inside the guest)
	ReadOnly bool
}

// ShareSpec is a host directory shared over virtio-9p.
type ShareSpec struct {
	Dir      string
	Tag      string
	ReadOnly bool
}

// ApplianceXML renders spec as domain XML.
func ApplianceXML(spec ApplianceSpec) (string, error) {
	domType := "qemu"
	if spec.Accel == "kvm" {
		domType = "kvm"
	}
	// The appliance powers off when done; a reboot or crash is an end too,
	// never a restart (a restarted job would run twice).
	onEnd := "destroy"
	dom := &libvirtxml.Domain{
		Type:        domType,
		Name:        spec.Name,
		UUID:        spec.UUID,
		Description: "snapshot-backup appliance (managed by hostctl; do not edit)",
		Memory:      &libvirtxml.DomainMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: uint(spec.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Type: "hvm"},
			Kernel:  spec.Kernel,
			Initrd:  spec.Initrd,
			Cmdline: spec.Cmdline,
		},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}},
		OnPoweroff: onEnd,
		OnReboot:   onEnd,
		OnCrash:    onEnd,
		Devices:    &libvirtxml.DomainDeviceList{},
		// QEMU of the appliance runs as root, whatever qemu.conf's user
		// (Debian's is libvirt-qemu): it opens the run's overlays and job
		// disk below hostctl's 0700 state and run dirs, and its 9p shares
		// are passthrough (the repository, a restore's target tree with
		// the guest's owners), which only root can serve. relabel='no':
		// libvirt leaves the owners of the client's LVs and images alone.
		SecLabel: []libvirtxml.DomainSecLabel{{Type: "static", Model: "dac", Relabel: "no", Label: "+0:+0"}},
	}
	used := map[string]bool{}
	for _, d := range spec.Disks {
		if d.Serial == "" || len(d.Serial) > 20 {
			return "", fmt.Errorf("appliance disk %s: serial %q must be 1-20 bytes", d.Path, d.Serial)
		}
		if used[d.Target] {
			return "", fmt.Errorf("appliance disk %s: target %s used twice", d.Path, d.Target)
		}
		used[d.Target] = true
		disk := libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: d.Format},
			Target: &libvirtxml.DomainDiskTarget{Dev: d.Target, Bus: "virtio"},
			Serial: d.Serial,
		}
		if d.Block {
			disk.Source = &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: d.Path}}
		} else {
			disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: d.Path}}
		}
		if d.ReadOnly {
			disk.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		}
		dom.Devices.Disks = append(dom.Devices.Disks, disk)
	}
	for _, s := range spec.Shares {
		fs := libvirtxml.DomainFilesystem{
			AccessMode: "passthrough",
			Driver:     &libvirtxml.DomainFilesystemDriver{Type: "path"},
			Source:     &libvirtxml.DomainFilesystemSource{Mount: &libvirtxml.DomainFilesystemSourceMount{Dir: s.Dir}},
			Target:     &libvirtxml.DomainFilesystemTarget{Dir: s.Tag},
		}
		if s.ReadOnly {
			fs.ReadOnly = &libvirtxml.DomainFilesystemReadOnly{}
		}
		dom.Devices.Filesystems = append(dom.Devices.Filesystems, fs)
	}
	port := uint(0)
	serial := libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port},
	}
	if spec.ConsoleLog != "" {
		serial.Log = &libvirtxml.DomainChardevLog{File: spec.ConsoleLog, Append: "off"}
	}
	dom.Devices.Serials = []libvirtxml.DomainSerial{serial}
	dom.Devices.Consoles = []libvirtxml.DomainConsole{{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
	}}
	if spec.ProgressPipe != "" {
		dom.Devices.Channels = []libvirtxml.DomainChannel{{
			Source: &libvirtxml.DomainChardevSource{Pipe: &libvirtxml.DomainChardevSourcePipe{Path: spec.ProgressPipe}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: spec.ProgressPort}},
		}}
	}
	if spec.Network {
		dom.Devices.Interfaces = []libvirtxml.DomainInterface{{
			Source: &libvirtxml.DomainInterfaceSource{User: &libvirtxml.DomainInterfaceSourceUser{}},
			Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		}}
	}
	// No graphics, no USB (and a network only when the target needs it):
	// every device is attack surface and boot time.
	dom.Devices.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "none"}
	dom.Devices.Controllers = []libvirtxml.DomainController{{Type: "usb", Model: "none"}}
	out, err := dom.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal appliance domain %s: %w", spec.Name, err)
	}
	return out + "\n", nil
}

// Cmdline builds the appliance kernel command line. It never carries a
// secret: secrets travel on the job disk only.
func Cmdline(mode string, quiet bool) string {
	parts := []string{"console=ttyS0", "panic=-1", "8250.nr_uarts=1"}
	if quiet {
		parts = append(parts, "quiet")
	}
	if mode != "" {
		parts = append(parts, "sb.mode="+mode)
	}
	return strings.Join(parts, " ")
}
