package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// hostile is guest-controlled text: an OSC title change, a screen clear,
// colour, an 8-bit CSI, a right-to-left override.
const hostile = "\x1b]0;pwned\a\x1b[2J\x1b[31mred\u009b1m\u202eevil\x7f"

// The summary table, the backup list and hostctl's final error line carry
// what the appliance sent (errors, archive names): printed without its
// control characters.
func TestGuestTextStripped(t *testing.T) {
	var b bytes.Buffer
	printSummary(&b, []*runner.Report{{Client: "web", Status: runner.StatusFailed, Error: "restore failed in the appliance: " + hostile},
		{Client: "db", Status: runner.StatusOK, Archive: "db-" + hostile}})
	printSnapshots(&b, []job.Snapshot{{Archive: hostile}})
	requireNoControl(t, b.String())
	require.Contains(t, b.String(), `\x1b]0;pwned\x07`, "escaped visibly")

	var out, errb bytes.Buffer
	root := newRoot(&Globals{})
	root.AddCommand(&cobra.Command{Use: "fail", RunE: func(*cobra.Command, []string) error {
		return errors.New("in-place recovery of web: " + hostile + "\nsecond line")
	}})
	root.SetArgs([]string{"fail"})
	root.SetOut(&out)
	root.SetErr(&errb)
	require.Equal(t, ExitFailed, mainExit(context.Background(), root, &errb))
	requireNoControl(t, errb.String())
	require.Contains(t, errb.String(), "\nsecond line", "a multi-line error keeps its lines")
}

func requireNoControl(t *testing.T, s string) {
	t.Helper()
	for _, r := range strings.ReplaceAll(s, "\n", "") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' {
			t.Fatalf("control character %U in %q", r, s)
		}
	}
}
