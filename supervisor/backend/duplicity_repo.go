package backend

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/retention"
)

// Entries implements Backend: list-current-files has paths and times only.
func (b *Duplicity) Entries(ctx context.Context, req Request, id string) ([]Entry, error) {
	s, err := b.open(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	argv := append(append([]string{"duplicity", "list-current-files"}, s.common...), "--time", id, s.url)
	out, err := b.run(ctx, s, "/", argv)
	if err != nil {
		return nil, err
	}
	return ParseDuplicityFiles(out)
}

// Retain implements Backend.
func (b *Duplicity) Retain(ctx context.Context, req Request) error {
	cmds, err := retention.Duplicity(nil, req.Job.Repo.Retention, "")
	if err != nil || len(cmds) == 0 {
		return err
	}
	s, err := b.open(ctx, req)
	if err != nil {
		return err
	}
	defer s.stop()
	cmds, _ = retention.Duplicity(s.common, req.Job.Repo.Retention, s.url)
	for _, argv := range cmds {
		if _, err := b.run(ctx, s, "/", argv); err != nil {
			return err
		}
	}
	left, err := b.list(ctx, req, s)
	if err != nil {
		return err
	}
	return b.retainVM(ctx, s, left)
}

// Check implements Backend: duplicity verify against the snapshot.
func (b *Duplicity) Check(ctx context.Context, req Request) error {
	s, err := b.open(ctx, req)
	if err != nil {
		return err
	}
	defer s.stop()
	return b.verify(ctx, req, s)
}

func (b *Duplicity) verify(ctx context.Context, req Request, s *dupSession) error {
	d := req.Dirs
	sel, err := DuplicitySelection(*req.Job.Backup, d.Snapshot)
	if err != nil {
		return err
	}
	argv := append(append(append([]string{"duplicity", "verify"}, s.common...), sel...), s.url, d.Snapshot)
	_, err = b.run(ctx, s, "/", argv)
	return err
}

// BreakLock implements Backend: duplicity keeps no lock in the
// repository. Its lock is fasteners' fcntl lock on a file in its archive
// dir (the cache volume), which the kernel dropped with the killed
// appliance.
func (b *Duplicity) BreakLock(ctx context.Context, req Request) error { return nil }

// Snapshots implements Backend.
func (b *Duplicity) Snapshots(ctx context.Context, req Request) ([]Snapshot, error) {
	s, err := b.open(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	snaps, err := b.list(ctx, req, s)
	if err != nil {
		return nil, err
	}
	// Each backup's record has its time. A record listing that fails
	// leaves the backups without one, which a recovery says.
	recs, err := b.recordTimes(ctx, s)
	if err != nil {
		b.Sink.Logf("list the VM records: %v", err)
	}
	for i := range snaps {
		if recs[snaps[i].ID] {
			snaps[i].VM = snaps[i].ID
		}
	}
	return snaps, nil
}

// list is collection-status of the backups.
func (b *Duplicity) list(ctx context.Context, req Request, s *dupSession) ([]Snapshot, error) {
	out, err := b.run(ctx, s, "/", append(append([]string{"duplicity", "collection-status"}, s.common...), s.url))
	if err != nil {
		return nil, err
	}
	snaps, err := ParseDuplicityStatus(out)
	if err != nil {
		return nil, err
	}
	if req.Repo != "" {
		volumeSizes(filepath.Join(req.Root, req.Repo), snaps)
	}
	return snaps, nil
}

// volumeSizes fills in Stored from the volume files of a file target:
// duplicity names them duplicity-{full,inc}.[FROM.to.]TIME.volN.difftar*.
func volumeSizes(dir string, snaps []Snapshot) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	byTime := map[string]int64{}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "duplicity-") || !strings.Contains(n, ".vol") || !strings.Contains(n, ".difftar") {
			continue // not a backup's volume (a VM record's: vmrecord.DuplicityPrefix)
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		parts := strings.Split(n, ".")
		for i, p := range parts {
			if strings.HasPrefix(p, "vol") && i > 0 {
				byTime[parts[i-1]] += fi.Size()
				break
			}
		}
	}
	for i := range snaps {
		snaps[i].Stored = byTime[snaps[i].Time.UTC().Format("20060102T150405Z")]
	}
}
