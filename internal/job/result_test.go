package job

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseResultDone(t *testing.T) {
	step := `{"type":"step","step":{"name":"backup"}}` + "\n"
	done := func(payload string) string { return `{"type":"done","done":` + payload + `}` }
	for _, tc := range []struct {
		done   string
		status string
		err    string
	}{
		{done(`{"status":"ok"}`), StatusOK, ""},
		{done(`{"status":"failed","error":"borg create: exit status 2"}`), StatusFailed, ""},
		{done(`{"status":"warning","warning":"borg create: exit status 1","unreadable":["data/x"],"unreadable_count":3}`), StatusWarning, ""},
		// What no supervisor writes: a status hostctl would not know, or
		// a warning in an ok or failed record (hostctl would report ok).
		{done(`{"status":"great"}`), "", `unknown status "great"`},
		{done(`{}`), "", `unknown status ""`},
		{done(`{"status":"ok","warning":"w"}`), "", `status "ok" with warnings`},
		{done(`{"status":"ok","unreadable":["x"],"unreadable_count":1}`), "", `status "ok" with warnings`},
		{done(`{"status":"warning"}`), "", "without a warning"},
		{done(`{"status":"warning","warning":"w","unreadable":["a","b"],"unreadable_count":1}`), "", "2 unreadable paths listed, 1 counted"},
		{done(`{"status":"warning","warning":"w","unreadable":["` + strings.Repeat(`a","`, MaxUnreadable) + `a"],"unreadable_count":99}`), "", "21 unreadable paths listed"},
		{done(`{"status":"warning","warning":"w","unreadable":["a\u001b[2Jb"],"unreadable_count":1}`), "", "control characters"},
		{done(`{"status":"warning","warning":"w\u0007"}`), "", "control characters"},
		{done(`{"status":"ok","vm_record":"1 disk(s), 1 filesystem(s): /\u001b[2J ext4 on vda"}`), "", "VM record longer than 1024 bytes or with control characters"},
		{done(`{"status":"ok","vm_record":"` + strings.Repeat("v", 1025) + `"}`), "", "longer than 1024 bytes"},
		{done(`{"status":"warning","warning":"` + strings.Repeat("w", 1025) + `"}`), "", "longer than 1024 bytes"},
		{done(`{"status":"warning","warning":"borg create finished with warnings: Ünïcödé ファイル ok"}`), StatusWarning, ""},
		{done(`{"status":"` + strings.Repeat("x", 5000) + `"}`), "", `unknown status "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"`},
		// A done record without its payload, or with another's: hostctl
		// would read a status that is not there.
		{`{"type":"done"}`, "", `done record without its "done" payload`},
		{`{"type":"done","stats":{"files":1}}`, "", `"done" record with a "stats" payload`},
		{`{"type":"done","done":{"status":"ok"},"stats":{"files":1}}`, "", `"done" record with a "stats" payload`},
		{`{"type":"done","done":{"status":"ok","extra":1}}`, "", `unknown field "extra"`},
		{`{"type":"done","status":"ok"}`, "", `unknown field "status"`},
	} {
		r, err := ParseResult([]byte(step + tc.done + "\n"))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "result.jsonl line 2") {
				t.Errorf("%.200s: err %v, want %q", tc.done, err, tc.err)
			}
			if err != nil && errors.Is(err, ErrNoDone) {
				t.Errorf("%.200s: a bad done record is not a missing one: %v", tc.done, err)
			}
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("%.200s: error of %d bytes: what the appliance wrote is bounded in it", tc.done, len(err.Error()))
			}
			continue
		}
		if err != nil || r.Done.Status != tc.status {
			t.Errorf("%s: %+v, %v", tc.done, r.Done, err)
		}
	}
	if _, err := ParseResult([]byte(step)); !errors.Is(err, ErrNoDone) {
		t.Errorf("no done record: %v", err)
	}
}

// Every record carries its own type's payload; hostctl can read it without
// looking twice, and anything else is not the supervisor's.
func TestParseResultRecords(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	recs := []Record{
		Step{Name: "mount snapshot"}.Record(),
		Step{Name: "mount snapshot", Elapsed: time.Second}.Record(),
		Progress{Total: 3 << 30}.Record(),
		Progress{Files: 10, Bytes: 1 << 20, Path: "etc/passwd"}.Record(),
		Stats{Archive: "web-1", Files: 1200, OriginalSize: 3 << 30, CompressedSize: 1 << 30, DedupSize: 12 << 20,
			Warnings: Warnings{Warning: "borg create finished with warnings", Unreadable: []string{"x"}, UnreadableCount: 1}}.Record(),
		Verification{Archive: "web-1", Files: 3, Bytes: 100, Method: "restore of 3 file(s) chosen at random"}.Record(),
		Snapshot{Archive: "web-0", Time: t0, Full: true, Kind: KindSnapshot, OriginalSize: 5, DedupSize: 4}.Record(),
		Snapshot{Archive: "web-1", Time: t0.Add(time.Hour), Full: true, Kind: KindSnapshot}.Record(),
		Step{Name: "backup", Elapsed: time.Minute, Error: "borg: exit status 2"}.Record(),
		Done{Status: StatusWarning, Archive: "web-1", BackendElapsed: time.Minute, ReadyAfter: 3 * time.Second,
			Warnings: Warnings{Warning: "borg create finished with warnings", Unreadable: []string{"x"}, UnreadableCount: 1}}.Record(),
	}
	var data []byte
	for i := range recs {
		recs[i].Time = t0.Add(time.Duration(i) * time.Second)
		b, err := json.Marshal(recs[i])
		if err != nil {
			t.Fatal(err)
		}
		data = append(append(data, b...), '\n')
	}
	r, err := ParseResult(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(r.Records, recs) {
		t.Errorf("records\n got %+v\nwant %+v", r.Records, recs)
	}
	if !reflect.DeepEqual(r.Done, *recs[len(recs)-1].Done) {
		t.Errorf("done %+v", r.Done)
	}
	if s, ok := r.Stats(); !ok || s.Files != 1200 || s.Archive != "web-1" {
		t.Errorf("Stats() = %+v, %v", s, ok)
	}
	if v, ok := r.Verification(); !ok || v.Files != 3 || !strings.Contains(v.Method, "at random") {
		t.Errorf("Verification() = %+v, %v", v, ok)
	}
	if sn := r.Snapshots(); len(sn) != 2 || sn[0].Archive != "web-0" || !sn[1].Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("Snapshots() = %+v", sn)
	}
	if st := r.Steps(); len(st) != 3 || st[1].Elapsed != time.Second {
		t.Errorf("Steps() = %+v", st)
	}
	if e := r.LastError(); e != "backup: borg: exit status 2" {
		t.Errorf("LastError() = %q", e)
	}
	if _, ok := (&Result{}).Stats(); ok {
		t.Error("no stats record")
	}
	// The step lines are what hostctl and job.log readers see.
	if !strings.Contains(string(data), `{"type":"step","time":"2026-03-01T10:00:00Z","step":{"name":"mount snapshot"}}`) {
		t.Errorf("wire form:\n%s", data)
	}
}

func TestParseResultHostile(t *testing.T) {
	done := `{"type":"done","done":{"status":"ok"}}` + "\n"
	for _, tc := range []struct {
		name, data, err string
		noDone          bool
	}{
		{"torn last line", `{"type":"step","step":{"name":"backup"}}` + "\n" + `{"type":"st`, "line 2", true},
		{"garbage", "\x00\x01\x02\n" + done, "line 1", true},
		{"unknown type", `{"type":"pwn","time":"2026-01-01T00:00:00Z"}` + "\n" + done, `line 1: unknown record type "pwn"`, false},
		{"unknown type, long", `{"type":"` + strings.Repeat("p", 4000) + `"}` + "\n" + done, `unknown record type "pppppppppppppppppppppppppppppppp"`, false},
		{"stats without its payload", `{"type":"stats","time":"2026-01-01T00:00:00Z"}` + "\n" + done, `stats record without its "stats" payload`, false},
		{"step with two payloads", `{"type":"step","step":{"name":"x"},"progress":{"files":1}}` + "\n" + done, `"step" record with a "progress" payload`, false},
		{"snapshot with a done payload", `{"type":"snapshot","done":{"status":"ok"}}` + "\n" + done, `snapshot record without its "snapshot" payload`, false},
		{"type mismatch", `{"type":"stats","stats":{"files":"many"}}` + "\n" + done, "line 1", false},
		{"unknown field", `{"type":"step","step":{"name":"x"},"shell":"/bin/sh"}` + "\n" + done, `unknown field "shell"`, false},
		{"a snapshot of no kind", `{"type":"snapshot","snapshot":{"archive":"a","snapshot_time":"2026-01-01T00:00:00Z","kind":"\u001b[2J"}}` + "\n" + done, `snapshot record of unknown kind "\x1b[2J"`, false},
		{"two records on a line", `{"type":"step","step":{"name":"x"}} {"type":"step","step":{"name":"y"}}` + "\n" + done, "more than one record", false},
		{"a line over 1 MiB", `{"type":"step","step":{"name":"` + strings.Repeat("x", 2<<20) + `"}}` + "\n" + done, "token too long", false},
	} {
		_, err := ParseResult([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, ErrNoDone) != tc.noDone {
			t.Errorf("%s: %.300v, want %q (no done: %v)", tc.name, err, tc.err, tc.noDone)
		}
	}
}

func TestParseRecord(t *testing.T) {
	r, err := ParseRecord([]byte(`{"type":"progress","progress":{"bytes":5,"path":"a"}}`))
	if err != nil || r.Progress.Bytes != 5 || r.Progress.Path != "a" {
		t.Errorf("%+v %v", r, err)
	}
	for _, bad := range []string{`{"type":"progress"}`, `{"type":"progress","bytes":5}`, `{"type":"truncated","message":"x"}`, `[]`, `{`} {
		if _, err := ParseRecord([]byte(bad)); err == nil {
			t.Errorf("ParseRecord(%s) accepted", bad)
		}
	}
}

// TestParsePrunedRecord: a pruned record names one archive, which hostctl
// records and prints: a name from a taken-over appliance that is empty,
// too long or has control characters is refused, as in a snapshot record.
func TestParsePrunedRecord(t *testing.T) {
	r, err := ParseRecord([]byte(`{"type":"pruned","pruned":{"archive":"web-20260101T000000Z"}}`))
	if err != nil || r.Pruned.Archive != "web-20260101T000000Z" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := ParseRecord([]byte(`{"type":"stats","stats":{"files":1}}`)); err != nil || r.Stats.Archive != "" {
		t.Fatalf("stats without an archive: %+v %v", r, err)
	}
	long := strings.Repeat("a", MaxArchiveName+1)
	for _, bad := range []string{
		`{"type":"pruned"}`,
		`{"type":"pruned","pruned":{"archive":""}}`,
		`{"type":"pruned","pruned":{"archive":"a\u001b[2J"}}`,
		`{"type":"pruned","pruned":{"archive":"` + long + `"}}`,
		`{"type":"snapshot","snapshot":{"archive":"x\n","kind":"snapshot"}}`,
		`{"type":"pruned","pruned":{"archive":"a"},"snapshot":{"archive":"a","kind":"snapshot"}}`,
		`{"type":"stats","stats":{"archive":"a\nb","files":1}}`,
		`{"type":"stats","stats":{"archive":"` + long + `","files":1}}`,
	} {
		if _, err := ParseRecord([]byte(bad)); err == nil {
			t.Errorf("ParseRecord(%s) accepted", bad)
		}
	}
}
