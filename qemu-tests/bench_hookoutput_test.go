package qemutests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkHookOutputRSS runs `hostctl run` (its own process) for a
// client whose pre_snapshot hook writes 300 MB to its stdout in the guest,
// through the guest agent (guest-exec captures the output, the agent and
// libvirt cap what comes back), and reports hostctl's peak RSS: bounded at
// 64 MiB. The peak is the process's own high-water mark (VmHWM), sampled
// while it runs: its rusage would include its children's, such as the QEMU
// that probes KVM. The hook then fails, so the job stops before its
// snapshot. The ssh and local transports are measured by hostctl/hooks'
// BenchmarkHookOutput300MB. Run with -benchtime 1x.
func BenchmarkHookOutputRSS(b *testing.B) {
	e := needEnv(b)
	c := newAgentClient(b, e, "hookout", 1, smallTree)
	c.startAgent(b)
	var peak int64
	for i := 0; i < b.N; i++ {
		// 2 MB comes back (base64, in one reply) and is cut to its tail.
		// More does not: libvirt's RPC carries at most 4 MiB of reply (6 MB
		// of output fails with "Unable to encode message payload"), and
		// libvirtd reads at most 10 MiB of an agent's reply (300 MB, of
		// which the agent keeps 16 MiB: "No complete agent response found
		// in 10485760 bytes"); either fails the hook.
		for _, size := range []int{2_000_000, 300_000_000} {
			c.setHooks(b, fmt.Sprintf("pre_snapshot = \"head -c %d /dev/zero | tr '\\\\0' x; exit 3\"\ntime_limit = \"5m\"\n", size))
			h, kib := runHookOut(b, e, c)
			fmt.Printf("agent hook writing %d bytes: exit %d, error %q, %d bytes kept, %d dropped; hostctl's peak RSS %.1f MiB\n",
				size, h.Exit, h.Error, len(h.Stdout), h.StdoutDropped, float64(kib)/1024)
			if size == 2_000_000 {
				require.Equal(b, 3, h.Exit, h.Error)
				require.Len(b, h.Stdout, 16<<10)
				require.Equal(b, int64(size-16<<10), h.StdoutDropped)
			} else {
				require.Contains(b, h.Error, "guest agent of")
			}
			peak = max(peak, kib)
			c.requireNothingLeft(b)
		}
	}
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	if peak > 64<<10 {
		b.Errorf("hostctl's peak RSS %d MiB: over the 64 MiB bound", peak>>10)
	}
}

// hookOut is what BenchmarkHookOutputRSS reads of a hook's result.
type hookOut struct {
	Name          string
	Exit          int
	Error         string
	Stdout        string
	StdoutDropped int64 `json:"stdout_dropped"`
}

// runHookOut runs `hostctl run --json` as a process of its own, sampling
// its peak RSS, and returns the job's first hook and the peak (KiB).
func runHookOut(b *testing.B, e *env, c *client) (hookOut, int64) {
	cmd := exec.Command(filepath.Join(e.bin, "hostctl"), "run", "--json", "-c", c.config)
	cmd.Stderr = os.Stderr
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	require.NoError(b, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	var peak int64
	for running := true; running; {
		peak = max(peak, vmHWM(cmd.Process.Pid))
		select {
		case err = <-done:
			running = false
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.Error(b, err, "the hook exits 3: the job fails")
	var reps []struct{ Hooks []hookOut }
	require.NoError(b, json.Unmarshal(stdout.Bytes(), &reps), "%s", stdout.String())
	require.Len(b, reps, 1)
	require.NotEmpty(b, reps[0].Hooks)
	return reps[0].Hooks[0], peak
}

// vmHWM is a process's peak resident set size in KiB (0 once it is gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
