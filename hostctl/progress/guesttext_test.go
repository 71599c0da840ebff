package progress

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// The appliance's progress records (paths, step names, errors) are
// guest-controlled: what reaches the operator's terminal carries no
// control character of them.
func TestProgressStripsControlCharacters(t *testing.T) {
	hostile := "etc/" + testutil.Hostile
	var buf bytes.Buffer
	p := NewText(&buf, false)
	p.Begin("web", job.ModeBackup)
	p.Record("web", job.Step{Name: "mount " + hostile}.Record())
	p.Record("web", job.Step{Name: "backup", Error: "borg: " + hostile, Elapsed: 1}.Record())
	p.Record("web", job.Progress{Bytes: 1 << 20, Path: hostile}.Record())
	p.Record("web", job.Done{Status: hostile}.Record())
	out := buf.String()
	testutil.RequireNoControl(t, out)
	require.Contains(t, out, `etc/\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u009b1m\u202eevil\x7f`, "escaped visibly, not dropped")
}
