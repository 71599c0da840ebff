package backend

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
)

// Recorder is a backend that stores a VM record beside each backup
// (vmrecord): borg and restic. Backup stores it when Request.VMDir is set;
// Snapshots names each backup's record in Snapshot.VM.
type Recorder interface {
	// ReadVM returns the record file of the record id (a Snapshot.VM).
	ReadVM(ctx context.Context, req Request, id string) ([]byte, error)
}

var (
	_ Recorder = (*Borg)(nil)
	_ Recorder = (*Restic)(nil)
)

// VMWarning adds to rec the warning of a backup whose data is stored and whose
// record is not: it restores, but a recovery cannot map its disks.
func VMWarning(rec *job.Stats, err error) {
	if err == nil {
		return
	}
	w := fmt.Sprintf("the VM record (disk layout) was not stored: %v", err)
	if rec.Warning != "" {
		w = rec.Warning + "; " + w
	}
	rec.Warning = w
}

// BorgVMArgs stores the record directory (the cwd) as archive
// vm+ARCHIVE, at the backup's time.
func BorgVMArgs(repo, archive string, at time.Time) []string {
	return []string{"borg", "create", "--log-json", "--numeric-ids", "--timestamp", at.UTC().Format("2006-01-02T15:04:05"),
		"--", repo + "::" + vmrecord.BorgPrefix + archive, "."}
}

// storeVM stores req.VMDir as the record of archive.
func (b *Borg) storeVM(ctx context.Context, req Request, archive string, at time.Time) error {
	_, err := b.borg(ctx, req, BorgVMArgs(req.Repo, archive, at), req.VMDir, true)
	return err
}

// ReadVM implements Recorder: the record archive's one file.
func (b *Borg) ReadVM(ctx context.Context, req Request, id string) ([]byte, error) {
	req, err := b.resolve(req)
	if err != nil {
		return nil, err
	}
	return b.borg(ctx, req, []string{"borg", "extract", "--log-json", "--stdout", "--", req.Repo + "::" + id, vmrecord.File}, "/", false)
}

// ResticVMArgs stores the record directory as a snapshot tagged
// vmrecord.ResticTag and "of:" the backup's snapshot id.
func ResticVMArgs(global []string, client, of, dir string, at time.Time) []string {
	return append(append([]string(nil), global...), "backup", "--json", "--host", client, "--tag", vmrecord.ResticTag,
		"--tag", vmrecord.ResticOf+of, "--time", at.UTC().Format("2006-01-02 15:04:05"), "--", dir)
}

// ReadVM implements Recorder: restic dump of the record file, stored at
// its absolute path (req.VMDir, vmrecord.Dir when unset).
func (r *Restic) ReadVM(ctx context.Context, req Request, id string) ([]byte, error) {
	g, env, err := r.setup(req)
	if err != nil {
		return nil, err
	}
	dir := req.VMDir
	if dir == "" {
		dir = vmrecord.Dir
	}
	return r.run(ctx, env, "/", false, append(append([]string(nil), g...), "dump", "--host", req.Job.Client, id, path.Join(dir, vmrecord.File))...)
}
