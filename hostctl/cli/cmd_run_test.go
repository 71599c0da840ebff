package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunHelp: what an operator needs to know about a run is in
// `hostctl run --help`: the exit codes, the time limits and what happens
// when one passes, the hook order, where a job's logs are kept.
func TestRunHelp(t *testing.T) {
	code, out, _ := runMain(t, "run", "--help")
	require.Equal(t, 0, code)
	for _, want := range []string{
		"Exit codes:", "0  success", "1  failure", "2  bad command line or configuration", "3  some jobs were skipped", "4  another hostctl run holds the lock",
		"--wait", "--lock-timeout",
		"time_limit", "run_time_limit", `"time_limit … of the job reached"`, `"run_time_limit … reached"`, "(exit code 1)",
		"pre_snapshot → [freeze] → snapshot → [thaw] → on_snapshot → backup →\npost_snapshot (SB_OUTCOME=ok|warning|failed",
		"on_snapshot runs whenever pre_snapshot ran", "hooks.time_limit is killed",
		"<state_dir>/runs/RUN_ID/CLIENT/", "console.log",
	} {
		require.Contains(t, out, want)
	}
}
