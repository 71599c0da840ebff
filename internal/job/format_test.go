package job

import (
	"fmt"
	"strings"
	"testing"
)

func TestFormatMark(t *testing.T) {
	if want := fmt.Sprintf("\x00snapshot-backup-job-format=%d\x00", Version); FormatMark != want {
		t.Fatalf("FormatMark %q, want %q: bump it with Version", FormatMark, want)
	}
	v1 := strings.Replace(FormatMark, fmt.Sprint(Version), "1", 1)
	for _, tc := range []struct {
		name, data string
		want       int
		err        string
	}{
		{"ours", "\x7fELF...." + FormatMark + "...", Version, ""},
		{"twice", FormatMark + "x" + FormatMark, Version, ""},
		{"old", "ELF" + v1, 1, ""},
		{"none", "\x7fELF static binary", 0, "no job format mark"},
		{"the prefix alone", FormatMark[:strings.IndexByte(FormatMark, '=')+1] + "abc\x00", 0, "no job format mark"},
		{"two formats", FormatMark + v1, 0, "marks of job formats 2 and 1"},
	} {
		got, err := ReadFormatMark([]byte(tc.data))
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) || got != tc.want {
			t.Errorf("%s: %d, %v; want %d, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}
