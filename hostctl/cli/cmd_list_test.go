package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

func TestPrintSnapshotsGolden(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printSnapshots(&b, []job.Snapshot{
		{Archive: "2026-03-01T10:00:00Z", Time: t0, Full: true, Kind: job.KindFull, DedupSize: 3 << 20},
		{Archive: "2026-03-02T10:00:00Z", Time: t0.Add(24 * time.Hour), Kind: job.KindIncr, DedupSize: 2048},
		{Archive: "web-20260303T100000Z", Time: t0.Add(48 * time.Hour), Full: true, Kind: job.KindSnapshot, OriginalSize: 5 << 30, DedupSize: 12 << 20, VM: true},
		{Archive: "4f0c2a1b", Time: t0.Add(72 * time.Hour), Full: true, Kind: job.KindSnapshot, OriginalSize: 5 << 30},
		{Archive: "old-appliance", Time: t0.Add(96 * time.Hour), Full: true}, // no kind: full/incr from Full
	})
	testutil.Golden(t, "list.txt", b.String())
}
