package runner

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Bounds of what hostctl takes from an appliance's progress channel: the
// appliance may be a guest's, and what it sends must cost hostctl a bounded
// amount of memory and disk whatever it is. An honest record is well under
// a KiB (a path is at most 4 KiB); the log copy holds a day of records.
const (
	maxProgressLine = 64 << 10 // a longer line is dropped
	maxProgressLog  = 16 << 20 // progress.jsonl stops here
)

// progressReader reads the appliance's JSON-lines progress records with
// one fixed buffer, keeps a copy of the first maxProgressLog bytes in the
// job's progress.jsonl, and drops lines longer than maxProgressLine.
type progressReader struct {
	log       io.Writer // nil: no copy
	logged    int64
	truncated bool
	dropped   int // overlong lines
	bad       int // lines that are not a record
}

// read reads r until it fails (or emit returns false), passing each record
// to emit. The returned error is r's (io.EOF at its end).
func (p *progressReader) read(r io.Reader, emit func(job.Record) bool) error {
	buf := make([]byte, maxProgressLine)
	have := 0
	skip := false // inside an overlong line: drop up to its newline
	for {
		n, err := r.Read(buf[have:])
		have += n
		start := 0
		for {
			i := bytes.IndexByte(buf[start:have], '\n')
			if i < 0 {
				break
			}
			line := buf[start : start+i+1]
			start += i + 1
			if skip {
				skip = false
				continue
			}
			if !p.line(line, emit) {
				return nil
			}
		}
		have = copy(buf, buf[start:have])
		if have == len(buf) {
			if !skip {
				p.dropped++
			}
			skip, have = true, 0
		}
		if err != nil {
			return err
		}
	}
}

// line handles one complete line (newline included).
func (p *progressReader) line(line []byte, emit func(job.Record) bool) bool {
	if p.log != nil && !p.truncated {
		if p.logged+int64(len(line)) <= maxProgressLog {
			n, _ := p.log.Write(line)
			p.logged += int64(n)
		} else {
			p.truncated = true
			fmt.Fprintf(p.log, "{\"type\":\"truncated\",\"message\":\"hostctl keeps the first %d bytes of the progress channel\"}\n", maxProgressLog)
		}
	}
	// A record without its payload would not be printed, only counted.
	rec, err := job.ParseRecord(line)
	if err != nil {
		p.bad++
		return true
	}
	return emit(rec)
}

// progressChannel is the host end of one appliance's progress port: two
// FIFOs (virt.ApplianceSpec.ProgressPipe) and a goroutine that reads them.
type progressChannel struct {
	prefix string
	f      *os.File
	recs   chan job.Record
	done   chan struct{}
	wg     sync.WaitGroup
	pr     progressReader
	log    *os.File
}

// makeProgressPipe creates the FIFOs PREFIX.in and PREFIX.out in dir,
// recorded in the ledger first so that a crashed run's cleanup removes
// them, and returns the prefix.
func makeProgressPipe(rv *reverter, dir string) (string, error) {
	prefix := filepath.Join(dir, "progress")
	for _, p := range []string{prefix + ".in", prefix + ".out"} {
		if _, err := rv.record(ledger.Entry{Kind: ledger.KindFile, Path: p}); err != nil {
			return "", err
		}
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return "", fmt.Errorf("progress channel %s: %w", p, err)
		}
	}
	return prefix, nil
}

// openProgress starts reading PREFIX.out. The FIFO is opened read-write:
// the open does not wait for QEMU, and hostctl's own write end keeps a
// read from seeing end-of-file before QEMU opened it (or after it is gone:
// close ends the reading).
func openProgress(prefix, logPath string) (*progressChannel, error) {
	f, err := os.OpenFile(prefix+".out", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("progress channel: %w", err)
	}
	c := &progressChannel{prefix: prefix, f: f, recs: make(chan job.Record, 64), done: make(chan struct{})}
	if logPath != "" {
		if c.log, err = os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
			c.pr.log = c.log
		}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(c.recs)
		_ = c.pr.read(f, func(rec job.Record) bool {
			select {
			case c.recs <- rec:
				return true
			case <-c.done:
				return false
			}
		})
	}()
	return c, nil
}

// drain reads what the appliance left in the pipe (it is gone), for at
// most grace, passing each record to emit, and closes the channel.
func (c *progressChannel) drain(grace time.Duration, emit func(job.Record)) {
	_ = c.f.SetReadDeadline(time.Now().Add(grace))
	for rec := range c.recs {
		emit(rec)
	}
	c.close()
}

// close stops reading and releases the FIFO (its files go with the ledger).
func (c *progressChannel) close() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	_ = c.f.Close()
	c.wg.Wait()
	if c.log != nil {
		_ = c.log.Close()
	}
}

// report says what was dropped, for the job's log lines; "" when nothing.
func (c *progressChannel) report() string {
	var parts []string
	if c.pr.dropped > 0 {
		parts = append(parts, fmt.Sprintf("%d line(s) over %d KiB dropped", c.pr.dropped, maxProgressLine>>10))
	}
	if c.pr.bad > 0 {
		parts = append(parts, fmt.Sprintf("%d line(s) that are no record ignored", c.pr.bad))
	}
	if c.pr.truncated {
		parts = append(parts, fmt.Sprintf("progress.jsonl stops at %d MiB", maxProgressLog>>20))
	}
	return strings.Join(parts, ", ")
}
