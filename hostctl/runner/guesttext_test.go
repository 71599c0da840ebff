package runner

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// hostile is guest-controlled text that would retitle the operator's
// terminal, clear it and recolour what follows, with an 8-bit CSI and a
// right-to-left override besides.
const hostile = "etc/\x1b]0;pwned\a\x1b[2J\x1b[31mred\u009b1m\u202eevil\x7f"

// The appliance's progress records (paths, step names, errors) are
// guest-controlled: what reaches the operator's terminal carries no
// control character of them.
func TestProgressStripsControlCharacters(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressPrinter(&buf, "web")
	p.print(job.Step{Name: "mount " + hostile}.Record())
	p.print(job.Step{Name: "backup", Error: "borg: " + hostile, Elapsed: 1}.Record())
	p.print(job.Progress{Bytes: 1 << 20, Path: hostile}.Record())
	p.print(job.Done{Status: hostile}.Record())
	out := buf.String()
	requireNoControl(t, out)
	require.Contains(t, out, `etc/\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u009b1m\u202eevil\x7f`, "escaped visibly, not dropped")
}

// A hook's error as the runner logs it is the guest's text too.
func TestHookStatusStripsControlCharacters(t *testing.T) {
	requireNoControl(t, hookStatus(hooks.Result{Name: "pre_snapshot", Exit: -1, Error: hostile}))
}

// requireNoControl fails when s has a byte or rune a terminal acts on,
// newlines (line ends) aside.
func requireNoControl(t *testing.T, s string) {
	t.Helper()
	for _, r := range strings.ReplaceAll(s, "\n", "") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' {
			t.Fatalf("control character %U in %q", r, s)
		}
	}
}
