package runner

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// repeat is an endless stream of one byte.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// A hostile appliance writes a 64 MiB progress "line": hostctl must not
// hold it in memory, and reads on after it.
func TestProgressGiantLineBounded(t *testing.T) {
	in := io.MultiReader(io.LimitReader(repeat('a'), 64<<20), strings.NewReader("\n"+`{"type":"step","step":{"name":"after the flood"}}`+"\n"))
	var out bytes.Buffer
	p := progress.NewText(&out, false)
	p.Begin("web", job.ModeBackup)
	pr := &progressReader{}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := pr.read(in, func(rec job.Record) bool { p.Record("web", rec); return true })
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, io.EOF)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB reading a 64 MiB line", alloc>>10)
	require.Less(t, alloc, uint64(1<<20), "allocated for one progress line")
	require.Contains(t, out.String(), "after the flood", "the next line is read")
	require.Equal(t, 1, pr.dropped)
}

// A flood of valid records: everything is read (the appliance is only
// slowed by the pipe), but the copy on the host's disk stops at its bound.
func TestProgressFloodLogBounded(t *testing.T) {
	line := `{"type":"progress","progress":{"bytes":1,"path":"` + strings.Repeat("x", 900) + `"}}` + "\n"
	n := (maxProgressLog / len(line)) * 3
	in := io.LimitReader(&lineRepeater{line: line}, int64(n*len(line)))
	logf, err := os.Create(filepath.Join(t.TempDir(), "progress.jsonl"))
	require.NoError(t, err)
	defer logf.Close()
	pr := &progressReader{log: logf}
	got := 0
	require.ErrorIs(t, pr.read(in, func(job.Record) bool { got++; return true }), io.EOF)
	require.Equal(t, n, got, "every record read")
	fi, err := logf.Stat()
	require.NoError(t, err)
	require.LessOrEqual(t, fi.Size(), int64(maxProgressLog+200))
	require.True(t, pr.truncated)
}

type lineRepeater struct {
	line string
	off  int
}

func (l *lineRepeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.line[l.off:])
		n += c
		l.off = (l.off + c) % len(l.line)
	}
	return n, nil
}

// The real channel: FIFOs, a reader goroutine, a drain after the
// appliance is gone, and nothing left blocked.
func TestProgressChannelFIFO(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"))
	require.NoError(t, err)
	rv := &reverter{l: l, runID: "r1"}
	prefix, err := makeProgressPipe(rv, dir)
	require.NoError(t, err)
	ch, err := openProgress(prefix, filepath.Join(dir, "progress.jsonl"))
	require.NoError(t, err)
	w, err := os.OpenFile(prefix+".out", os.O_WRONLY, 0) // QEMU's end
	require.NoError(t, err)
	_, err = w.WriteString(`{"type":"step","step":{"name":"mount snapshot"}}` + "\n" + strings.Repeat("z", 100<<10) + "\n" + `{"type":"done","done":{"status":"ok"}}` + "\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	rec := <-ch.recs
	require.Equal(t, "mount snapshot", rec.Step.Name)
	var rest []job.Record
	start := time.Now()
	ch.drain(200*time.Millisecond, func(r job.Record) { rest = append(rest, r) })
	require.Less(t, time.Since(start), 2*time.Second)
	require.Len(t, rest, 1)
	require.Equal(t, job.RecDone, rest[0].Type)
	require.Equal(t, "1 line(s) over 64 KiB dropped", ch.report())
	data, err := os.ReadFile(filepath.Join(dir, "progress.jsonl"))
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(data), "\n"), "the kept copy has the records, not the overlong line")
	entries, err := l.List()
	require.NoError(t, err)
	require.Len(t, entries, 2, "both FIFOs are in the ledger, for the cleanup")
}

// A record whose payload is not its type's (a hostile appliance's, or one
// of another format) is counted, never printed: the printer would read a
// payload that is not there.
func TestProgressRecordsWithoutTheirPayload(t *testing.T) {
	in := strings.NewReader(`{"type":"step"}` + "\n" + `{"type":"progress","bytes":5}` + "\n" +
		`{"type":"done","step":{"name":"x"}}` + "\n" + `{"type":"step","step":{"name":"ok"}}` + "\n")
	var out bytes.Buffer
	p := progress.NewText(&out, false)
	pr := &progressReader{}
	var got []job.Record
	require.ErrorIs(t, pr.read(in, func(rec job.Record) bool { got = append(got, rec); p.Record("web", rec); return true }), io.EOF)
	require.Len(t, got, 1)
	require.Equal(t, "ok", got[0].Step.Name)
	require.Equal(t, 3, pr.bad)
	require.Equal(t, "web: ok…\n", out.String())
}
