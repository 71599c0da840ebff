package virt

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// NewDisk is a disk made for a domain rebuilt from its VM record.
type NewDisk struct {
	Target string // vda
	Path   string // the file or block device made for it
	Format string // qcow2, raw
	Block  bool
}

// Rebuilt is a domain definition made from a VM record's domain XML.
type Rebuilt struct {
	XML string
	// Kept describes the definition for the operator's plan; Left names
	// what the recorded XML had that the definition leaves out, and why.
	Kept, Left []string
}

// Names the rebuilt definition carries over as they are.
var (
	recName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$`)
	recUUID    = regexp.MustCompile(`^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$`)
	recMAC     = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)
	recSerial  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,36}$`)
	recUnits   = []string{"", "b", "bytes", "KiB", "k", "KB", "MiB", "M", "MB", "GiB", "G", "GB", "TiB", "T", "TB"}
	recBuses   = []string{"virtio", "sata", "scsi", "ide", "usb"}
	recNICs    = []string{"virtio", "e1000", "e1000e", "rtl8139"}
	recVideos  = []string{"virtio", "qxl", "vga", "cirrus", "bochs", "ramfb", "none"}
	recInputs  = []string{"tablet", "mouse", "keyboard"}
	recInBuses = []string{"", "usb", "ps2", "virtio"}
	recCtrls   = []string{"usb", "pci", "virtio-serial", "scsi", "sata", "ide"}
	recActions = []string{"", "destroy", "restart", "preserve", "rename-restart"}
	recCPUMode = []string{"host-model", "host-passthrough", "maximum"}
	recCaches  = []string{"", "default", "none", "writethrough", "writeback", "directsync", "unsafe"}
)

// agentChannel is the guest agent's virtio port.
const agentChannel = "org.qemu.guest_agent.0"

// RebuildDomain makes the definition of domain name from a VM record's
// domain XML, with disks for its disks and the serial console logged to
// consoleLog ("" for none).
//
// The recorded XML comes back from a repository that the appliance of a
// hostile guest may have written, so it is not defined as it is: a
// definition is built anew from an allow-list of what a VM needs to run as
// it did (machine, firmware by kind, memory, vCPUs, disks, network
// interfaces on a libvirt network or bridge, console, agent channel,
// graphics on the host's loopback, video, input, balloon, RNG from
// /dev/urandom). Nothing in it names a host path but the new disks and
// consoleLog: no host device or directory passthrough, no other disk
// source, no direct kernel boot, no loader, NVRAM or emulator path, no
// QEMU command line, no security label. Left lists each such element of
// the record, for the plan.
func RebuildDomain(recorded, name string, disks []NewDisk, consoleLog string) (*Rebuilt, error) {
	var in libvirtxml.Domain
	if err := in.Unmarshal(recorded); err != nil {
		return nil, fmt.Errorf("the recorded domain XML: %w", err)
	}
	rb := &Rebuilt{}
	left := func(format string, a ...any) { rb.Left = append(rb.Left, fmt.Sprintf(format, a...)) }
	if in.Type != "kvm" && in.Type != "qemu" {
		return nil, fmt.Errorf("the recorded domain is of type %q: only kvm and qemu domains are rebuilt", in.Type)
	}
	out := libvirtxml.Domain{Type: in.Type, Name: name, OnPoweroff: in.OnPoweroff, OnReboot: in.OnReboot, OnCrash: in.OnCrash}
	if in.UUID != "" {
		if !recUUID.MatchString(in.UUID) {
			return nil, fmt.Errorf("the recorded domain's UUID %q is malformed", in.UUID)
		}
		out.UUID = in.UUID
	}
	for _, a := range []string{in.OnPoweroff, in.OnReboot, in.OnCrash} {
		if !slices.Contains(recActions, a) {
			return nil, fmt.Errorf("the recorded domain has the lifecycle action %q", a)
		}
	}
	if in.Memory == nil || in.Memory.Value == 0 || !slices.Contains(recUnits, in.Memory.Unit) {
		return nil, fmt.Errorf("the recorded domain has no memory size")
	}
	out.Memory = &libvirtxml.DomainMemory{Value: in.Memory.Value, Unit: in.Memory.Unit}
	if m := in.CurrentMemory; m != nil && m.Value > 0 && slices.Contains(recUnits, m.Unit) {
		out.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: m.Value, Unit: m.Unit}
	}
	vcpus := uint(1)
	if in.VCPU != nil && in.VCPU.Value > 0 {
		vcpus = in.VCPU.Value
	}
	out.VCPU = &libvirtxml.DomainVCPU{Value: vcpus}
	unit := in.Memory.Unit
	if unit == "" {
		unit = "KiB"
	}
	rb.Kept = append(rb.Kept, fmt.Sprintf("type %s, memory %d %s, %d vCPU(s)", in.Type, in.Memory.Value, unit, vcpus))
	if c := in.CPU; c != nil {
		switch {
		case slices.Contains(recCPUMode, c.Mode):
			out.CPU = &libvirtxml.DomainCPU{Mode: c.Mode}
		case c.Mode != "" || c.Model != nil:
			left("cpu mode %q: libvirt's default CPU model", c.Mode)
		}
	}
	if err := rebuildOS(&in, &out, rb, left); err != nil {
		return nil, err
	}
	if f := in.Features; f != nil {
		out.Features = &libvirtxml.DomainFeatureList{PAE: f.PAE, ACPI: f.ACPI, APIC: f.APIC, HyperV: f.HyperV, SMM: f.SMM}
	}
	if c := in.Clock; c != nil && (c.Offset == "utc" || c.Offset == "localtime") {
		out.Clock = &libvirtxml.DomainClock{Offset: c.Offset}
		for _, t := range c.Timer {
			out.Clock.Timer = append(out.Clock.Timer, libvirtxml.DomainTimer{Name: t.Name, TickPolicy: t.TickPolicy, Present: t.Present})
		}
	}
	out.Devices = &libvirtxml.DomainDeviceList{}
	if in.Devices == nil {
		in.Devices = &libvirtxml.DomainDeviceList{}
	}
	if err := rebuildDisks(in.Devices, out.Devices, disks, rb, left); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(out.Devices.Disks, func(d libvirtxml.DomainDisk) bool { return d.Boot != nil }) {
		out.OS.BootDevices = nil // libvirt refuses both a disk's boot order and <os><boot>
	}
	if err := rebuildNICs(in.Devices, out.Devices, rb, left); err != nil {
		return nil, err
	}
	rebuildConsole(in.Devices, out.Devices, consoleLog, rb, left)
	rebuildOther(in.Devices, out.Devices, left)
	if in.Devices.Emulator != "" {
		left("emulator %s: libvirt's default QEMU", in.Devices.Emulator)
	}
	if in.QEMUCommandline != nil || in.QEMUCapabilities != nil || in.QEMUOverride != nil {
		left("qemu:commandline/capabilities/override (raw QEMU arguments)")
	}
	if len(in.SecLabel) > 0 {
		left("seclabel: libvirt's default confinement applies")
	}
	for what, set := range map[string]bool{"cputune": in.CPUTune != nil, "numatune": in.NUMATune != nil, "memoryBacking": in.MemoryBacking != nil,
		"memtune": in.MemoryTune != nil, "blkiotune": in.BlockIOTune != nil, "sysinfo": len(in.SysInfo) > 0, "resource": in.Resource != nil,
		"launchSecurity": in.LaunchSecurity != nil, "iothreads": in.IOThreads > 0 || in.IOThreadIDs != nil} {
		if set {
			left("%s: tuning of the old host", what)
		}
	}
	slices.Sort(rb.Left)
	x, err := out.Marshal()
	if err != nil {
		return nil, err
	}
	rb.XML = x
	return rb, nil
}

// rebuildOS keeps the machine, the firmware by kind (libvirt picks its
// files) and the boot order; the guest boots from its own disk.
func rebuildOS(in, out *libvirtxml.Domain, rb *Rebuilt, left func(string, ...any)) error {
	o := in.OS
	if o == nil || o.Type == nil || o.Type.Type != "hvm" {
		return fmt.Errorf("the recorded domain is not an hvm guest")
	}
	machine := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	ot := &libvirtxml.DomainOSType{Type: "hvm", Arch: o.Type.Arch}
	if o.Type.Arch != "" && o.Type.Arch != "x86_64" && o.Type.Arch != "i686" {
		return fmt.Errorf("the recorded domain's architecture %q is not x86", o.Type.Arch)
	}
	if machine.MatchString(o.Type.Machine) {
		ot.Machine = o.Type.Machine
	}
	out.OS = &libvirtxml.DomainOS{Type: ot}
	firmware := "bios"
	switch {
	case o.Firmware == "efi" || o.Loader != nil && o.Loader.Type == "pflash":
		out.OS.Firmware, firmware = "efi", "UEFI"
		if o.Loader != nil && o.Loader.Path != "" {
			left("loader %s: libvirt picks the UEFI firmware (firmware='efi')", o.Loader.Path)
		}
		if o.NVRam != nil {
			left("nvram: a fresh UEFI variable store (boot entries are gone; the removable path EFI/BOOT/BOOTX64.EFI boots)")
		}
	case o.Loader != nil:
		left("loader %s: libvirt's default BIOS", o.Loader.Path)
	}
	if o.Kernel != "" || o.Initrd != "" {
		left("direct kernel boot (kernel %s): the VM boots from its own disk", o.Kernel)
	}
	for _, b := range o.BootDevices {
		if b.Dev == "hd" || b.Dev == "network" || b.Dev == "cdrom" {
			out.OS.BootDevices = append(out.OS.BootDevices, libvirtxml.DomainBootDevice{Dev: b.Dev})
		}
	}
	if !slices.ContainsFunc(out.OS.BootDevices, func(b libvirtxml.DomainBootDevice) bool { return b.Dev == "hd" }) {
		out.OS.BootDevices = append([]libvirtxml.DomainBootDevice{{Dev: "hd"}}, out.OS.BootDevices...)
	}
	rb.Kept = append(rb.Kept, fmt.Sprintf("machine %s, %s firmware, boots from its disk", orDefault(ot.Machine), firmware))
	return nil
}

// rebuildDisks gives each recorded disk its new path; other disk sources
// and removable media are left out.
func rebuildDisks(in, out *libvirtxml.DomainDeviceList, disks []NewDisk, rb *Rebuilt, left func(string, ...any)) error {
	made := map[string]NewDisk{}
	for _, d := range disks {
		made[d.Target] = d
	}
	seen := map[string]bool{}
	for _, d := range in.Disks {
		target := ""
		if d.Target != nil {
			target = d.Target.Dev
		}
		nd, ok := made[target]
		switch {
		case d.Device != "" && d.Device != "disk":
			left("%s %s: no media carried over", d.Device, target)
			continue
		case !ok:
			left("disk %s: not in the VM record (the backup did not see it)", target)
			continue
		case seen[target]:
			return fmt.Errorf("the recorded domain has disk %s twice", target)
		}
		seen[target] = true
		bus := "virtio"
		if slices.Contains(recBuses, d.Target.Bus) {
			bus = d.Target.Bus
		}
		nd2 := libvirtxml.DomainDisk{Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: nd.Format},
			Target: &libvirtxml.DomainDiskTarget{Dev: target, Bus: bus}}
		if nd.Block {
			nd2.Source = &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: nd.Path}}
		} else {
			nd2.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: nd.Path}}
		}
		if dr := d.Driver; dr != nil && slices.Contains(recCaches, dr.Cache) {
			nd2.Driver.Cache = dr.Cache
			if dr.Discard == "unmap" || dr.Discard == "ignore" {
				nd2.Driver.Discard = dr.Discard
			}
		}
		if recSerial.MatchString(d.Serial) {
			nd2.Serial = d.Serial
		}
		if d.Boot != nil && d.Boot.Order > 0 {
			nd2.Boot = &libvirtxml.DomainDeviceBoot{Order: d.Boot.Order}
		}
		out.Disks = append(out.Disks, nd2)
		rb.Kept = append(rb.Kept, fmt.Sprintf("disk %s (%s) = %s (%s)", target, bus, nd.Path, nd.Format))
	}
	for _, d := range disks {
		if !seen[d.Target] {
			return fmt.Errorf("disk %s of the VM record is not in its recorded domain XML", d.Target)
		}
	}
	return nil
}

// rebuildNICs keeps interfaces on a libvirt network or host bridge, with
// their MAC address and model.
func rebuildNICs(in, out *libvirtxml.DomainDeviceList, rb *Rebuilt, left func(string, ...any)) error {
	for _, n := range in.Interfaces {
		var src *libvirtxml.DomainInterfaceSource
		what := ""
		switch s := n.Source; {
		case s != nil && s.Network != nil && recName.MatchString(s.Network.Network):
			src = &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: s.Network.Network}}
			what = "network " + s.Network.Network
		case s != nil && s.Bridge != nil && recName.MatchString(s.Bridge.Bridge):
			src = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: s.Bridge.Bridge}}
			what = "bridge " + s.Bridge.Bridge
		default:
			left("a network interface that is not on a libvirt network or bridge (direct, hostdev, vhost-user, user, ethernet scripts)")
			continue
		}
		nic := libvirtxml.DomainInterface{Source: src}
		if n.MAC != nil {
			if !recMAC.MatchString(n.MAC.Address) {
				return fmt.Errorf("the recorded domain has the MAC address %q", n.MAC.Address)
			}
			nic.MAC = &libvirtxml.DomainInterfaceMAC{Address: n.MAC.Address}
			what += " " + n.MAC.Address
		}
		if n.Model != nil && slices.Contains(recNICs, n.Model.Type) {
			nic.Model = &libvirtxml.DomainInterfaceModel{Type: n.Model.Type}
		}
		if f := n.FilterRef; f != nil && recName.MatchString(f.Filter) {
			nic.FilterRef = &libvirtxml.DomainInterfaceFilterRef{Filter: f.Filter}
			for _, p := range f.Parameters {
				if recName.MatchString(p.Name) && !strings.ContainsAny(p.Value, "<>&\"'\n") {
					nic.FilterRef.Parameters = append(nic.FilterRef.Parameters, libvirtxml.DomainInterfaceFilterParam{Name: p.Name, Value: p.Value})
				}
			}
		}
		if n.VirtualPort != nil || n.VLan != nil || n.Script != nil || n.Target != nil || n.Bandwidth != nil {
			left("interface %s: its virtualport, vlan, script, target and bandwidth settings", what)
		}
		out.Interfaces = append(out.Interfaces, nic)
		rb.Kept = append(rb.Kept, "interface on "+what)
	}
	return nil
}

// rebuildConsole gives the domain a pty serial console (logged to
// consoleLog) when it had one, and the guest agent's channel when it had
// one.
func rebuildConsole(in, out *libvirtxml.DomainDeviceList, consoleLog string, rb *Rebuilt, left func(string, ...any)) {
	if len(in.Serials) > 0 || len(in.Consoles) > 0 {
		port := uint(0)
		s := libvirtxml.DomainSerial{Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
			Target: &libvirtxml.DomainSerialTarget{Port: &port}}
		if consoleLog != "" {
			s.Log = &libvirtxml.DomainChardevLog{File: consoleLog, Append: "on"}
		}
		out.Serials = []libvirtxml.DomainSerial{s}
		for _, r := range in.Serials {
			if r.Source != nil && r.Source.Pty == nil || r.Log != nil {
				left("serial console's file, socket or log: a pty, logged to %s", orDefault(consoleLog))
				break
			}
		}
		rb.Kept = append(rb.Kept, "serial console (virsh console)")
	}
	for _, c := range in.Channels {
		if c.Target != nil && c.Target.VirtIO != nil && c.Target.VirtIO.Name == agentChannel {
			out.Channels = []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: agentChannel}},
			}}
			rb.Kept = append(rb.Kept, "guest agent channel")
		} else {
			left("channel other than the guest agent's")
		}
	}
}

// rebuildOther keeps graphics (listening on the loopback: the record has
// no password), video, input, controllers, the balloon and an RNG fed by
// the host's /dev/urandom; every other device is left out.
func rebuildOther(in, out *libvirtxml.DomainDeviceList, left func(string, ...any)) {
	for _, g := range in.Graphics {
		local := []libvirtxml.DomainGraphicListener{{Address: &libvirtxml.DomainGraphicListenerAddress{Address: "127.0.0.1"}}}
		switch {
		case g.VNC != nil:
			if g.VNC.Listen != "" && g.VNC.Listen != "127.0.0.1" {
				left("VNC listen address %s: 127.0.0.1 (the record has no password)", g.VNC.Listen)
			}
			out.Graphics = append(out.Graphics, libvirtxml.DomainGraphic{VNC: &libvirtxml.DomainGraphicVNC{AutoPort: "yes", Listeners: local}})
		case g.Spice != nil:
			if g.Spice.Listen != "" && g.Spice.Listen != "127.0.0.1" {
				left("SPICE listen address %s: 127.0.0.1 (the record has no password)", g.Spice.Listen)
			}
			out.Graphics = append(out.Graphics, libvirtxml.DomainGraphic{Spice: &libvirtxml.DomainGraphicSpice{AutoPort: "yes", Listeners: local}})
		default:
			left("graphics other than VNC and SPICE")
		}
	}
	for _, v := range in.Videos {
		if slices.Contains(recVideos, v.Model.Type) {
			out.Videos = append(out.Videos, libvirtxml.DomainVideo{Model: libvirtxml.DomainVideoModel{Type: v.Model.Type}})
		}
	}
	for _, i := range in.Inputs {
		if slices.Contains(recInputs, i.Type) && slices.Contains(recInBuses, i.Bus) {
			out.Inputs = append(out.Inputs, libvirtxml.DomainInput{Type: i.Type, Bus: i.Bus})
		}
	}
	for _, c := range in.Controllers {
		if slices.Contains(recCtrls, c.Type) && (c.Model == "" || recName.MatchString(c.Model)) {
			out.Controllers = append(out.Controllers, libvirtxml.DomainController{Type: c.Type, Index: c.Index, Model: c.Model})
		}
	}
	if b := in.MemBalloon; b != nil && (b.Model == "virtio" || b.Model == "none") {
		out.MemBalloon = &libvirtxml.DomainMemBalloon{Model: b.Model}
	}
	for _, r := range in.RNGs {
		if r.Model == "virtio" && r.Backend != nil && r.Backend.Random != nil {
			out.RNGs = append(out.RNGs, libvirtxml.DomainRNG{Model: "virtio",
				Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}}})
		} else {
			left("rng other than virtio from the host's random device")
		}
	}
	for what, n := range map[string]int{
		"hostdev (host device passthrough)":       len(in.Hostdevs),
		"filesystem (host directory passthrough)": len(in.Filesystems),
		"redirdev (USB redirection)":              len(in.RedirDevs),
		"smartcard":                               len(in.Smartcards),
		"parallel port":                           len(in.Parallels),
		"tpm (its state is not in the backup)":    len(in.TPMs),
		"shmem (memory shared with the host)":     len(in.Shmems),
		"sound":                                   len(in.Sounds),
		"watchdog":                                len(in.Watchdogs),
		"memory device":                           len(in.Memorydevs),
		"lease":                                   len(in.Leases),
		"vsock":                                   boolCount(in.VSock != nil),
		"iommu":                                   len(in.IOMMUs) + boolCount(in.IOMMU != nil),
		"crypto":                                  len(in.Crypto),
		"pstore (a host file)":                    boolCount(in.PStore != nil),
		"nvram device":                            boolCount(in.NVRAM != nil),
		"hub, panic, audio and redirection filter": len(in.Hubs) + len(in.Panics) + len(in.Audios) + len(in.RedirFilters),
	} {
		if n > 0 {
			left("%d %s", n, what)
		}
	}
}

func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

func orDefault(s string) string {
	if s == "" {
		return "(default)"
	}
	return s
}
