package report

import (
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// A Job's Status is one of the appliance's (job.StatusOK, job.StatusWarning:
// the backup was written but the backend said it is incomplete, see
// Warning and Unreadable, and no retention ran after it; job.StatusFailed)
// or StatusSkipped, which only the host decides.
const StatusSkipped = "skipped"

// ModeVerify is the Mode of a verify job's report.
const ModeVerify = "verify"

// ModePrune is the Mode of a prune job's report (hostctl prune).
const ModePrune = "prune"

// Job is the outcome of one client job, as `hostctl run --json`, the
// status file and the mail report it.
type Job struct {
	Client string `json:"client"`
	// Profile names the destination of a backup row when the client has
	// several (one row each); "" for a client with one.
	Profile string        `json:"profile,omitempty"`
	Status  string        `json:"status"`
	Error   string        `json:"error,omitempty"`
	Archive string        `json:"archive,omitempty"`
	Mode    string        `json:"mode"` // how the disks were taken: "live-snapshot" or "offline"; or the job's: "restore", ModeVerify, "recover"
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Stats   *job.Stats    `json:"stats,omitempty"`
	LogDir  string        `json:"log_dir"`
	// ApplianceElapsed is the appliance's time from domain start to gone.
	ApplianceElapsed time.Duration `json:"appliance_ns"`
	Backend          time.Duration `json:"backend_ns,omitempty"` // inside the backup tool
	ReadyIn          time.Duration `json:"ready_ns,omitempty"`   // kernel start to supervisor ready
	// PowerOff is the appliance's result (its done record, on the
	// progress channel) to its domain gone.
	PowerOff time.Duration `json:"poweroff_ns,omitempty"`
	// VMRecord is the backup's VM record in one line (the appliance's
	// words, made safe for a terminal): "" for a backup without one.
	VMRecord string   `json:"vm_record,omitempty"`
	Cleanups []string `json:"cleanup_errors,omitempty"`
	// Pause is the pause window: end of pre_snapshot to start of
	// on_snapshot (the snapshot alone without hooks).
	Pause  time.Duration  `json:"pause_ns,omitempty"`
	Frozen time.Duration  `json:"frozen_ns,omitempty"` // filesystems frozen (freeze = true)
	Hooks  []hooks.Result `json:"hooks,omitempty"`

	// Verify is a verify's outcome (Stats then holds the files and bytes
	// compared).
	Verify *job.Verification `json:"verify,omitempty"`

	// Pruned are the backups a prune removed, Kept how many it kept.
	Pruned []string `json:"pruned,omitempty"`
	Kept   int      `json:"kept,omitempty"`

	// Warnings (status warning), as the appliance's done record has them:
	// the backend's one line (Warning), the first job.MaxUnreadable paths
	// it could not read or write (Unreadable) and how many
	// (UnreadableCount); the same keys in JSON.
	job.Warnings
}

// Name is how the report names the job's client: "web", or for one of
// several destinations "web (offsite)".
func (j *Job) Name() string { return RowName(j.Client, j.Profile) }

// RowName is "CLIENT", or "CLIENT (PROFILE)" for a destination of a client
// with several.
func RowName(client, profile string) string {
	if profile == "" {
		return client
	}
	return client + " (" + profile + ")"
}
