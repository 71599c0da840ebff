// Package virt is hostctl's view of libvirt: a small Hypervisor interface
// (what the orchestration needs and nothing more, so tests can fake it), its
// implementation over libvirt.org/go/libvirt, the appliance domain XML
// generator and the parser that finds a client domain's disks.
package virt

import (
	"context"
	"errors"
)

// ErrNoDomain is returned when a named domain does not exist.
var ErrNoDomain = errors.New("no such domain")

// Hypervisor is the part of libvirt that hostctl uses.
type Hypervisor interface {
	// DomainXML returns the live XML of a running domain, or the persistent
	// XML of a shut-off one, and whether it is running.
	DomainXML(ctx context.Context, name string) (xml string, running bool, err error)
	// InactiveXML returns a persistent domain's inactive (next boot) XML.
	InactiveXML(ctx context.Context, name string) (string, error)
	// Define defines (or redefines) a persistent domain.
	Define(ctx context.Context, xml string) error
	// StartTransient creates and starts a transient domain.
	StartTransient(ctx context.Context, xml string) error
	// Destroy stops a domain at once; a missing domain is not an error.
	Destroy(ctx context.Context, name string) error
	// Exists says whether a domain (running or defined) exists.
	Exists(ctx context.Context, name string) (bool, error)
	// SnapshotDiskOnly takes an external, disk-only, atomic snapshot without
	// libvirt metadata (hostctl's ledger is the record): snapXML names an
	// overlay file per disk target.
	SnapshotDiskOnly(ctx context.Context, domain, snapXML string) error
	// BlockCommitActive merges a running domain's active overlay of disk
	// (target name, e.g. "vda") into its backing file and pivots back to it.
	BlockCommitActive(ctx context.Context, domain, disk string) error
	// QemuAgentCommand sends one JSON command to the domain's QEMU guest
	// agent and returns its JSON reply (bounded by a short timeout).
	QemuAgentCommand(ctx context.Context, domain, cmd string) (string, error)
	// FSFreeze freezes every guest filesystem through the guest agent.
	FSFreeze(ctx context.Context, domain string) error
	// FSThaw thaws them again.
	FSThaw(ctx context.Context, domain string) error
	// Suspend pauses a running domain's vCPUs (its disks stay quiet, so
	// snapshots taken one after another are consistent with each other).
	Suspend(ctx context.Context, domain string) error
	// Resume lets a suspended domain run again.
	Resume(ctx context.Context, domain string) error
	// Shutdown asks a running domain to shut down (guest agent or ACPI
	// power button, as the hypervisor chooses) and returns at once.
	Shutdown(ctx context.Context, domain string) error
	// Start boots a defined, shut-off domain.
	Start(ctx context.Context, domain string) error
}
