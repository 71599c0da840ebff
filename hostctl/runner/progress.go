package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/units"
)

// progressPrinter turns the appliance's progress records into lines for the
// operator. Backend progress is throttled; steps and the end always print.
type progressPrinter struct {
	w         io.Writer
	client    string
	lastPrint time.Time
}

// progressEvery throttles backend progress lines.
const progressEvery = 5 * time.Second

func newProgressPrinter(w io.Writer, client string) *progressPrinter {
	return &progressPrinter{w: w, client: client}
}

// follow prints the complete lines of file past offset and returns the new
// offset. A partial last line is left for the next call.
func (p *progressPrinter) follow(file string, offset int64) int64 {
	f, err := os.Open(file)
	if err != nil {
		return offset
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset
	}
	rd := bufio.NewReader(f)
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return offset // partial or no line: read again later
		}
		offset += int64(len(line))
		var rec job.Record
		if json.Unmarshal(line, &rec) == nil {
			p.print(rec)
		}
	}
}

func (p *progressPrinter) print(rec job.Record) {
	if p.w == nil {
		return
	}
	switch rec.Type {
	case job.RecStep:
		switch {
		case rec.Error != "":
			fmt.Fprintf(p.w, "%s: %s failed after %s: %s\n", p.client, rec.Step, rec.Elapsed.Round(time.Millisecond), rec.Error)
		case rec.Elapsed > 0:
			fmt.Fprintf(p.w, "%s: %s done (%s)\n", p.client, rec.Step, rec.Elapsed.Round(time.Millisecond))
		default:
			fmt.Fprintf(p.w, "%s: %s…\n", p.client, rec.Step)
		}
	case job.RecProgress:
		if time.Since(p.lastPrint) < progressEvery {
			return
		}
		p.lastPrint = time.Now()
		if rec.Files > 0 {
			fmt.Fprintf(p.w, "%s: %s, %d files\n", p.client, units.Bytes(rec.Bytes), rec.Files)
		} else {
			fmt.Fprintf(p.w, "%s: %s\n", p.client, units.Bytes(rec.Bytes))
		}
	case job.RecDone:
		fmt.Fprintf(p.w, "%s: appliance done: %s\n", p.client, rec.Status)
	}
}
