package backend

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// borg info's nfiles is the archive's count of regular files: an in-place
// recovery refuses a backup with none.
func TestParseBorgInfoFiles(t *testing.T) {
	snaps, err := ParseBorgInfo([]byte(`{"archives":[
		{"name":"web-1","start":"2026-11-20T03:30:00.000000","stats":{"original_size":3,"deduplicated_size":622,"nfiles":1}},
		{"name":"web-empty","start":"2026-11-21T03:30:00.000000","stats":{"original_size":0,"deduplicated_size":423,"nfiles":0}}]}`))
	if err != nil || len(snaps) != 2 || snaps[0].Files != 1 || snaps[1].Files != 0 {
		t.Fatalf("ParseBorgInfo = %+v, %v", snaps, err)
	}
	rs, err := ParseResticSnapshots([]byte(`[{"time":"2026-11-20T03:30:00Z","id":"0123456789abcdef","hostname":"web"}]`))
	if err != nil || len(rs) != 1 || rs[0].Files != -1 {
		t.Fatalf("restic: the count is unknown, not zero: %+v, %v", rs, err)
	}
}

// TestBorgSnapshotsCountFiles: with the real borg, an archive of an empty
// tree lists 0 files, one of a tree with files their number.
func TestBorgSnapshotsCountFiles(t *testing.T) {
	testutil.NeedTool(t, "borg", "run qemu-tests/setup-host.sh")
	dir := t.TempDir()
	d := Dirs{Snapshot: filepath.Join(dir, "snap"), Restore: filepath.Join(dir, "restore"),
		Cache: filepath.Join(dir, "cache"), Work: filepath.Join(dir, "work"), Secrets: filepath.Join(dir, "job")}
	for _, p := range []string{d.Snapshot + "/etc", d.Restore, d.Cache, d.Work, d.Secrets, filepath.Join(dir, "empty", "sub")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(d.Snapshot, "etc", "hostname"), []byte("web\n"), 0o644)
	os.WriteFile(filepath.Join(d.Snapshot, "etc", "motd"), []byte("hi\n"), 0o644)
	os.WriteFile(filepath.Join(d.Secrets, "secret-passphrase"), []byte("pw\n"), 0o600)
	repo := filepath.Join(dir, "repo")
	j := &job.Job{Client: "web", Backup: &job.Backup{Archive: "web-1", Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		Repo: &job.Repo{Backend: "borg", Target: target.Target{Scheme: target.File, Path: repo}, Encryption: "repokey", PassphraseFile: "secret-passphrase", Compression: "lz4"}}
	b := &Borg{Run: hostRunner{}, Sink: &testSink{}}
	req := Request{Job: j, Repo: repo, Passphrase: []byte("pw\n"), Root: "/", Dirs: d}
	if _, err := b.Backup(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("borg", "create", repo+"::web-empty", ".")
	cmd.Dir = filepath.Join(dir, "empty")
	cmd.Env = append(os.Environ(), "BORG_PASSPHRASE=pw", "BORG_BASE_DIR="+filepath.Join(dir, "base"), "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("borg create: %v: %s", err, out)
	}
	snaps, err := b.Snapshots(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int64{}
	for _, s := range snaps {
		files[s.ID] = s.Files
	}
	if files["web-1"] != 2 || files["web-empty"] != 0 || len(files) != 2 {
		t.Fatalf("files per archive: %v", files)
	}
}
