// Package backend runs the backup tools inside the appliance. A backend
// turns a job into tool invocations (pure argv/env builders, table-tested)
// and the tool's machine-readable output into job records. Borg is the
// first; duplicity and restic fit the same Backend interface.
package backend

import (
	"context"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
)

// Paths inside the appliance's root (/sysroot) where the supervisor mounts
// things before it calls a backend.
const (
	SnapshotDir = "/snapshot" // the client's filesystem, read-only
	RestoreDir  = "/restore"  // restore destination
	TargetDir   = "/target"   // 9p file:// target
	CacheDir    = "/cache"    // persistent cache volume
)

// Runner runs a command in the appliance userland (chroot.Runner).
type Runner interface {
	Run(ctx context.Context, c chroot.Cmd) ([]byte, error)
}

var _ Runner = (*chroot.Runner)(nil)

// Sink receives progress and stats records and the tool's log lines.
type Sink interface {
	Record(job.Record) error
	Logf(format string, args ...any)
	LogWriter() io.Writer
}

// Dirs are the directories a backend works with, as the tool sees them
// (inside the chroot): ApplianceDirs in the appliance; the conformance
// tests point them at temporary directories on the host.
type Dirs struct {
	Snapshot string // what to back up (read-only)
	Restore  string // restore destination
	Cache    string // persistent caches (borg base dir, restic cache, duplicity archive dir), temp
	Work     string // per-boot tmpfs: ssh config, gpg keyring, credentials
	Secrets  string // the job disk's secret files (job.SecretPrefix…)
}

// WorkDir is where the supervisor keeps per-boot backend files: on the
// /run tmpfs, which the chroot shares, so never on a disk.
const WorkDir = "/run/sb/backend"

// SecretsDir is where the job disk appears inside the chroot.
const SecretsDir = "/job"

// ApplianceDirs are the directories of the appliance layout: a request's
// Dirs everywhere but in the conformance tests.
func ApplianceDirs() Dirs {
	return Dirs{Snapshot: SnapshotDir, Restore: RestoreDir, Cache: CacheDir, Work: WorkDir, Secrets: SecretsDir}
}

// Request is what one backup or restore needs, resolved by the supervisor.
type Request struct {
	Job *job.Job
	// Repo is the repository location as the tool sees it (inside the
	// chroot) for a file target; "" for network targets, whose location
	// the backend derives from Job.Repo.Target.
	Repo string
	// Passphrase is the repository passphrase (nil for none). It reaches the
	// tool only through a pipe or a file on the job disk.
	Passphrase []byte
	// Root is the chroot directory, for checks the supervisor makes itself.
	Root string
	// Dirs are complete where the request is built (ApplianceDirs).
	Dirs Dirs
	// Verify makes Restore check what it restores with the tool's own
	// means where it has them (restic restore --verify; duplicity verify
	// --compare-data of a whole restore against the backup's signatures).
	Verify bool
	// Archive and Paths say what Restore extracts: the backup ("" the
	// latest) and, when set, only these paths of it (relative, cleaned by
	// CleanPaths) and what is below them; from the job's restore or
	// verify table.
	Archive string
	Paths   []string
	// VMDir, when set, is the directory (inside the chroot) of the VM
	// record that Backup stores beside the backup (Recorder backends).
	VMDir string
}

// secret is the path (inside the chroot) of a secret file on the job disk.
func (r Request) secret(name string) string { return r.Dirs.secret(name) }

// secret is the path of the job disk's secret file name ("" for none),
// never outside the secrets directory.
func (d Dirs) secret(name string) string {
	if name == "" {
		return ""
	}
	return path.Join(d.Secrets, path.Clean("/"+name))
}

// Incomplete is a restore the tool finished with warnings (borg extract's
// exit status 1: a file it could not write, a device node, owner or mode
// it could not make): what it could restore is in place, Warning says what
// is not. The job ends with status warning, never ok.
type Incomplete struct{ Warning string }

func (e *Incomplete) Error() string { return e.Warning }

// Backend is a backup tool.
type Backend interface {
	// Backup stores the snapshot's content as archive Job.Backup.Archive
	// (at Job.Backup.Time when set) and returns its stats. It
	// creates the repository on first use.
	Backup(ctx context.Context, req Request) (job.Stats, error)
	// Restore extracts Archive (or the latest) into the restore dir and
	// returns the archive name restored; with Paths only those paths and
	// what is below them.
	Restore(ctx context.Context, req Request) (string, error)
	// Entries lists the items of one backup (an ID from Snapshots) as the
	// backend's own listing has them, paths relative to the backed-up root.
	Entries(ctx context.Context, req Request, id string) ([]Entry, error)
	// Retain applies Job.Repo.Retention (a no-op for an empty policy) and
	// frees the space of what it removed.
	Retain(ctx context.Context, req Request) error
	// Check verifies the repository's consistency (borg check, restic
	// check, duplicity verify against the snapshot).
	Check(ctx context.Context, req Request) error
	// Snapshots lists the backups in the repository, oldest first.
	Snapshots(ctx context.Context, req Request) ([]Snapshot, error)
	// BreakLock removes every lock in the repository (Job.Repo.BreakLock:
	// left by a killed appliance). A repository that does not exist yet
	// has none.
	BreakLock(ctx context.Context, req Request) error
	// ReadVM returns the VM record file of record id (a Snapshot.VM): every
	// backup stores one beside itself when Request.VMDir is set (vmrecord).
	ReadVM(ctx context.Context, req Request, id string) ([]byte, error)
}

// Snapshot is one backup in a repository as the backend lists it.
type Snapshot struct {
	ID   string    // archive name, snapshot id, or backup time
	Time time.Time // when it was taken
	Full bool      // restorable on its own (duplicity: a full backup; borg and restic: always)
	Kind string    // job.KindFull, job.KindIncr or job.KindSnapshot
	// Size is the data the backup holds (borg original size, restic
	// restore size); Stored what it takes in the repository (borg: the
	// deduplicated bytes only it references; duplicity: its volumes);
	// 0 where the backend does not tell.
	Size, Stored int64
	// Files is the number of regular files in the backup where the
	// repository listing tells it (borg info's nfiles); -1 where it does
	// not (restic, duplicity: Entries lists them).
	Files int64
	// VM is the id of the backup's VM record (vmrecord), "" for none.
	VM string
}

// New returns the backend named in a job.
func New(name string, run Runner, sink Sink) (Backend, error) {
	switch name {
	case "borg", "":
		return &Borg{Run: run, Sink: sink}, nil
	case "restic":
		return &Restic{Run: run, Sink: sink}, nil
	case "duplicity":
		return &Duplicity{Run: run, Sink: sink}, nil
	}
	return nil, fmt.Errorf("backend %q is not supported by this appliance", name)
}
