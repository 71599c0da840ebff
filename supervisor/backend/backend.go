// Package backend runs the backup tools inside the appliance. A backend
// turns a job into tool invocations (pure argv/env builders, table-tested)
// and the tool's machine-readable output into job records. Borg is the
// first; duplicity and restic fit the same Backend interface.
package backend

import (
	"context"
	"io"

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

// Request is what one backup or restore needs, resolved by the supervisor.
type Request struct {
	Job *job.Job
	// Repo is the repository location as the tool sees it (inside the chroot).
	Repo string
	// Passphrase is the repository passphrase (nil for none). It reaches the
	// tool only through a pipe.
	Passphrase []byte
	// Root is the chroot directory, for checks the supervisor makes itself.
	Root string
}

// Backend is a backup tool.
type Backend interface {
	// Backup stores SnapshotDir's content as archive Job.Archive and returns
	// the stats record.
	Backup(ctx context.Context, req Request) (job.Record, error)
	// Restore extracts Job.Archive (or the latest) into RestoreDir and
	// returns the archive name restored.
	Restore(ctx context.Context, req Request) (string, error)
}
