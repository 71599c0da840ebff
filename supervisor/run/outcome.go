package run

import "github.com/snapshot-backup/snapshot-backup/internal/job"

// afterBackup decides what follows a backup that the backend finished:
// with warnings (files it could not read) the job ends there with status
// warning and the archive is not followed by retention, which could
// remove complete backups in favour of this incomplete one, nor counted
// towards check_every; an ok backup goes on to maintenance (retain).
func afterBackup(done job.Done, stats job.Stats) (job.Done, bool) {
	if stats.Warning == "" {
		return done, true
	}
	done.Warnings = stats.Warnings
	return done, false
}
