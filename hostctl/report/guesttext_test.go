package report

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// The report (hostctl status, the mail body) and the journal message carry
// the appliance's error, hook stderr and the backend log's tail: guest
// text, printed without its control characters. The JSON report keeps
// the text as it was, escaped as JSON.
func TestReportStripsControlCharacters(t *testing.T) {
	r := &Run{ID: "r1", Host: "hv1", Started: time.Unix(0, 0), ExitCode: 1, Jobs: []*runner.Report{{
		Client: "web", Status: runner.StatusFailed, Error: "restore failed in the appliance: " + testutil.Hostile,
		Archive: "web-" + testutil.Hostile,
		Hooks:   []hooks.Result{{Name: hooks.PreSnapshot, Exit: 3, Error: testutil.Hostile, Stderr: "line 1\n" + testutil.Hostile + "\nline 3"}},
	}}, LogTails: map[string]string{"web": "borg: " + testutil.Hostile + "\nexit 2"}}
	text := Text(r)
	testutil.RequireNoControl(t, text)
	require.Contains(t, text, `\x1b]0;pwned\x07`, "escaped visibly")
	require.Contains(t, text, "line 1\n", "newlines of a multi-line block stay")
	msg, _, fields := JournalEntry(r.ID, r.Jobs[0])
	testutil.RequireNoControl(t, msg)
	testutil.RequireNoControl(t, fields["SB_ERROR"])

	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.NotContains(t, string(b), "\x1b", "JSON escapes C0 controls")
	var back Run
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, r.Jobs[0].Error, back.Jobs[0].Error, "the JSON report keeps the text as the appliance sent it")
}
