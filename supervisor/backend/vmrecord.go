package backend

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
)

// Every backend stores a VM record beside each backup (vmrecord): Backup
// stores it when Request.VMDir is set, Snapshots names each backup's
// record in Snapshot.VM, ReadVM reads it back.

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

// storedVM runs store and logs how long storing the record took: its
// cost on each night (make bench reads the line).
func storedVM(sink Sink, store func() error) error {
	start := time.Now()
	err := store()
	if err == nil {
		sink.Logf("VM record stored in %s", time.Since(start).Round(time.Millisecond))
	}
	return err
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

// ReadVM implements Backend: the record archive's one file.
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

// ReadVM implements Backend: restic dump of the record file, stored at
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

// dupVMCommon is duplicity's options for the record sets: their own
// file prefix in the target, and their own cache (--name) beside the
// backups'.
func dupVMCommon(common []string) []string {
	out := append([]string(nil), common...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "--name" {
			out[i+1] += "-vm"
		}
	}
	return append(out, "--file-prefix", vmrecord.DuplicityPrefix)
}

// DuplicityVMArgs stores the record directory as a full backup with the
// record prefix (common carries --current-time, the backup's time).
func DuplicityVMArgs(common []string, dir, url string) []string {
	return append(append([]string{"duplicity", "full"}, dupVMCommon(common)...), dir, url)
}

// storeVM stores req.VMDir as the record of the backup just made.
func (b *Duplicity) storeVM(ctx context.Context, req Request, s *dupSession) error {
	_, err := b.run(ctx, s, "/", DuplicityVMArgs(s.common, req.VMDir, s.url))
	return err
}

// ReadVM implements Backend: the record set at time id, restored into
// the work directory.
func (b *Duplicity) ReadVM(ctx context.Context, req Request, id string) ([]byte, error) {
	s, err := b.open(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	out := path.Join(req.Dirs.Work, "vm-record", vmrecord.File)
	host := filepath.Join(req.Root, out)
	if err := os.MkdirAll(filepath.Dir(host), 0o700); err != nil {
		return nil, err
	}
	defer os.Remove(host)
	argv := append(append([]string{"duplicity", "restore"}, dupVMCommon(s.common)...), "--time", id, "--file-to-restore", vmrecord.File, "--force", s.url, out)
	if _, err := b.run(ctx, s, "/", argv); err != nil {
		return nil, err
	}
	f, err := os.Open(host)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, vmrecord.Max+1))
	if err == nil && len(data) > vmrecord.Max {
		err = fmt.Errorf("VM record: more than %d bytes", vmrecord.Max)
	}
	return data, err
}

// recordTimes lists the times (Snapshot.ID) of the record sets.
func (b *Duplicity) recordTimes(ctx context.Context, s *dupSession) (map[string]bool, error) {
	out, err := b.run(ctx, s, "/", append(append([]string{"duplicity", "collection-status"}, dupVMCommon(s.common)...), s.url))
	if err != nil {
		return nil, err
	}
	sets, err := ParseDuplicityStatus(out)
	if err != nil {
		return nil, err
	}
	times := map[string]bool{}
	for _, sn := range sets {
		times[sn.ID] = true
	}
	return times, nil
}

// retainVM removes the record sets older than the oldest backup left:
// each record goes with its backup.
func (b *Duplicity) retainVM(ctx context.Context, s *dupSession, backups []Snapshot) error {
	if len(backups) == 0 {
		return nil
	}
	oldest := backups[0].Time
	for _, sn := range backups {
		if sn.Time.Before(oldest) {
			oldest = sn.Time
		}
	}
	argv := append(append([]string{"duplicity", "remove-older-than", oldest.UTC().Format(time.RFC3339)}, dupVMCommon(s.common)...), "--force", s.url)
	_, err := b.run(ctx, s, "/", argv)
	return err
}
