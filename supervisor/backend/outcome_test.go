package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestParseBorgFileStatus(t *testing.T) {
	for line, want := range map[string]string{
		`{"type": "file_status", "status": "E", "path": "sub/bad.bin"}`:    "sub/bad.bin",
		`{"type": "file_status", "status": "C", "path": "var/log/syslog"}`: "var/log/syslog",
		`{"type": "file_status", "status": "A", "path": "etc/hostname"}`:   "",
		`{"type": "log_message", "levelname": "WARNING", "message": "x"}`:  "",
		`{"type": "file_status", "status": "E", "path": "a\u001b[2Jb"}`:    "a\x1b[2Jb", // made printable by unreadable.add
		`not json "file_status"`: "",
		`{"type": "file_status", "status": "E", "path": "with \"quote\""}`: `with "quote"`,
	} {
		got, ok := ParseBorgFileStatus(line)
		if got != want || ok != (want != "") {
			t.Errorf("ParseBorgFileStatus(%s) = %q, %v; want %q", line, got, ok, want)
		}
	}
}

func TestBorgStderrCollectsUnreadable(t *testing.T) {
	sink := &testSink{}
	u := &unreadable{}
	st := &borgStderr{sink: sink, every: time.Hour, unread: u}
	st.consume(strings.NewReader(`{"type": "log_message", "time": 1, "message": "sub/bad.bin: read: [Errno 5] Input/output error", "levelname": "WARNING", "name": "borg.archiver"}
{"type": "file_status", "status": "E", "path": "sub/bad.bin"}
{"type": "file_status", "status": "C", "path": "var/log/syslog"}
`))
	var rec job.Stats
	u.record(&rec)
	if !reflect.DeepEqual(rec.Unreadable, []string{"sub/bad.bin", "var/log/syslog"}) || rec.UnreadableCount != 2 {
		t.Errorf("unreadable = %q (%d)", rec.Unreadable, rec.UnreadableCount)
	}
	w := warning("borg create", 1, u, st.tail())
	if want := "borg create finished with warnings (exit status 1): 2 item(s) could not be read: sub/bad.bin: read: [Errno 5] Input/output error"; w != want {
		t.Errorf("warning = %q\nwant      %q", w, want)
	}
}

func TestParseResticError(t *testing.T) {
	for _, tc := range []struct {
		line      string
		item, why string
		ok        bool
	}{
		{`{"message_type":"error","error":{"Op":"read","Path":"/snapshot/sub/bad.bin","Err":5},"during":"archival","item":"/snapshot/sub/bad.bin"}`,
			"/snapshot/sub/bad.bin", "read: input/output error", true},
		{`{"message_type":"error","error":{"Op":"lstat","Path":"/snapshot/x","Err":117},"during":"archival","item":"/snapshot/x"}`,
			"/snapshot/x", "lstat: structure needs cleaning", true},
		// The scanner's report of the same item comes first: left out.
		{`{"message_type":"error","error":{"Op":"lstat","Path":"/snapshot/x","Err":117},"during":"scan","item":"/snapshot/x"}`, "", "", false},
		// An error restic cannot marshal (no exported fields): the item without why.
		{`{"message_type":"error","error":{},"during":"archival","item":"/snapshot/y"}`, "/snapshot/y", "", true},
		{`{"message_type":"status","percent_done":0.5}`, "", "", false},
		{`Warning: at least one source file could not be read`, "", "", false},
	} {
		item, why, ok := ParseResticError(tc.line)
		if item != tc.item || why != tc.why || ok != tc.ok {
			t.Errorf("ParseResticError(%s) = %q, %q, %v", tc.line, item, why, ok)
		}
	}
}

func TestParseDuplicityLog(t *testing.T) {
	// duplicity 0.8.22 --log-file of a backup that met a file with a bad
	// block (captured), plus the other read warnings it has.
	log := `NOTICE 1
. Local and Remote metadata are synchronized, no sync needed.

WARNING 1
. No signatures found, switching to full backup.

WARNING 1
. Error Input/output error getting delta for /snapshot/sub/bad.bin

WARNING 1
. Error Input/output error getting delta for /snapshot/sub/bad.bin

WARNING 10 '/snapshot/locked'
. Error accessing possibly locked file /snapshot/locked

WARNING 1
. Error listing directory /snapshot/dir

NOTICE 1
. --------------[ Backup Statistics ]--------------
. Errors 1
. 

`
	u := &unreadable{snapshot: "/snapshot"}
	var joblog strings.Builder
	n := ParseDuplicityLog(strings.NewReader(log), u, &joblog)
	if !strings.Contains(joblog.String(), "duplicity: Error Input/output error getting delta for /snapshot/sub/bad.bin\n") {
		t.Errorf("the warnings are not in the job log: %q", joblog.String())
	}
	var rec job.Stats
	u.record(&rec)
	if n != 4 || !reflect.DeepEqual(rec.Unreadable, []string{"sub/bad.bin", "locked", "dir"}) || rec.UnreadableCount != 3 {
		t.Errorf("ParseDuplicityLog: %d warnings, %q (%d)", n, rec.Unreadable, rec.UnreadableCount)
	}
	if w := warning("duplicity", -1, u, ""); w != "duplicity finished with warnings: 3 item(s) could not be read, e.g. sub/bad.bin: Input/output error" {
		t.Errorf("warning = %q", w)
	}
	if n := ParseDuplicityLog(strings.NewReader("WARNING 1\n. No signatures found, switching to full backup.\n\n"), &unreadable{}, &joblog); n != 0 {
		t.Errorf("a warning that is not about a file: %d", n)
	}
	if duplicityErrors([]byte("TotalDestinationSizeChange 203 (203 bytes)\nErrors 2\n")) != 2 || duplicityErrors([]byte("Errors 0\n")) != 0 {
		t.Error("duplicityErrors")
	}
}

func TestUnreadableBounded(t *testing.T) {
	u := &unreadable{snapshot: "/snapshot"}
	for i := 0; i < 1000; i++ {
		u.add(fmt.Sprintf("/snapshot/f%04d", i), "")
		u.add(fmt.Sprintf("/snapshot/f%04d", i), "") // reported twice in a row: once
	}
	u.add("/snapshot/\x1b]0;owned\x07"+strings.Repeat("x", 2000), "read: \x1b[31m")
	var rec job.Stats
	u.record(&rec)
	if len(rec.Unreadable) != job.MaxUnreadable || rec.UnreadableCount != 1001 || rec.Unreadable[0] != "f0000" {
		t.Errorf("%d listed, %d counted: %q", len(rec.Unreadable), rec.UnreadableCount, rec.Unreadable[:2])
	}
	u = &unreadable{}
	u.add("\x1b]0;owned\x07"+strings.Repeat("x", 2000), "read: \x1b[31m")
	u.record(&rec)
	if p := rec.Unreadable[0]; strings.ContainsAny(p, "\x1b\x07") || len(p) > maxPathText || !strings.HasPrefix(p, "?]0;owned?x") {
		t.Errorf("guest text in the list: %q", p)
	}
	if strings.ContainsAny(warning("borg create", 1, u, ""), "\x1b\x07") {
		t.Error("guest text in the warning")
	}
	for in, want := range map[string]string{"/snapshot/a/b": "a/b", "/snapshot": ".", "./etc/x": "etc/x", "etc": "etc", "/other/x": "/other/x"} {
		if got := relToSnapshot("/snapshot", in); got != want {
			t.Errorf("relToSnapshot(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEmptyArchive(t *testing.T) {
	if err := emptyArchive("borg create", job.Stats{Archive: "web-1", Files: 1}, 0); err != nil {
		t.Error(err)
	}
	if err := emptyArchive("borg create", job.Stats{Archive: "web-1"}, 0); err == nil || !strings.Contains(err.Error(), "archive web-1 holds no files") {
		t.Errorf("0 files: %v", err)
	}
	if err := emptyArchive("duplicity", job.Stats{Archive: "web-1", Files: 1}, 1); err == nil {
		t.Error("duplicity with only the root: no error")
	}
}

func TestCheckSources(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap")
	for _, d := range []string{"etc", "srv/data"} {
		if err := os.MkdirAll(filepath.Join(snap, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("/etc", filepath.Join(snap, "abs"))          // points out of the tree
	os.Symlink("../../..", filepath.Join(snap, "srv/up"))   // so does this
	os.Symlink("srv/data", filepath.Join(snap, "data"))     // inside
	os.Symlink("/nonexistent", filepath.Join(snap, "dead")) // a symlink as a source: archived as one
	req := func(src ...string) Request {
		return Request{Job: &job.Job{Backup: &job.Backup{Source: src}}, Root: "/", Dirs: Dirs{Snapshot: snap}}
	}
	for _, ok := range [][]string{nil, {"/"}, {"/etc", "/srv/data/"}, {"/data"}, {"/dead"}, {"/abs"}} {
		if err := checkSources(req(ok...)); err != nil {
			t.Errorf("sources %q: %v", ok, err)
		}
	}
	for _, tc := range []struct {
		src []string
		msg string
	}{
		{[]string{"/etc", "/srv/no-such-dir", "/nope"}, "backup source /srv/no-such-dir, /nope: not found in the client's filesystem"},
		{[]string{"/abs/passwd"}, "backup source /abs/passwd cannot be resolved inside the client's filesystem"},
		{[]string{"/srv/up/etc"}, "cannot be resolved inside"},
		{[]string{"/data/x"}, "/data/x: not found"},
	} {
		if err := checkSources(req(tc.src...)); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("sources %q: %v, want %q", tc.src, err, tc.msg)
		}
	}
}
