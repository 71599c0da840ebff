package job

import (
	"errors"
	"strings"
	"testing"
)

func TestParseResultDone(t *testing.T) {
	step := `{"type":"step","step":"backup"}` + "\n"
	for _, tc := range []struct {
		done   string
		status string
		err    string
	}{
		{`{"type":"done","status":"ok"}`, StatusOK, ""},
		{`{"type":"done","status":"failed","error":"borg create: exit status 2"}`, StatusFailed, ""},
		{`{"type":"done","status":"warning","warning":"borg create: exit status 1","unreadable":["data/x"],"unreadable_count":3}`, StatusWarning, ""},
		// What no supervisor writes: a status hostctl would not know, or
		// a warning in an ok or failed record (hostctl would report ok).
		{`{"type":"done","status":"great"}`, "", `unknown status "great"`},
		{`{"type":"done"}`, "", `unknown status ""`},
		{`{"type":"done","status":"ok","warning":"w"}`, "", `status "ok" with warnings`},
		{`{"type":"done","status":"ok","unreadable":["x"],"unreadable_count":1}`, "", `status "ok" with warnings`},
		{`{"type":"done","status":"warning"}`, "", "without a warning"},
		{`{"type":"done","status":"warning","warning":"w","unreadable":["a","b"],"unreadable_count":1}`, "", "2 unreadable paths listed, 1 counted"},
		{`{"type":"done","status":"warning","warning":"w","unreadable":["` + strings.Repeat(`a","`, MaxUnreadable) + `a"],"unreadable_count":99}`, "", "21 unreadable paths listed"},
		{`{"type":"done","status":"warning","warning":"w","unreadable":["a\u001b[2Jb"],"unreadable_count":1}`, "", "control characters"},
		{`{"type":"done","status":"warning","warning":"w\u0007"}`, "", "control characters"},
		{`{"type":"done","status":"warning","warning":"` + strings.Repeat("w", 1025) + `"}`, "", "longer than 1024 bytes"},
		{`{"type":"done","status":"warning","warning":"borg create finished with warnings: Ünïcödé ファイル ok"}`, StatusWarning, ""},
	} {
		r, err := ParseResult([]byte(step + tc.done + "\n"))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "result.jsonl line 2") {
				t.Errorf("%s: err %v, want %q", tc.done, err, tc.err)
			}
			if err != nil && errors.Is(err, ErrNoDone) {
				t.Errorf("%s: a bad done record is not a missing one: %v", tc.done, err)
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
