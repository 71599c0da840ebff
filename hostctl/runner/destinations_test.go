package runner

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// twoDests is a client with destinations "local" and "offsite".
func twoDests() *config.Resolved {
	cl := &config.Client{Name: "web"}
	c := &config.Resolved{Client: cl, Profile: &config.Profile{Name: "local"}}
	c.Also = []*config.Resolved{{Client: cl, Profile: &config.Profile{Name: "offsite"}, Index: 1}}
	return c
}

// destinationRows gives each destination the outcome the appliance
// recorded for it; a destination it says nothing of, or one it calls ok
// without stats, failed; a job that ended before its destinations gives
// every row its own outcome.
func TestDestinationRows(t *testing.T) {
	stats := &job.Stats{Archive: "web-1", Files: 12}
	rec := func(i int, d job.Done, s *job.Stats) job.Record {
		return job.Destination{Index: i, Done: d, Stats: s}.Record()
	}
	for _, tc := range []struct {
		name   string
		status string // the job's
		err    string
		recs   []job.Record // nil: no result (the appliance never answered)
		want   []string     // status per row
		errs   []string
	}{
		{"both ok", job.StatusOK, "", []job.Record{rec(0, job.Done{Status: job.StatusOK}, stats), rec(1, job.Done{Status: job.StatusOK}, stats)},
			[]string{job.StatusOK, job.StatusOK}, []string{"", ""}},
		{"offsite down", job.StatusWarning, "", []job.Record{rec(0, job.Done{Status: job.StatusOK}, stats),
			rec(1, job.Done{Status: job.StatusFailed, Error: "ssh: connect to host nas port 22: Connection refused"}, nil)},
			[]string{job.StatusOK, job.StatusFailed}, []string{"", "Connection refused"}},
		{"offsite not reported", job.StatusWarning, "", []job.Record{rec(0, job.Done{Status: job.StatusOK}, stats)},
			[]string{job.StatusOK, job.StatusFailed}, []string{"", "no outcome for this destination"}},
		{"ok without stats", job.StatusOK, "", []job.Record{rec(0, job.Done{Status: job.StatusOK}, stats), rec(1, job.Done{Status: job.StatusOK}, nil)},
			[]string{job.StatusOK, job.StatusFailed}, []string{"", "no backup statistics"}},
		{"snapshot failed", job.StatusFailed, "pre_snapshot failed", nil,
			[]string{job.StatusFailed, job.StatusFailed}, []string{"pre_snapshot failed", "pre_snapshot failed"}},
		{"skipped", report.StatusSkipped, "shut off", nil,
			[]string{report.StatusSkipped, report.StatusSkipped}, []string{"shut off", "shut off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := newJobReport("web", "", t.TempDir())
			rep.Status, rep.Error, rep.Archive = tc.status, tc.err, "web-1"
			rep.Cleanups = []string{"one cleanup"}
			if tc.recs != nil {
				rep.result = &job.Result{Records: tc.recs}
			}
			rows := destinationRows(twoDests(), rep)
			require.Len(t, rows, 2)
			for i, row := range rows {
				require.Equal(t, []string{"local", "offsite"}[i], row.Profile)
				require.Equal(t, tc.want[i], row.Status, "row %d: %s", i, row.Error)
				require.Contains(t, row.Error, tc.errs[i])
			}
			require.Equal(t, "web (offsite)", rows[1].Name())
			require.Len(t, rows[0].Cleanups, 1, "cleanups are reported once")
			require.Empty(t, rows[1].Cleanups)
		})
	}
}
