package progress

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// Line is one line of the JSON form: a record of client's appliance for a
// job of mode ("backup", "verify", "restore", "list", …), as the
// appliance sent it.
type Line struct {
	Client string     `json:"client"`
	Mode   string     `json:"mode"`
	Record job.Record `json:"record"`
}

// jsonProgressEvery throttles backend progress records: an appliance may
// send them as fast as its backend reports. The job's progress.jsonl
// keeps them all (to its bound).
const jsonProgressEvery = time.Second

// JSON writes one Line a line (JSON Lines) for other programs. Steps,
// statistics and the done record are all written; backend progress at
// most once a second per job, and always when it announces the total.
// A line is at most one record of the progress channel (64 KiB) escaped.
// The lines are written from a goroutine of their own: a reader that
// stalls loses lines (beyond 1 MiB waiting), never holds up a job.
type JSON struct {
	mu   sync.Mutex
	out  *asyncWriter
	jobs map[string]*jsonJob
	now  func() time.Time
	buf  bytes.Buffer
}

// closeGrace is how long Close waits for the reader to take the last lines.
const closeGrace = 5 * time.Second

type jsonJob struct {
	mode         string
	lastProgress time.Time
}

// NewJSON writes to w until Close.
func NewJSON(w io.Writer) *JSON {
	return &JSON{out: newAsyncWriter(w), jobs: map[string]*jsonJob{}, now: time.Now}
}

// Close waits (a few seconds at most) until the reader has taken the
// lines written, and returns how many it did not get.
func (p *JSON) Close() int { return p.out.close(closeGrace) }

var _ Sink = (*JSON)(nil)

// Begin notes the mode of the client's job for its lines.
func (p *JSON) Begin(client, mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jobs[client] = &jsonJob{mode: mode}
}

// Record writes rec as one line. A reader that went away or stalls is not
// the job's concern: the job goes on, unseen.
func (p *JSON) Record(client string, rec job.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	j := p.jobs[client]
	if j == nil {
		j = &jsonJob{}
		p.jobs[client] = j
	}
	if pr := rec.Progress; pr != nil && !(pr.Total > 0 && pr.Bytes == 0) {
		now := p.now()
		if !j.lastProgress.IsZero() && now.Sub(j.lastProgress) < jsonProgressEvery {
			return
		}
		j.lastProgress = now
	}
	p.buf.Reset()
	enc := json.NewEncoder(&p.buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(Line{Client: client, Mode: j.mode, Record: rec}) != nil {
		return
	}
	p.out.writeLine(textsafe.JSON(p.buf.Bytes()))
}
