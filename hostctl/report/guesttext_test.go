package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
)

// hostile is guest-controlled text: an OSC title change, a screen clear,
// colour, an 8-bit CSI, a right-to-left override.
const hostile = "\x1b]0;pwned\a\x1b[2J\x1b[31mred\u009b1m\u202eevil\x7f"

// The report (hostctl status, the mail body) and the journal message carry
// the appliance's error, hook stderr and the backend log's tail: guest
// text, printed without its control characters. The JSON report keeps
// the text as it was, escaped as JSON.
func TestReportStripsControlCharacters(t *testing.T) {
	r := &Run{ID: "r1", Host: "hv1", Started: time.Unix(0, 0), ExitCode: 1, Jobs: []*runner.Report{{
		Client: "web", Status: runner.StatusFailed, Error: "restore failed in the appliance: " + hostile,
		Archive: "web-" + hostile,
		Hooks:   []hooks.Result{{Name: hooks.PreSnapshot, Exit: 3, Error: hostile, Stderr: "line 1\n" + hostile + "\nline 3"}},
	}}, LogTails: map[string]string{"web": "borg: " + hostile + "\nexit 2"}}
	text := Text(r)
	requireNoControl(t, text)
	require.Contains(t, text, `\x1b]0;pwned\x07`, "escaped visibly")
	require.Contains(t, text, "line 1\n", "newlines of a multi-line block stay")
	msg, _, fields := JournalEntry(r.ID, r.Jobs[0])
	requireNoControl(t, msg)
	requireNoControl(t, fields["SB_ERROR"])

	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.NotContains(t, string(b), "\x1b", "JSON escapes C0 controls")
	var back Run
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, r.Jobs[0].Error, back.Jobs[0].Error, "the JSON report keeps the text as the appliance sent it")
}

func requireNoControl(t *testing.T, s string) {
	t.Helper()
	for _, r := range strings.ReplaceAll(s, "\n", "") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' {
			t.Fatalf("control character %U in %q", r, s)
		}
	}
}
