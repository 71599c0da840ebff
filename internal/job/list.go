package job

// RecSnapshot is one backup in a repository (mode list): Archive holds the
// backend's id (borg archive, restic snapshot id, duplicity backup time),
// SnapshotTime when it was taken, Full whether it is restorable on its own,
// Kind the backend's word for it (KindFull, KindIncr, KindSnapshot),
// OriginalSize the size of the data it holds and DedupSize the bytes it
// stores in the repository (0 where the backend does not tell).
const RecSnapshot = "snapshot"

// Kinds of backups.
const (
	KindFull = "full" // duplicity full backup: starts a chain
	KindIncr = "incr" // duplicity incremental: needs its chain back to the full
	// KindSnapshot is a borg archive or restic snapshot: complete on its
	// own (restorable alone, removable alone), its data deduplicated
	// against every other backup in the repository.
	KindSnapshot = "snapshot"
)

// RecVerify is the outcome of a verify: Files and Bytes compared, Archive
// verified, Message the method (what was compared with what).
const RecVerify = "verify"

// Snapshots returns the snapshot records of a list result, in order.
func (r *Result) Snapshots() []Record {
	var out []Record
	for _, rec := range r.Records {
		if rec.Type == RecSnapshot {
			out = append(out, rec)
		}
	}
	return out
}
