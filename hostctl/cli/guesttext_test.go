package cli

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// The summary table, the backup list and hostctl's final error line carry
// what the appliance sent (errors, archive names): printed without its
// control characters.
func TestGuestTextStripped(t *testing.T) {
	var b bytes.Buffer
	printSummary(&b, []*runner.Report{{Client: "web", Status: runner.StatusFailed, Error: "restore failed in the appliance: " + testutil.Hostile},
		{Client: "db", Status: runner.StatusOK, Archive: "db-" + testutil.Hostile}})
	printSnapshots(&b, []job.Snapshot{{Archive: testutil.Hostile}})
	testutil.RequireNoControl(t, b.String())
	require.Contains(t, b.String(), `\x1b]0;pwned\x07`, "escaped visibly")

	var out, errb bytes.Buffer
	root := newRoot(&Globals{})
	root.AddCommand(&cobra.Command{Use: "fail", RunE: func(*cobra.Command, []string) error {
		return errors.New("in-place recovery of web: " + testutil.Hostile + "\nsecond line")
	}})
	root.SetArgs([]string{"fail"})
	root.SetOut(&out)
	root.SetErr(&errb)
	require.Equal(t, ExitFailed, mainExit(context.Background(), root, &errb))
	testutil.RequireNoControl(t, errb.String())
	require.Contains(t, errb.String(), "\nsecond line", "a multi-line error keeps its lines")
}
