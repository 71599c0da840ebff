package job

// ModeList lists the backups in the client's repository: the appliance
// writes one RecSnapshot record per backup, oldest first.
const ModeList = "list"

// RecSnapshot is one backup in a repository (mode list): Archive holds the
// backend's id (borg archive, restic snapshot id, duplicity chain time),
// SnapshotTime when it was taken and Full whether it is a full backup.
const RecSnapshot = "snapshot"

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
