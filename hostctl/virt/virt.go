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
	// Undefine removes a shut-off domain's definition (and its UEFI
	// variable store); a missing domain is not an error.
	Undefine(ctx context.Context, name string) error
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
	// BlockJob returns the block job running on a disk of a domain (Type
	// "" when there is none). Jobs outlive the hostctl that started them.
	BlockJob(ctx context.Context, domain, disk string) (BlockJob, error)
	// FinishBlockCommit waits for the active commit running on disk to be
	// ready, pivots the disk to the commit's base and waits for the job to
	// end: the second half of BlockCommitActive, for a commit that a
	// killed hostctl started.
	FinishBlockCommit(ctx context.Context, domain, disk string) error
	// DomainState says whether a domain runs, is paused (and why) or is
	// shut off.
	DomainState(ctx context.Context, name string) (DomainState, error)
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

// Block job types (BlockJob.Type), as libvirt names them.
const (
	JobPull         = "pull"
	JobCopy         = "copy"
	JobCommit       = "commit"
	JobActiveCommit = "active-commit"
	JobBackup       = "backup"
)

// BlockJob is the state of a block job on one disk.
type BlockJob struct {
	Type     string // "" when no job runs
	Cur, End uint64 // progress, in libvirt's units
}

// Ready says whether a mirroring job (copy, active commit) has caught up and
// can be pivoted.
func (j BlockJob) Ready() bool { return j.End > 0 && j.Cur == j.End }

// DomainState is a domain's run state, as far as hostctl's cleanup cares.
type DomainState string

const (
	StateRunning DomainState = "running"
	// StateSuspended: paused by virDomainSuspend (hostctl's own suspend,
	// or an operator's `virsh suspend`).
	StateSuspended DomainState = "suspended"
	// StatePaused: paused by the hypervisor for another reason (an I/O
	// error such as a full disk, a migration, a snapshot in progress):
	// never hostctl's to resume.
	StatePaused DomainState = "paused"
	StateOff    DomainState = "shut off"
)
