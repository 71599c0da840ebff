package backend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
)

// hostRunner runs the tools on the test host instead of in the appliance's
// chroot: the conformance suite checks the backends against the real tools
// without booting anything.
type hostRunner struct{}

func (hostRunner) Run(ctx context.Context, c chroot.Cmd) ([]byte, error) {
	return execx.Run(ctx, execx.Cmd{Argv: c.Argv, Dir: c.Dir, Env: append(append([]string(nil), chroot.Env...), c.Env...),
		In: c.In, Stdout: c.Stdout, Stderr: c.Stderr,
		Setup: func(cmd *exec.Cmd) { cmd.ExtraFiles = c.ExtraFiles }})
}

type testSink struct{ log bytes.Buffer }

func (s *testSink) Record(r job.Record) error       { return r.Check() }
func (s *testSink) Logf(format string, args ...any) { fmt.Fprintf(&s.log, format+"\n", args...) }
func (s *testSink) LogWriter() io.Writer            { return &s.log }
func (s *testSink) String() string                  { return s.log.String() }

// TestConformance runs the same sequence against every backend: back up,
// back up again at a later time, list, restore and compare, apply a
// retention that keeps one backup, check.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tools      []string
		encryption string
		retention  job.Retention
	}{
		{"borg", []string{"borg"}, "repokey", job.Retention{KeepLast: 1}},
		{"restic", []string{"restic"}, "repokey", job.Retention{KeepLast: 1}},
		{"duplicity", []string{"duplicity", "gpg"}, "repokey", job.Retention{MaxFullBackups: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, tool := range tc.tools {
				testutil.NeedTool(t, tool, "run qemu-tests/setup-host.sh")
			}
			dir := t.TempDir()
			d := testDirs(t, dir)
			os.WriteFile(filepath.Join(d.Snapshot, "data.bin"), bytes.Repeat([]byte("x"), 100000), 0o600)
			b, sink, req := testRepo(t, dir, d, job.Repo{Backend: tc.name, Encryption: tc.encryption, Retention: tc.retention})
			j := req.Job
			j.Backup = &job.Backup{Archive: "web-1", Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
			var err error
			ctx := context.Background()
			fail := func(step string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v\nlog:\n%s", step, err, sink)
				}
			}
			_, err = b.Backup(ctx, req)
			fail("first backup", err)
			// A wrong passphrase fails with a one-line reason and leaves
			// the repository as it was.
			os.WriteFile(filepath.Join(d.Secrets, "secret-wrong"), []byte("not pw\n"), 0o600)
			wrong := req
			wj, wb, wr := *j, *j.Backup, *j.Repo
			wj.Backup, wj.Repo = &wb, &wr
			wb.Archive, wb.Time, wr.PassphraseFile = "web-wrong", j.Backup.Time.Add(time.Hour), "secret-wrong"
			wrong.Job, wrong.Passphrase = &wj, []byte("not pw\n")
			_, err = b.Backup(ctx, wrong)
			if err == nil || !strings.Contains(err.Error(), "wrong passphrase") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("backup with a wrong passphrase: %v\nlog:\n%s", err, sink)
			}
			t.Logf("wrong passphrase: %v", err)
			snaps, err := b.Snapshots(ctx, req)
			fail("snapshots", err)
			if len(snaps) != 1 {
				t.Fatalf("snapshots after a backup with a wrong passphrase: %+v", snaps)
			}
			os.WriteFile(filepath.Join(d.Snapshot, "etc", "motd"), []byte("second\n"), 0o644)
			j.Backup.Archive, j.Backup.Time = "web-2", j.Backup.Time.Add(48*time.Hour)
			_, err = b.Backup(ctx, req)
			fail("second backup", err)
			snaps, err = b.Snapshots(ctx, req)
			fail("snapshots", err)
			if len(snaps) != 2 {
				t.Fatalf("snapshots after two backups: %+v", snaps)
			}
			// Restores go into trees that hold directories already (an
			// in-place recovery keeps lost+found and mount points).
			os.MkdirAll(filepath.Join(d.Restore, "etc", "lost+found"), 0o700)
			for i, sn := range snaps {
				wantKind := job.KindSnapshot
				if tc.name == "duplicity" {
					wantKind = map[bool]string{true: job.KindFull, false: job.KindIncr}[i == 0]
				}
				if sn.Kind != wantKind {
					t.Errorf("snapshot %d: kind %q, want %q", i, sn.Kind, wantKind)
				}
				if tc.name != "duplicity" && sn.Size < 100000 {
					t.Errorf("snapshot %d: size %d, want at least data.bin's 100000", i, sn.Size)
				}
				if tc.name != "restic" && sn.Stored <= 0 {
					t.Errorf("snapshot %d: stored size %d, want > 0", i, sn.Stored)
				}
			}
			req.Archive = ""
			_, err = b.Restore(ctx, req)
			fail("restore", err)
			for _, f := range []string{"etc/hostname", "etc/motd", "data.bin"} {
				want, _ := os.ReadFile(filepath.Join(d.Snapshot, f))
				got, err := os.ReadFile(filepath.Join(d.Restore, f))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("restored %s: %v", f, err)
				}
			}
			if _, err := os.Stat(filepath.Join(d.Restore, "etc", "lost+found")); err != nil {
				t.Errorf("a directory that was there before the restore: %v", err)
			}
			// The backend's listing of the latest backup matches the
			// restored tree; a changed file does not.
			latest, err := Latest(snaps)
			fail("latest", err)
			entries, err := b.Entries(ctx, req, latest.ID)
			fail("entries", err)
			if len(entries) < 4 {
				t.Fatalf("entries of %s: %+v", latest.ID, entries)
			}
			if cmp := CompareTree(d.Restore, entries); len(cmp.Problems) > 0 || cmp.Bytes < 100000 {
				t.Errorf("restored tree vs listing: %+v", cmp)
			}
			changed := filepath.Join(d.Restore, "data.bin")
			fi, _ := os.Stat(changed)
			os.WriteFile(changed, bytes.Repeat([]byte("y"), 100001), 0o600)
			if cmp := CompareTree(d.Restore, entries); len(cmp.Problems) == 0 || !strings.Contains(strings.Join(cmp.Problems, "\n"), "data.bin: 100001 bytes, listed 100000") && tc.name != "duplicity" {
				t.Errorf("a changed file is not found: %+v", cmp)
			}
			if tc.name == "borg" {
				// Same size, same mtime, other content: only the hash tells.
				os.WriteFile(changed, bytes.Repeat([]byte("y"), 100000), 0o600)
				os.Chtimes(changed, fi.ModTime(), fi.ModTime())
				if cmp := CompareTree(d.Restore, entries); len(cmp.Problems) != 1 || !strings.Contains(cmp.Problems[0], "data.bin: content sha256") {
					t.Errorf("changed content is not found by its hash: %+v", cmp)
				}
			}

			// --time: the first backup (no motd); --path: one file only.
			first, err := PickAt(snaps, j.Backup.Time.Add(-time.Hour))
			fail("pick", err)
			req.Archive = first.ID
			req.Dirs.Restore = filepath.Join(dir, "restore-first")
			fail("mkdir", os.MkdirAll(req.Dirs.Restore, 0o700))
			req.Verify = true // restic --verify, duplicity verify --compare-data: into an empty dir
			_, err = b.Restore(ctx, req)
			fail("restore of the first backup", err)
			req.Verify = false
			if _, err := os.Stat(filepath.Join(req.Dirs.Restore, "etc", "motd")); err == nil {
				t.Errorf("the first backup (%s) has etc/motd: the second was restored", first.ID)
			}
			req.Archive, req.Paths = "", []string{"etc/motd"}
			req.Dirs.Restore = filepath.Join(dir, "restore-path")
			fail("mkdir", os.MkdirAll(req.Dirs.Restore, 0o700))
			_, err = b.Restore(ctx, req)
			fail("restore of one path", err)
			if got, _ := os.ReadFile(filepath.Join(req.Dirs.Restore, "etc", "motd")); string(got) != "second\n" {
				t.Errorf("--path etc/motd: got %q", got)
			}
			if _, err := os.Stat(filepath.Join(req.Dirs.Restore, "data.bin")); err == nil {
				t.Error("--path etc/motd restored data.bin too")
			}
			req.Paths, req.Dirs = nil, d
			if tc.name == "duplicity" {
				// max_fullbackups counts chains: start a second one.
				j.Repo.FullIfOlderThan, j.Backup.Time = "1D", j.Backup.Time.Add(72*time.Hour)
				_, err = b.Backup(ctx, req)
				fail("third (full) backup", err)
			}
			fail("retain", b.Retain(ctx, req))
			snaps, err = b.Snapshots(ctx, req)
			fail("snapshots after retain", err)
			if len(snaps) != 1 || !snaps[0].Full {
				t.Fatalf("after retention that keeps one backup: %+v", snaps)
			}
			fail("check", b.Check(ctx, req))
		})
	}
}

// testDirs are a backend's directories below dir for the tests that run the
// real tools on the host, made, with a snapshot that holds etc/hostname
// (and the directories extra below it).
func testDirs(t *testing.T, dir string, extra ...string) Dirs {
	t.Helper()
	d := Dirs{Snapshot: filepath.Join(dir, "snap"), Restore: filepath.Join(dir, "restore"),
		Cache: filepath.Join(dir, "cache"), Work: filepath.Join(dir, "work"), Secrets: filepath.Join(dir, "job")}
	mk := []string{d.Snapshot + "/etc", d.Restore, d.Cache, d.Work, d.Secrets}
	for _, e := range extra {
		mk = append(mk, filepath.Join(d.Snapshot, e))
	}
	for _, p := range mk {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d.Snapshot, "etc", "hostname"), []byte("web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// testRepo is a file repository at dir/repo for the backend r names (r
// gives its encryption and retention; lz4, and the passphrase "pw" in a
// secret file of d), the backend, its sink and a request for client web.
func testRepo(t *testing.T, dir string, d Dirs, r job.Repo) (Backend, *testSink, Request) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(d.Secrets, "secret-passphrase"), []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	r.Target, r.PassphraseFile, r.Compression = target.Target{Scheme: target.File, Path: repo}, "secret-passphrase", "lz4"
	sink := &testSink{}
	b, err := New(r.Backend, hostRunner{}, sink)
	if err != nil {
		t.Fatal(err)
	}
	return b, sink, Request{Job: &job.Job{Client: "web", Repo: &r}, Repo: repo, Passphrase: []byte("pw\n"), Root: "/", Dirs: d}
}

// TestVMRecord: a backup with a VM record directory stores the record
// beside the backup, where the guest's tree cannot put one; the record is
// no backup to list, restore as the latest or count for retention, it
// goes with its backup, and the stock tools read it back.
func TestVMRecord(t *testing.T) {
	for _, name := range []string{"borg", "restic", "duplicity"} {
		t.Run(name, func(t *testing.T) {
			testutil.NeedTool(t, name, "run qemu-tests/setup-host.sh")
			dir := t.TempDir()
			d := testDirs(t, dir)
			// The guest's own tree holds what looks like a record.
			os.MkdirAll(filepath.Join(d.Snapshot, "run", "sb", "vm"), 0o700)
			os.WriteFile(filepath.Join(d.Snapshot, "run", "sb", "vm", vmrecord.File), []byte(`{"forged":true}`), 0o600)
			os.WriteFile(filepath.Join(d.Snapshot, vmrecord.File), []byte(`{"forged":true}`), 0o600)
			repo := job.Repo{Backend: name, Encryption: "repokey", Retention: job.Retention{KeepLast: 1}}
			if name == "duplicity" {
				// Each backup a full one, of which retention keeps one.
				repo.Retention, repo.FullIfOlderThan = job.Retention{MaxFullBackups: 1}, "1h"
			}
			b, sink, req := testRepo(t, dir, d, repo)
			ctx := context.Background()
			fail := func(step string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v\nlog:\n%s", step, err, sink)
				}
			}
			req.VMDir = filepath.Join(dir, "vm")
			fail("mkdir", os.MkdirAll(req.VMDir, 0o700))
			j := req.Job
			var want []string
			for i, at := range []time.Time{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} {
				rec := fmt.Sprintf(`{"version":1,"client":"web","n":%d}`, i)
				want = append(want, rec)
				fail("write record", os.WriteFile(filepath.Join(req.VMDir, vmrecord.File), []byte(rec), 0o600))
				j.Backup = &job.Backup{Archive: fmt.Sprintf("web-%d", i), Time: at}
				st, err := b.Backup(ctx, req)
				fail("backup", err)
				if st.Warning != "" {
					t.Fatalf("backup %d: warning %s", i, st.Warning)
				}
			}
			snaps, err := b.Snapshots(ctx, req)
			fail("snapshots", err)
			if len(snaps) != 2 {
				t.Fatalf("two backups with records list as %+v", snaps)
			}
			for i, sn := range snaps {
				if sn.VM == "" {
					t.Fatalf("backup %s has no record", sn.ID)
				}
				got, err := b.ReadVM(ctx, req, sn.VM)
				fail("read record", err)
				if string(got) != want[i] {
					t.Errorf("record of %s: %s, want %s", sn.ID, got, want[i])
				}
			}
			// The stock tools, without hostctl.
			var stock *exec.Cmd
			stockOut := filepath.Join(dir, "stock-record.json")
			switch name {
			case "borg":
				stock = exec.Command("borg", "extract", "--stdout", req.Repo+"::vm+web-1", vmrecord.File)
			case "restic":
				stock = exec.Command("restic", "--repo", req.Repo, "dump", "--tag", vmrecord.ResticTag, "latest", filepath.Join(req.VMDir, vmrecord.File))
			default:
				stock = exec.Command("sh", "-c", `duplicity restore --file-prefix vm- --archive-dir "$1" --file-to-restore layout.json "file://$2" "$3" >&2 && cat "$3"`,
					"sh", filepath.Join(dir, "stock"), req.Repo, stockOut)
			}
			stock.Env = append(os.Environ(), "BORG_PASSPHRASE=pw", "RESTIC_PASSWORD=pw", "PASSPHRASE=pw", "BORG_BASE_DIR="+filepath.Join(dir, "stock"), "RESTIC_CACHE_DIR="+filepath.Join(dir, "stock"))
			out, err := stock.Output()
			if err != nil || string(out) != want[1] {
				t.Errorf("%s: %s %v", stock, out, err)
			}
			// The latest backup restores, not its record; the guest's
			// look-alike is restored as the guest's file it is.
			req.Archive = ""
			_, err = b.Restore(ctx, req)
			fail("restore", err)
			if got, _ := os.ReadFile(filepath.Join(d.Restore, "etc", "hostname")); string(got) != "web\n" {
				t.Errorf("restore of the latest: etc/hostname %q", got)
			}
			fail("retain", b.Retain(ctx, req))
			snaps, err = b.Snapshots(ctx, req)
			fail("snapshots after retain", err)
			if len(snaps) != 1 || snaps[0].VM == "" {
				t.Fatalf("keep_last 1 keeps the newest backup with its record: %+v", snaps)
			}
			if got, err := b.ReadVM(ctx, req, snaps[0].VM); err != nil || string(got) != want[1] {
				t.Errorf("record after retention: %s %v", got, err)
			}
			// The first backup's record went with it.
			var list *exec.Cmd
			switch name {
			case "borg":
				list = exec.Command("borg", "list", "--short", req.Repo)
			case "restic":
				list = exec.Command("restic", "--repo", req.Repo, "snapshots", "--tag", vmrecord.ResticTag, "--json")
			default:
				list = exec.Command("sh", "-c", `ls "$1" | grep manifest`, "sh", req.Repo)
			}
			list.Env = stock.Env
			out, err = list.CombinedOutput()
			fail("stock list", err)
			if n := strings.Count(string(out), map[string]string{"borg": "\n", "restic": `"id"`, "duplicity": "\n"}[name]); n != map[string]int{"borg": 2, "restic": 1, "duplicity": 2}[name] {
				t.Errorf("after retention the repository holds: %s", out)
			}
		})
	}
}
