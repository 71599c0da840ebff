package runner

import (
	"fmt"
	"io"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// progressPrinter turns the appliance's progress records into lines for the
// operator. Backend progress is throttled; steps and the end always print.
type progressPrinter struct {
	w         io.Writer
	client    string
	lastPrint time.Time
	// tty: redraw one status line (bar, rate, ETA) instead of printing
	// periodic lines; chosen when w is a terminal.
	tty      bool
	barShown bool
	start    time.Time
	// total is the expected byte count (ETA); 0 = unknown.
	total int64
}

// progressEvery throttles backend progress lines.
const progressEvery = 5 * time.Second

// barEvery throttles terminal redraws.
const barEvery = 250 * time.Millisecond

func newProgressPrinter(w io.Writer, client string) *progressPrinter {
	return &progressPrinter{w: w, client: client, tty: isTerminal(w), start: time.Now()}
}

// clearBar removes the status line before a normal line is printed.
func (p *progressPrinter) clearBar() {
	if p.barShown {
		fmt.Fprint(p.w, "\r\033[K")
		p.barShown = false
	}
}

// print shows one record. Everything in it but the numbers comes from the
// appliance, and the paths from the guest: it reaches the terminal only
// through textsafe.
func (p *progressPrinter) print(rec job.Record) {
	if p.w == nil {
		return
	}
	if rec.Progress == nil {
		p.clearBar()
	}
	switch {
	case rec.Step != nil:
		st := *rec.Step
		st.Name, st.Error = textsafe.Line(st.Name), textsafe.Line(st.Error)
		switch {
		case st.Error != "":
			fmt.Fprintf(p.w, "%s: %s failed after %s: %s\n", p.client, st.Name, st.Elapsed.Round(time.Millisecond), st.Error)
		case st.Elapsed > 0:
			fmt.Fprintf(p.w, "%s: %s done (%s)\n", p.client, st.Name, st.Elapsed.Round(time.Millisecond))
		default:
			fmt.Fprintf(p.w, "%s: %s…\n", p.client, st.Name)
		}
	case rec.Progress != nil:
		pr := *rec.Progress
		pr.Path = textsafe.Line(pr.Path)
		if pr.Total > 0 {
			p.total = pr.Total // announced before the backend starts
			if pr.Bytes == 0 {
				return
			}
		}
		every := progressEvery
		if p.tty {
			every = barEvery
		}
		if time.Since(p.lastPrint) < every {
			return
		}
		p.lastPrint = time.Now()
		line := statusLine(p.client, pr.Bytes, pr.Files, p.total, time.Since(p.start), pr.Path)
		if p.tty {
			fmt.Fprintf(p.w, "\r\033[K%s", truncate(line, 120))
			p.barShown = true
		} else {
			fmt.Fprintln(p.w, line)
		}
	case rec.Done != nil:
		fmt.Fprintf(p.w, "%s: appliance done: %s\n", p.client, textsafe.Line(rec.Done.Status))
	}
}
