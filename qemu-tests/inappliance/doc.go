// Package inappliance holds tests that run as root inside the backup
// appliance (build tag "inappliance"), where the Debian kernel has
// device-mapper: the host LVM snapshot provider (hostctl/lvm) against real
// volume groups on blank virtual disks, and the guest-layout code
// (supervisor/layout) against disks the tests lay out there. The host test
// TestInAppliance compiles them statically and runs them in mode exec.
package inappliance
