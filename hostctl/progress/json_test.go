package progress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// A backup and a verify as their appliances report them: every step,
// statistics and done record is a line; backend progress at most once a
// second per job (the total's announcement always); guest text escaped so
// that the stream is safe on a terminal, and decoding it gives back what
// the appliance sent.
func TestJSONGolden(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 3, 30, 0, 0, time.UTC)
	now := t0
	var out bytes.Buffer
	p := NewJSON(&out)
	p.now = func() time.Time { return now }
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	rec := func(at time.Time, r job.Record) job.Record { r.Time = at; return r }

	p.Begin("web", job.ModeBackup)
	in := []struct {
		client  string
		rec     job.Record
		written bool
	}{
		{"web", rec(at(0), job.Step{Name: "mount snapshot"}.Record()), true},
		{"web", rec(at(time.Second), job.Step{Name: "mount snapshot", Elapsed: time.Second}.Record()), true},
		{"web", rec(at(time.Second), job.Progress{Total: 100 << 20}.Record()), true},
		{"web", rec(at(2*time.Second), job.Progress{Bytes: 1 << 20, Files: 3, Path: "etc/passwd"}.Record()), true},
		{"web", rec(at(2*time.Second+300*time.Millisecond), job.Progress{Bytes: 2 << 20, Files: 9, Path: "etc/shadow"}.Record()), false},
		{"web", rec(at(3*time.Second), job.Progress{Bytes: 50 << 20, Files: 90, Path: "srv/" + testutil.Hostile}.Record()), true},
		{"web", rec(at(4*time.Second), job.Stats{Archive: "web-20261201T033000Z", OriginalSize: 100 << 20, DedupSize: 1 << 20}.Record()), true},
		{"web", rec(at(4*time.Second), job.Step{Name: "prune", Elapsed: 20 * time.Millisecond, Error: "borg: " + testutil.Hostile}.Record()), true},
		{"web", rec(at(5*time.Second), job.Done{Status: job.StatusOK, Archive: "web-20261201T033000Z"}.Record()), true},
	}
	for _, r := range in {
		now = r.rec.Time // hostctl's clock as the record arrives
		p.Record(r.client, r.rec)
	}
	p.Begin("web", job.ModeVerify) // the same client's next job: its own throttle
	verify := rec(at(5*time.Second), job.Progress{Bytes: 1 << 20}.Record())
	now = verify.Time
	p.Record("web", verify)
	in = append(in, struct {
		client  string
		rec     job.Record
		written bool
	}{"web", verify, true})

	require.Zero(t, p.Close(), "every line taken")
	testutil.RequireNoControl(t, out.String())
	testutil.Golden(t, "progress.jsonl", out.String())

	sc := bufio.NewScanner(&out)
	var got []Line
	for sc.Scan() {
		var l Line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "line %q", sc.Text())
		got = append(got, l)
	}
	var want []Line
	for i, r := range in {
		if r.written {
			mode := job.ModeBackup
			if i == len(in)-1 {
				mode = job.ModeVerify
			}
			want = append(want, Line{Client: r.client, Mode: mode, Record: r.rec})
		}
	}
	require.Equal(t, want, got, "the records as the appliance sent them")
}

// A reader that went away is no error of the job's: Record goes on.
func TestJSONWriteErrorIgnored(t *testing.T) {
	p := NewJSON(failWriter{})
	p.Begin("web", job.ModeBackup)
	p.Record("web", job.Step{Name: "mount snapshot"}.Record())
	require.Zero(t, p.Close(), "written (and failed): not dropped")
}

// A reader that stops reading holds up no job: records are taken at once,
// what waits is bounded, the rest is dropped in whole lines, and Close
// gives up after its grace.
func TestJSONStalledReader(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	p := NewJSON(w)
	p.Begin("web", job.ModeBackup)
	path := strings.Repeat("p", 900)
	start := time.Now()
	const n = 20000 // about 18 MiB of lines
	for i := 0; i < n; i++ {
		p.Record("web", job.Step{Name: "step " + path}.Record())
	}
	require.Less(t, time.Since(start), 5*time.Second, "Record never waits for the reader")
	p.out.mu.Lock()
	queued := p.out.queued
	p.out.mu.Unlock()
	require.LessOrEqual(t, queued, maxQueued)
	start = time.Now()
	lost := p.out.close(200 * time.Millisecond)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Greater(t, lost, n/2, "the stalled reader lost most lines")

	// The reader that comes back reads whole lines.
	buf := make([]byte, 4096)
	k, err := r.Read(buf)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(buf[:k], []byte(`{"client":"web"`)), "%q", buf[:k])
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }

// None writes nothing, and neither does a Text without a writer.
func TestNone(t *testing.T) {
	None.Begin("web", job.ModeBackup)
	None.Record("web", job.Done{Status: job.StatusOK}.Record())
	p := NewText(nil, false)
	p.Begin("web", job.ModeBackup)
	p.Record("web", job.Done{Status: job.StatusOK}.Record())
}
