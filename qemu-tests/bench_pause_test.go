package qemutests

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pauseRuns is how many backups BenchmarkPauseWindow takes the median of.
const pauseRuns = 5

// BenchmarkPauseWindow measures the pause window (end of pre_snapshot to
// start of on_snapshot: freeze, atomic snapshot of all disks, thaw) of a
// running client with 3 disks and the guest agent, as the median of
// pauseRuns backups. Run with -benchtime 1x.
func BenchmarkPauseWindow(b *testing.B) {
	e := needEnv(b)
	for i := 0; i < b.N; i++ {
		// The pause window does not depend on the data: the Small tree
		// keeps the backups after each snapshot short.
		c := newAgentClient(b, e, fmt.Sprintf("pause%d", i), 3, smallTree)
		c.setHooks(b, "pre_snapshot = \"sync\"\non_snapshot = \"true\"\nfreeze = true\n")
		c.startAgent(b)
		var pauses, frozen []time.Duration
		for run := 0; run < pauseRuns; run++ {
			code, out, _ := hostctl(b, context.Background(), "run", "--json", "-c", c.config)
			require.Equal(b, 0, code)
			r := parseReports(b, out)[0]
			pauses, frozen = append(pauses, r.Pause), append(frozen, r.Frozen)
		}
		med := func(d []time.Duration) time.Duration {
			s := append([]time.Duration(nil), d...)
			sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
			return s[len(s)/2]
		}
		b.ReportMetric(float64(med(pauses).Milliseconds()), "pause-ms")
		b.ReportMetric(float64(med(frozen).Milliseconds()), "frozen-ms")
		fmt.Printf("pause window, 3 disks, fsfreeze, %s: median %s (frozen %s) over %d runs: %v\n",
			accelUsed(c), med(pauses).Round(time.Millisecond), med(frozen).Round(time.Millisecond), pauseRuns, pauses)
	}
}
