package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// The appliance's done record decides the job's status: warning passes its
// warning and unreadable files to the report; a status hostctl does not
// know, or a warning inside an "ok", is a failure, never an ok.
func TestBackupStatusFromDoneRecord(t *testing.T) {
	for _, tc := range []struct {
		name   string
		done   job.Done
		status string
		error  string
		nostat bool // the appliance writes no stats record
	}{
		{"ok", job.Done{Status: job.StatusOK}, StatusOK, "", false},
		{"warning", job.Done{Status: job.StatusWarning, Warnings: job.Warnings{Warning: "borg create finished with warnings (exit status 1): data/x: read: [Errno 5] Input/output error",
			Unreadable: []string{"data/x"}, UnreadableCount: 7}}, StatusWarning, "", false},
		{"failed", job.Done{Status: job.StatusFailed, Error: "backup source /srv/x: not found in the client's filesystem"}, StatusFailed, "backup source /srv/x", false},
		{"unknown status", job.Done{Status: "fine"}, StatusFailed, `unknown status "fine"`, false},
		{"ok with warnings", job.Done{Status: job.StatusOK, Warnings: job.Warnings{Warning: "w"}}, StatusFailed, `status "ok" with warnings`, false},
		// A taken-over appliance that only claims success.
		{"ok without stats", job.Done{Status: job.StatusOK}, StatusFailed, "no backup statistics", true},
		{"warning without stats", job.Done{Status: job.StatusWarning, Warnings: job.Warnings{Warning: "w"}}, StatusFailed, "no backup statistics", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newLVMJob(t, lvDisk)
			j.hv.onStart = func(x string) error {
				recs := []job.Record{okStats, tc.done.Record()}
				if tc.nostat {
					recs = recs[1:]
				}
				require.NoError(t, writeResult(applianceDisk(t, x), recs...))
				delete(j.hv.live, x[strings.Index(x, "<name>")+6:strings.Index(x, "</name>")]) // powered off
				return nil
			}
			rep := j.r.Backup(context.Background(), j.c)
			require.Equal(t, tc.status, rep.Status, rep.Error)
			require.Contains(t, rep.Error, tc.error)
			if tc.status == StatusWarning {
				require.Equal(t, tc.done.Warning, rep.Warning)
				require.Equal(t, []string{"data/x"}, rep.Unreadable)
				require.Equal(t, 7, rep.UnreadableCount)
				require.Empty(t, rep.Error)
			} else {
				require.Empty(t, rep.Warning)
			}
			j.requireNothingLeft(t)
		})
	}
}

// post_snapshot learns SB_OUTCOME=warning; when it fails, so does the job.
func TestBackupWarningPostSnapshot(t *testing.T) {
	done := job.Done{Status: job.StatusWarning, Warnings: job.Warnings{Warning: "restic backup finished with warnings (exit status 3)", UnreadableCount: 0}}.Record()
	for _, post := range []string{`echo "$SB_OUTCOME $SB_ERROR" > %s`, `echo "$SB_OUTCOME" > %s; exit 4`} {
		j := newLVMJob(t, lvDisk)
		out := filepath.Join(j.dir, "outcome")
		j.c.Hooks = config.Hooks{PostSnapshot: fmt.Sprintf(post, out), Transport: config.TransportLocal}
		j.hv.onStart = func(x string) error {
			require.NoError(t, writeResult(applianceDisk(t, x), okStats, done))
			delete(j.hv.live, x[strings.Index(x, "<name>")+6:strings.Index(x, "</name>")])
			return nil
		}
		rep := j.r.Backup(context.Background(), j.c)
		got, err := os.ReadFile(out)
		require.NoError(t, err)
		if strings.Contains(post, "exit 4") {
			require.Equal(t, StatusFailed, rep.Status, "a failed post_snapshot fails a job with warnings too")
			require.Contains(t, rep.Error, "post_snapshot")
			continue
		}
		require.Equal(t, StatusWarning, rep.Status, rep.Error)
		require.Equal(t, "warning restic backup finished with warnings (exit status 3)\n", string(got))
		j.requireNothingLeft(t)
	}
}
