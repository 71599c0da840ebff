package hooks

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A hook's output is the guest's (or a guest-facing service's): it can be
// any amount. hostctl keeps its tail and counts the rest.

// TestHookOutputMemoryBounded: a hook that writes 64 MiB to stdout and
// 16 MiB to stderr costs hostctl a few buffers, not the output (before:
// all of it, twice over).
func TestHookOutputMemoryBounded(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := LocalRunner{}.Run(context.Background(), Hook{Name: "x", Timeout: time.Minute,
		Command: `head -c 67108864 /dev/zero | tr '\0' x; echo END; head -c 16777216 /dev/zero | tr '\0' y >&2; echo ERR-END >&2`})
	runtime.ReadMemStats(&after)
	require.True(t, res.OK(), "%+v", res.Error)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a hook writing 80 MiB: %d KiB allocated", alloc>>10)
	require.Less(t, alloc, uint64(8<<20), "allocated %d bytes for the hook's output", alloc)
	require.Len(t, res.Stdout, maxOutput)
	require.True(t, strings.HasSuffix(res.Stdout, "xxxxEND\n"), "the tail is kept")
	require.True(t, strings.HasSuffix(res.Stderr, "yyyyERR-END\n"))
}

func TestHookOutputDroppedCount(t *testing.T) {
	res := LocalRunner{}.Run(context.Background(), Hook{Name: "x", Timeout: time.Minute,
		Command: `head -c 1000000 /dev/zero | tr '\0' x; echo err >&2`})
	require.True(t, res.OK(), "%+v", res.Error)
	require.Equal(t, int64(1000000-maxOutput), res.StdoutDropped)
	require.Zero(t, res.StderrDropped)
	require.Equal(t, "err\n", res.Stderr)
}

// TestTailBuffer: whatever the sizes of the writes, the buffer holds the
// last max bytes and never more than twice that.
func TestTailBuffer(t *testing.T) {
	for _, sizes := range [][]int{{1}, {10, 10}, {5, 6}, {15, 1, 1, 1}, {100}, {3, 100, 2}, {7, 7, 7, 7, 7, 7}} {
		tb := newTailBuffer(10)
		var all []byte
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte('a' + i)}, n)
			all = append(all, p...)
			k, err := tb.Write(p)
			require.NoError(t, err)
			require.Equal(t, n, k)
			require.LessOrEqual(t, cap(tb.buf), 20, "sizes %v", sizes)
		}
		want := all
		if len(want) > 10 {
			want = want[len(want)-10:]
		}
		require.Equal(t, string(want), tb.String(), "sizes %v", sizes)
		require.Equal(t, int64(len(all)-len(want)), tb.Dropped(), "sizes %v", sizes)
	}
}

// TestAgentOutputTail: guest-exec's output comes back base64 in one
// reply; only its tail is decoded and kept.
func TestAgentOutputTail(t *testing.T) {
	out := append(bytes.Repeat([]byte("o"), 1<<20), "END\n"...)
	reply := fmt.Sprintf(`{"return":{"exited":true,"exitcode":0,"out-data":%q,"err-data":%q}}`,
		base64.StdEncoding.EncodeToString(out), base64.StdEncoding.EncodeToString([]byte("e")))
	done, exit, o, e, err := parseStatus(reply)
	require.NoError(t, err)
	require.True(t, done)
	require.Zero(t, exit)
	require.Len(t, o.data, maxOutput)
	require.True(t, bytes.HasSuffix(o.data, []byte("ooEND\n")))
	require.Equal(t, int64(len(out)-maxOutput), o.dropped)
	require.Equal(t, "e", string(e.data))
	require.Zero(t, e.dropped)
	for n := 0; n < 40; n++ { // every length's padding
		data := bytes.Repeat([]byte{'z'}, n)
		got, dropped, err := decodeTail(base64.StdEncoding.EncodeToString(data), 10)
		require.NoError(t, err, n)
		want := data
		if len(want) > 10 {
			want = want[len(want)-10:]
		}
		require.Equal(t, string(want), string(got), n)
		require.Equal(t, int64(n-len(want)), dropped, n)
	}
}

// hookBenchChild marks the helper process BenchmarkHookOutput300MB starts:
// it runs one hook and exits, so that its peak RSS is the hook run's alone.
const hookBenchChild = "SB_HOOK_BENCH_CHILD"

// TestHookBenchChild is not a test: it is the benchmark's helper process
// and returns at once unless started as one.
func TestHookBenchChild(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv(hookBenchChild))
	if err != nil {
		return
	}
	res := LocalRunner{}.Run(context.Background(), Hook{Name: "x", Timeout: 10 * time.Minute,
		Command: fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x`, n)})
	if !res.OK() || len(res.Stdout) != maxOutput {
		t.Fatalf("hook: %+v (%d bytes kept)", res.Error, len(res.Stdout))
	}
}

// BenchmarkHookOutput300MB runs a hook that writes 300 MB to its stdout in
// a fresh process and reports that process's peak RSS (the bound: 64 MiB).
func BenchmarkHookOutput300MB(b *testing.B) {
	const n = 300_000_000
	var peak int64
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHookBenchChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", hookBenchChild, n))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("helper: %v\n%s", err, out)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		peak = max(peak, ru.Maxrss) // KiB
	}
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.SetBytes(n)
	if peak > 64<<10 {
		b.Errorf("peak RSS %d MiB for a hook writing 300 MB: over the 64 MiB bound", peak>>10)
	}
}
