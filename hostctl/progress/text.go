package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// Text turns the appliances' progress records into lines for the
// operator. Backend progress is throttled; steps and the end always print.
type Text struct {
	mu sync.Mutex
	w  io.Writer
	// tty: redraw one status line (bar, rate, ETA) instead of printing
	// periodic lines; for a terminal.
	tty      bool
	barShown bool
	jobs     map[string]*textJob
	now      func() time.Time
}

// textJob is what the text form keeps of one client's running job.
type textJob struct {
	start, lastPrint time.Time
	// total is the expected byte count (ETA); 0 = unknown.
	total int64
}

// progressEvery throttles backend progress lines.
const progressEvery = 5 * time.Second

// barEvery throttles terminal redraws.
const barEvery = 250 * time.Millisecond

// NewText writes to w: one redrawn status line when tty (w is a terminal),
// else plain periodic lines that suit the journal.
func NewText(w io.Writer, tty bool) *Text {
	return &Text{w: w, tty: tty, jobs: map[string]*textJob{}, now: time.Now}
}

var _ Sink = (*Text)(nil)

// Begin starts the client's job anew: its rate, ETA and throttle.
func (p *Text) Begin(client, _ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jobs[client] = &textJob{start: p.now()}
}

func (p *Text) job(client string) *textJob {
	j := p.jobs[client]
	if j == nil { // a record without Begin: its job starts now
		j = &textJob{start: p.now()}
		p.jobs[client] = j
	}
	return j
}

// clearBar removes the status line before a normal line is printed.
func (p *Text) clearBar() {
	if p.barShown {
		fmt.Fprint(p.w, "\r\033[K")
		p.barShown = false
	}
}

// Record shows one record. Everything in it but the numbers comes from
// the appliance, and the paths from the guest: it reaches the terminal
// only through textsafe.
func (p *Text) Record(client string, rec job.Record) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	j := p.job(client)
	client = textsafe.Line(client)
	if rec.Progress == nil {
		p.clearBar()
	}
	switch {
	case rec.Step != nil:
		st := *rec.Step
		st.Name, st.Error = textsafe.Line(st.Name), textsafe.Line(st.Error)
		switch {
		case st.Error != "":
			fmt.Fprintf(p.w, "%s: %s failed after %s: %s\n", client, st.Name, st.Elapsed.Round(time.Millisecond), st.Error)
		case st.Elapsed > 0:
			fmt.Fprintf(p.w, "%s: %s done (%s)\n", client, st.Name, st.Elapsed.Round(time.Millisecond))
		default:
			fmt.Fprintf(p.w, "%s: %s…\n", client, st.Name)
		}
	case rec.Progress != nil:
		pr := *rec.Progress
		if pr.Total > 0 {
			j.total = pr.Total // announced before the backend starts
			if pr.Bytes == 0 {
				return
			}
		}
		every := progressEvery
		if p.tty {
			every = barEvery
		}
		now := p.now()
		if now.Sub(j.lastPrint) < every {
			return
		}
		j.lastPrint = now
		line := statusLine(client, pr.Bytes, pr.Files, j.total, now.Sub(j.start), textsafe.Line(pr.Path))
		if p.tty {
			fmt.Fprintf(p.w, "\r\033[K%s", truncate(line, 120))
			p.barShown = true
		} else {
			fmt.Fprintln(p.w, line)
		}
	case rec.Done != nil:
		fmt.Fprintf(p.w, "%s: appliance done: %s\n", client, textsafe.Line(rec.Done.Status))
	}
}
