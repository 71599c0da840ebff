package job

import (
	"slices"
	"strings"
	"time"
)

// modeTable is one mode's table in the job, and whether the mode reads
// the client's repository.
type modeTable struct {
	mode string // also the table's name
	repo bool
	set  func(*Job) bool
}

// modeTables lists the modes: a job has exactly its mode's table (Parse).
var modeTables = []modeTable{
	{ModeBackup, true, func(j *Job) bool { return j.Backup != nil }},
	{ModeRestore, true, func(j *Job) bool { return j.Restore != nil }},
	{ModeVerify, true, func(j *Job) bool { return j.Verify != nil }},
	{ModeList, true, func(j *Job) bool { return j.List != nil }},
	{ModeExec, false, func(j *Job) bool { return j.Exec != nil }},
	{ModeShell, false, func(j *Job) bool { return j.Shell != nil }},
	{ModePrune, true, func(j *Job) bool { return j.Prune != nil }},
}

// Backup (mode backup) says what to archive: which of the client's
// filesystems (Tree) from Job.Disks, or its shares or plain directory,
// and which paths of it.
type Backup struct {
	// Archive is the name of the archive to create.
	Archive string `toml:"archive"`
	// Time, when set, is the backup's time as the backend records it
	// (borg --timestamp, restic --time, duplicity --current-time): for
	// imports and for tests of retention. Zero means now.
	Time time.Time `toml:"time,omitempty"`
	Tree
	// Source are absolute paths inside the client's filesystem; default "/".
	Source []string `toml:"source"`
	// Exclude are absolute paths (or shell patterns) inside the client's filesystem.
	Exclude []string `toml:"exclude"`
	// Shares (client type "self") are read-only virtio-9p shares of host
	// directories, each mounted at its Path below the snapshot directory
	// in place of disks: the host's paths, structure preserved.
	Shares []Share `toml:"shares,omitempty"`
	// Plain (client type "plain") is a directory on the appliance's cache
	// volume, relative to it, backed up in place of disks.
	Plain string `toml:"plain,omitempty"`
	// Domain is the client domain's inactive XML, scrubbed of secrets
	// (virt.ScrubDomainXML), for the backup's VM record; "" for none.
	Domain string `toml:"domain,omitempty"`
}

// Tree selects the client's filesystems among its disks, as the client's
// backup.mount says.
type Tree struct {
	// Mount selects the filesystem: "" or "auto" (the only filesystem found,
	// or the first disk's largest), "vda" (whole disk), "vda2" (partition),
	// "vg/lv" (guest LVM), "LABEL=x", "UUID=x", or MountFstab.
	Mount string `toml:"mount"`
	// Mounts, when set, is the client's tree as several filesystems, each
	// selected like Mount; Mount is then ignored.
	Mounts []MountPoint `toml:"mounts,omitempty"`
}

// MountFstab as Tree.Mount assembles the client's tree from the fstab
// of its root filesystem (the one filesystem that holds /etc/fstab).
const MountFstab = "fstab"

// MountPoint is one filesystem of a client's tree: What (selected like
// Tree.Mount) at Where (an absolute path inside the client).
type MountPoint struct {
	Where string `toml:"where"`
	What  string `toml:"what"`
}

// Share is one read-only 9p share of a "self" client.
type Share struct {
	Tag  string `toml:"tag"`
	Path string `toml:"path"` // absolute: where it appears in the backed-up tree
}

// Restore (mode restore) says what a restore takes and where it goes.
type Restore struct {
	// Archive is the backup to restore; "" the latest (at or before Time,
	// when set).
	Archive string    `toml:"archive"`
	Time    time.Time `toml:"time,omitempty"`
	// Paths restrict the restore to these paths of the backed-up tree,
	// relative to its root ("etc/nginx"); empty means everything.
	Paths []string `toml:"paths,omitempty"`
	// To is "dir" (9p share TagRestore), "disk" (disk SerialRestore, its
	// filesystem selected by Mount like Tree.Mount) or RestoreToClient.
	To    string `toml:"to"`
	Mount string `toml:"mount,omitempty"`
	// Tree (RestoreToClient) is the client's tree on Job.Disks, as its
	// backup.mount says.
	Tree Tree `toml:"tree,omitempty"`
	// MkFS (RestoreToClient): create the client's filesystems afresh
	// (same type) instead of emptying the existing ones.
	MkFS bool `toml:"mkfs,omitempty"`
	// EndRecovery (RestoreToClient) runs chrooted into the restored tree
	// with /dev, /proc and /sys bound, before it is unmounted.
	EndRecovery *Hook `toml:"end_recovery,omitempty"`
}

// RestoreToClient as Restore.To is the in-place recovery of a client: its
// own disks (Job.Disks) are attached writable, its filesystems are mounted
// as Restore.Tree says, emptied (or made anew), and receive the backup;
// the filesystems then get the UUIDs and labels that the restored
// /etc/fstab names, so the restored system finds its disks.
const RestoreToClient = "client"

// Hook is a shell command the supervisor runs (/bin/sh -c).
type Hook struct {
	Command   string   `toml:"command"`
	Env       []string `toml:"env"`
	TimeLimit Duration `toml:"time_limit"`
}

// Verify (mode verify) restores a backup (or a sample of its files) into
// scratch space on the cache volume and compares it with the backend's
// own listing and checksums; the scratch space is removed afterwards. It
// writes one RecVerify record.
type Verify struct {
	// Archive is the backup to verify; "" the latest (at or before Time,
	// when set).
	Archive string    `toml:"archive"`
	Time    time.Time `toml:"time,omitempty"`
	// Sample restores and compares this many regular files chosen at
	// random instead of the whole backup; 0 means all.
	Sample int `toml:"sample,omitempty"`
	// Paths restrict the verify to these paths of the tree; empty: all.
	Paths []string `toml:"paths,omitempty"`
}

// List (mode list) lists the backups in the client's repository: the
// appliance writes one RecSnapshot record per backup, oldest first.
type List struct {
	// Record asks for the VM record of one backup as well: Archive, else
	// the newest at or before Time, else the latest. The appliance writes
	// it to FileVMRecord on the job disk; a backup without one is an
	// error.
	Record  bool      `toml:"record,omitempty"`
	Archive string    `toml:"archive,omitempty"`
	Time    time.Time `toml:"time,omitempty"`
}

// Exec is mode exec's program: one program from the job disk run as root
// in the appliance's userland, with the job's disks attached, its exit
// status the job's; the harness by which the tests run Go test binaries
// against real LVM and real guest layouts inside the appliance (the hosts
// that run the tests have no device-mapper). Its output goes to FileLog;
// the done record's status is ok only when it exits 0.
type Exec struct {
	// File is the program's name on the job disk; it must start with
	// SecretPrefix, the only top-level names the job disk carries besides
	// the job itself.
	File string   `toml:"file"`
	Args []string `toml:"args"`
	Env  []string `toml:"env"`
}

// Shell (mode shell) is the rescue shell on the serial console, with the
// client's disks (Job.Disks) attached.
type Shell struct {
	// Rescue: the disks are the client's real disks, attached writable;
	// its filesystem (Mount) is mounted read-write at RescueTarget for
	// manual repair instead of read-only at /snapshot.
	Rescue bool   `toml:"rescue,omitempty"`
	Mount  string `toml:"mount,omitempty"`
}

// RescueTarget is where a rescue shell mounts the client's filesystems
// (inside the appliance's userland).
const RescueTarget = "/mnt/target"

// Prune (mode prune) applies Repo.Retention with the profile's maintenance
// credential, the one backup appliances of an append-only profile never
// receive. It checks the repository first (borg check: archives written
// through an append-only key are trusted only after it), and prunes only
// when the repository holds exactly the backups the host recorded: an
// append-only key's deletions stay undoable until the server's
// administrator rolls them back, and archives the host did not make
// (planted ones, newer than the real) are not counted by retention. It
// writes a RecPruned record per backup it removed, then a RecSnapshot per
// backup kept.
type Prune struct {
	// Known are the client's backups as the host recorded them: those
	// its backups wrote and those the last prune kept.
	Known []string `toml:"known"`
	// Trust: the host has no record of the client's backups yet (its
	// first prune); the backups in the repository are taken as they are.
	Trust bool `toml:"trust,omitempty"`
}

// Compare says which Known backups the repository does not have (missing)
// and which it has that the host did not record (unknown); nothing with
// Trust.
//
// A recorded name is the backend's name for a backup: a borg archive's, or
// a restic snapshot's id, which restic 0.14's backup reports in its short
// form (the first 8 hex digits) while its listing has the whole id. A
// recorded id of 8 or more hex digits therefore names the one listed id it
// begins with.
func (p Prune) Compare(have []string) (missing, unknown []string) {
	if p.Trust {
		return nil, nil
	}
	same := func(known, listed string) bool {
		return known == listed || len(known) >= 8 && len(known) < len(listed) && isHex(known) && isHex(listed) && strings.HasPrefix(listed, known)
	}
	for _, k := range p.Known {
		if !slices.ContainsFunc(have, func(h string) bool { return same(k, h) }) {
			missing = append(missing, k)
		}
	}
	for _, h := range have {
		if !slices.ContainsFunc(p.Known, func(k string) bool { return same(k, h) }) {
			unknown = append(unknown, h)
		}
	}
	return missing, unknown
}

func isHex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdef") == ""
}
