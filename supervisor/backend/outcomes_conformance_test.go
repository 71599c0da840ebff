package backend

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// TestConformanceOutcomes runs every backend, with the real tool, through
// what makes a backup not "ok": a source that does not exist (a failure
// before the tool runs), sources that leave the archive without files (a
// failure), a file whose data cannot be read (a warning that names it, the
// archive written); and then a retention whose max_age is shorter than the
// age of every backup (all dated in the past with Job.Time): the newest
// backup survives.
func TestConformanceOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tools []string
	}{
		{"borg", []string{"borg"}},
		{"restic", []string{"restic"}},
		{"duplicity", []string{"duplicity", "gpg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, tool := range tc.tools {
				testutil.NeedTool(t, tool, "run qemu-tests/setup-host.sh")
			}
			dir := t.TempDir()
			d := Dirs{Snapshot: filepath.Join(dir, "snap"), Restore: filepath.Join(dir, "restore"),
				Cache: filepath.Join(dir, "cache"), Work: filepath.Join(dir, "work"), Secrets: filepath.Join(dir, "job")}
			for _, p := range []string{d.Snapshot + "/etc", d.Snapshot + "/disk", d.Restore, d.Cache, d.Work, d.Secrets} {
				if err := os.MkdirAll(p, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			os.WriteFile(filepath.Join(d.Snapshot, "etc", "hostname"), []byte("web\n"), 0o644)
			os.WriteFile(filepath.Join(d.Secrets, "secret-passphrase"), []byte("pw\n"), 0o600)
			repo := filepath.Join(dir, "repo")
			t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
			j := &job.Job{Client: "web", Backup: &job.Backup{}, Repo: &job.Repo{Backend: tc.name, Target: target.Target{Scheme: target.File, Path: repo}, Encryption: "repokey",
				PassphraseFile: "secret-passphrase", Compression: "lz4"}}
			sink := &testSink{}
			b, err := New(tc.name, hostRunner{}, sink)
			if err != nil {
				t.Fatal(err)
			}
			req := Request{Job: j, Repo: repo, Passphrase: []byte("pw\n"), Root: "/", Dirs: d}
			ctx := context.Background()
			day := 0
			backup := func(source, exclude []string) (job.Stats, error) {
				t.Helper()
				day++
				j.Backup.Archive, j.Backup.Time = "web-"+string(rune('0'+day)), t0.Add(time.Duration(day)*24*time.Hour)
				j.Backup.Source, j.Backup.Exclude = source, exclude
				return b.Backup(ctx, req)
			}
			count := func() int {
				t.Helper()
				snaps, err := b.Snapshots(ctx, req)
				if err != nil {
					t.Fatalf("snapshots: %v\nlog:\n%s", err, sink)
				}
				return len(snaps)
			}
			for i := 0; i < 2; i++ {
				rec, err := backup(nil, []string{"/disk"})
				if err != nil || rec.Warning != "" {
					t.Fatalf("good backup: %+v, %v\nlog:\n%s", rec, err, sink)
				}
			}
			good := count()

			// A source that is not there: the tool does not even run.
			_, err = backup([]string{"/etc", "/srv/no-such-dir"}, nil)
			if err == nil || !strings.Contains(err.Error(), "backup source /srv/no-such-dir: not found") {
				t.Errorf("missing source: %v", err)
			}
			if n := count(); n != good {
				t.Errorf("missing source: %d backups, want %d (nothing written)", n, good)
			}

			// Everything excluded: the tool runs, the archive is empty.
			_, err = backup([]string{"/etc"}, []string{"/etc"})
			if err == nil || !strings.Contains(err.Error(), "holds no files") {
				t.Errorf("an archive without files: %v\nlog:\n%s", err, sink)
			}

			// A file whose data cannot be read, even by root: a warning
			// naming it, and the archive (with everything else) written.
			bad := testutil.MountUnreadable(t, dir, filepath.Join(d.Snapshot, "disk"))
			before := count()
			rec, err := backup(nil, nil)
			t.Logf("unreadable: %+v, %v", rec, err)
			if err != nil {
				t.Fatalf("a backup with an unreadable file: %v\nlog:\n%s", err, sink)
			}
			if rec.Warning == "" || len(rec.Unreadable) != 1 || rec.Unreadable[0] != "disk/"+bad || rec.UnreadableCount != 1 {
				t.Errorf("unreadable file: warning %q, unreadable %q (%d), want disk/%s", rec.Warning, rec.Unreadable, rec.UnreadableCount, bad)
			}
			if n := count(); n != before+1 {
				t.Errorf("after the backup with warnings: %d backups, want %d", n, before+1)
			}
			if err := exec.Command("umount", filepath.Join(d.Snapshot, "disk")).Run(); err != nil {
				t.Fatal(err)
			}

			// Retention shorter than the age of every backup: the newest
			// survives. duplicity's remove-older-than never removes the
			// chain of the newest backup: a new full starts one.
			if tc.name == "duplicity" {
				// One chain, every set older than max_age: the chain is
				// the active one and stays whole.
				n := count()
				j.Repo.Retention = job.Retention{MaxAge: "1h"}
				if err := b.Retain(ctx, req); err != nil {
					t.Fatalf("retain: %v\nlog:\n%s", err, sink)
				}
				if m := count(); m != n {
					t.Errorf("duplicity remove-older-than removed sets of the active chain: %d of %d left", m, n)
				}
				j.Repo.Retention, j.Repo.FullIfOlderThan = job.Retention{}, "1D"
			}
			rec, err = backup(nil, nil)
			if err != nil || rec.Warning != "" {
				t.Fatalf("last good backup: %+v, %v\nlog:\n%s", rec, err, sink)
			}
			newest := j.Backup.Time
			j.Repo.Retention = job.Retention{MaxAge: "1h"}
			if err := b.Retain(ctx, req); err != nil {
				t.Fatalf("retain: %v\nlog:\n%s", err, sink)
			}
			snaps, err := b.Snapshots(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("after retention with max_age 1h: %+v", snaps)
			if len(snaps) != 1 || !snaps[0].Time.Equal(newest) {
				t.Errorf("retention with max_age shorter than every backup's age left %+v: want only the newest (%s)", snaps, newest)
			}
			if err := b.Check(ctx, req); err != nil {
				t.Errorf("check after retention: %v", err)
			}
			if tc.name == "borg" {
				// borg check reports problems with exit status 1, its
				// warning status: a failed check, never a passed one.
				corruptLargest(t, filepath.Join(repo, "data"))
				if err := b.Check(ctx, req); err == nil || !strings.Contains(err.Error(), "the repository has problems") {
					t.Errorf("check of a damaged repository: %v", err)
				}
			}
		})
	}
}

// corruptLargest flips a byte in the middle of the largest file below dir.
func corruptLargest(t *testing.T, dir string) {
	t.Helper()
	var big string
	var size int64
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if fi, err2 := os.Stat(p); err == nil && err2 == nil && fi.Mode().IsRegular() && fi.Size() > size {
			big, size = p, fi.Size()
		}
		return nil
	})
	b, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(big, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
