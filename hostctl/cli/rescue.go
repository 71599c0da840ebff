package cli

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// RescueDomain is the default name of the persistent rescue appliance.
const RescueDomain = "hostctl-appliance"

// rescueSpec is the persistent rescue appliance: the image alone, booted
// into the supervisor's shell on the serial console. The operator attaches
// the disks to recover (virsh attach-disk … --config) before starting it.
func rescueSpec(name string, img runner.Image) virt.ApplianceSpec {
	return virt.ApplianceSpec{
		Name:      name,
		Accel:     "tcg",
		MemoryMiB: 1024,
		VCPUs:     2,
		Kernel:    img.Kernel,
		Initrd:    img.Initrd,
		Cmdline:   virt.Cmdline(job.ModeShell, false),
		Disks: []virt.DiskSpec{
			{Path: img.Disk, Format: "raw", Serial: job.SerialAppliance, Target: "vda", ReadOnly: true},
		},
		ConsoleLog: filepath.Join(filepath.Dir(img.Disk), "rescue-console.log"),
	}
}

// defineRescueDomain (re)defines the rescue appliance for the image in dir,
// with KVM when it works here.
func defineRescueDomain(ctx context.Context, uri, name, dir string) error {
	img, err := runner.ImageIn(dir)
	if err != nil {
		return err
	}
	lv, err := virt.NewLibvirt(uri)
	if err != nil {
		return err
	}
	defer lv.Close()
	spec := rescueSpec(name, img)
	// Redefining an existing domain must keep its UUID.
	if old, err := lv.InactiveXML(ctx, name); err == nil {
		if spec.UUID, err = virt.DomainUUID(old); err != nil {
			return err
		}
	} else if !errors.Is(err, virt.ErrNoDomain) {
		return err
	}
	if spec.Accel, err = virt.ProbeAccel(ctx, img.Kernel, filepath.Join(dir, "accel")); err != nil {
		return err
	}
	x, err := virt.ApplianceXML(spec)
	if err != nil {
		return err
	}
	return lv.Define(ctx, x)
}
