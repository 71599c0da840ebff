package backend

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestSourceArgs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		err  string
	}{
		{nil, []string{"."}, ""},
		{[]string{"/"}, []string{"."}, ""},
		{[]string{"/srv/data/", "/etc"}, []string{"srv/data", "etc"}, ""},
		{[]string{"/srv//x/./y"}, []string{"srv/x/y"}, ""},
		{[]string{"srv"}, nil, "absolute"},
		{[]string{"/../etc"}, []string{"etc"}, ""}, // Clean("/..") is "/"
	} {
		got, err := SourceArgs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SourceArgs(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SourceArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestExcludePatterns(t *testing.T) {
	got, err := ExcludePatterns([]string{"/var/cache/", "/home/*/.cache", "*.tmp", " ", "/tmp/[a-z]x?"})
	want := []string{"pp:var/cache", "sh:home/*/.cache", "sh:**/*.tmp", "sh:tmp/[a-z]x?"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ExcludePatterns = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"/", "var/cache"} {
		if _, err := ExcludePatterns([]string{bad}); err == nil {
			t.Errorf("ExcludePatterns(%q): no error", bad)
		}
	}
}

func TestBorgCreateArgs(t *testing.T) {
	got, err := BorgCreateArgs(CreateOpts{Repo: "/target/web", Archive: "web-1", Compression: "zstd,3",
		Source: []string{"/"}, Exclude: []string{"/var/cache"}})
	want := []string{"borg", "create", "--log-json", "--progress", "--json", "--numeric-ids", "--list", "--filter=EC",
		"--compression", "zstd,3", "--exclude", "pp:var/cache", "--", "/target/web::web-1", "."}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("BorgCreateArgs = %q, %v\nwant %q", got, err, want)
	}
	if _, err := BorgCreateArgs(CreateOpts{Repo: "/r"}); err == nil {
		t.Error("no archive name: no error")
	}
}

func TestBorgInitExtractArgs(t *testing.T) {
	got, _ := BorgInitArgs("/target/web", "")
	if want := []string{"borg", "init", "--log-json", "--encryption=repokey", "--make-parent-dirs", "--", "/target/web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("BorgInitArgs = %q", got)
	}
	if _, err := BorgInitArgs("/r", "keyfile"); err == nil {
		t.Error("keyfile (key outside the repo, lost with the appliance): no error")
	}
	got = BorgExtractArgs("/target/web", "a1", nil)
	if want := []string{"borg", "extract", "--log-json", "--progress", "--numeric-ids", "--sparse", "--", "/target/web::a1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("BorgExtractArgs = %q", got)
	}
	got = BorgExtractArgs("/target/web", "a1", []string{"etc/nginx", "srv"})
	if want := []string{"borg", "extract", "--log-json", "--progress", "--numeric-ids", "--sparse", "--", "/target/web::a1", "etc/nginx", "srv"}; !reflect.DeepEqual(got, want) {
		t.Errorf("BorgExtractArgs with paths = %q", got)
	}
}

func TestBorgEnvHasNoSecret(t *testing.T) {
	env := BorgEnv("web/../x", CacheDir)
	joined := strings.Join(env, "\n")
	for _, want := range []string{"BORG_BASE_DIR=/cache/borg/web_.._x", "TMPDIR=/cache/tmp",
		"BORG_RELOCATED_REPO_ACCESS_IS_OK=yes", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes"} {
		if !strings.Contains(joined, want) {
			t.Errorf("BorgEnv lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "PASSPHRASE=") {
		t.Error("BorgEnv carries a passphrase")
	}
	if PassphraseEnv() != "BORG_PASSPHRASE_FD=3" {
		t.Error(PassphraseEnv())
	}
}

func TestParseBorgLine(t *testing.T) {
	rec, prog, _, _ := ParseBorgLine(`{"original_size": 100, "compressed_size": 50, "deduplicated_size": 10, "nfiles": 3, "path": "var/big", "time": 1.5, "type": "archive_progress", "finished": false}`)
	if !prog || rec.Type != job.RecProgress || rec.Progress.Files != 3 || rec.Progress.Bytes != 100 || rec.Progress.Path != "var/big" {
		t.Errorf("archive_progress → %+v %v", rec, prog)
	}
	rec, prog, _, _ = ParseBorgLine(`{"message": "x", "current": 50, "total": 200, "info": ["etc/passwd"], "operation": 1, "msgid": "extract", "type": "progress_percent", "finished": false}`)
	if !prog || rec.Progress.Bytes != 50 || rec.Progress.Message != "25.0%" || rec.Progress.Path != "etc/passwd" {
		t.Errorf("progress_percent → %+v", rec)
	}
	_, prog, msg, lvl := ParseBorgLine(`{"type": "log_message", "time": 1, "message": "Repository has no manifest.", "levelname": "ERROR", "name": "borg.archiver", "msgid": "NoManifestError"}`)
	if prog || msg != "Repository has no manifest." || lvl != "ERROR" {
		t.Errorf("log_message → %q %q", msg, lvl)
	}
	_, prog, msg, lvl = ParseBorgLine("Traceback (most recent call last):")
	if prog || msg != "Traceback (most recent call last):" || lvl != "" {
		t.Errorf("plain line → %q", msg)
	}
}

func TestParseBorgCreate(t *testing.T) {
	rec, err := ParseBorgCreate([]byte(`{"archive": {"name": "a5", "duration": 0.9, "stats": {"compressed_size": 31, "deduplicated_size": 30, "nfiles": 5, "original_size": 32}}, "repository": {}}`))
	want := job.Stats{Archive: "a5", OriginalSize: 32, CompressedSize: 31, DedupSize: 30, Files: 5}
	if err != nil || !reflect.DeepEqual(rec, want) {
		t.Fatalf("ParseBorgCreate = %+v, %v", rec, err)
	}
	name, err := ParseBorgLast([]byte(`{"archives": [{"archive": "a9", "name": "a9", "id": "x"}]}`))
	if err != nil || name != "a9" {
		t.Fatalf("ParseBorgLast = %q, %v", name, err)
	}
	if _, err := ParseBorgLast([]byte(`{"archives": []}`)); err == nil {
		t.Error("empty repo: no error")
	}
}

func TestParseBorgEntries(t *testing.T) {
	out := `{"type": "d", "mode": "drwxr-xr-x", "path": ".", "source": "", "size": 0, "mtime": "2024-02-29T13:37:42.000000", "sha256": ""}
{"type": "-", "mode": "-rwsr-xr-x", "path": "etc/tool", "source": "", "size": 10, "mtime": "2024-02-29T13:37:43.000000", "sha256": "ab"}
{"type": "-", "mode": "-rw-r--r--", "path": "data/hard2", "source": "", "size": 21, "mtime": "2024-02-29T13:37:44.000000", "sha256": "cd"}
{"type": "-", "mode": "hrw-r--r--", "path": "data/hard1", "source": "data/hard2", "size": 0, "mtime": "2024-02-29T13:37:44.000000", "sha256": ""}
{"type": "l", "mode": "lrwxrwxrwx", "path": "data/link", "source": "big.bin", "size": 7, "mtime": "2024-02-29T13:37:45.000000", "sha256": ""}
`
	es, err := ParseBorgEntries([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 {
		t.Fatalf("entries (the root left out): %+v", es)
	}
	if es[0].Mode != 0o755 || es[0].Type != EntryFile || es[0].SHA256 != "ab" {
		t.Errorf("setuid file: %+v", es[0])
	}
	if es[2].Size != 21 || es[2].SHA256 != "cd" || es[2].Type != EntryFile {
		t.Errorf("second name of a hard link takes the first one's size and hash: %+v", es[2])
	}
	if es[3].Type != EntrySymlink {
		t.Errorf("symlink: %+v", es[3])
	}
	if want := time.Date(2024, 2, 29, 13, 37, 43, 0, time.Local); !es[0].MTime.Equal(want) {
		t.Errorf("mtime %v, want %v", es[0].MTime, want)
	}
}

func TestBorgStderrTailLeavesTracebacksInTheLog(t *testing.T) {
	sink := &testSink{}
	st := &borgStderr{sink: sink, every: time.Hour}
	st.consume(strings.NewReader(`{"type": "log_message", "levelname": "ERROR", "message": "Data integrity error: Segment entry checksum mismatch [segment 2, offset 1569320]"}
{"type": "log_message", "levelname": "ERROR", "message": "Traceback (most recent call last):\n  File \"archiver.py\", line 5213, in main"}
`))
	if got := st.tail(); got != "repository data damaged: Data integrity error: Segment entry checksum mismatch [segment 2, offset 1569320]" {
		t.Errorf("tail = %q", got)
	}
	if !strings.Contains(sink.String(), "Traceback") {
		t.Errorf("the traceback is not in the job log: %q", sink.String())
	}
}
