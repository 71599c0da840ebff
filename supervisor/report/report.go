// Package report writes what the appliance did: job.Record lines to the
// result file (fsynced after every record, so a crash leaves a valid prefix)
// and to the live progress port, and human-readable lines to the console and
// the job log. The final record is always a done record.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// SyncWriter is a file that can be flushed to stable storage.
type SyncWriter interface {
	io.Writer
	Sync() error
}

// Reporter fans records and log lines out. It is safe for concurrent use
// (the watchdog and the backend's progress reader write too).
type Reporter struct {
	mu      sync.Mutex
	now     func() time.Time
	result  SyncWriter // nil until the job disk is mounted
	log     SyncWriter // job.log, nil until the job disk is mounted
	console io.Writer
	port    io.Writer // the progress port, nil when absent
	pending []job.Record
	logBuf  []string
	done    bool
}

// New returns a Reporter that logs to console (never nil; io.Discard is fine).
func New(console io.Writer, now func() time.Time) *Reporter {
	if now == nil {
		now = time.Now
	}
	return &Reporter{console: console, now: now}
}

// SetPort adds the live progress channel to the host.
func (r *Reporter) SetPort(w io.Writer) {
	r.mu.Lock()
	r.port = w
	r.mu.Unlock()
}

// Attach starts writing the result and the log to files on the job disk;
// what was recorded before (early boot steps) is written first.
func (r *Reporter) Attach(result, log SyncWriter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.result, r.log = result, log
	for _, l := range r.logBuf {
		_, _ = io.WriteString(r.log, l)
	}
	r.logBuf = nil
	for _, rec := range r.pending {
		if err := r.writeResult(rec); err != nil {
			return err
		}
	}
	r.pending = nil
	return nil
}

// Logf writes a human-readable line to the console and the job log.
func (r *Reporter) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logLine(fmt.Sprintf(format, args...))
}

func (r *Reporter) logLine(msg string) {
	line := fmt.Sprintf("%s sb: %s\n", r.now().UTC().Format("15:04:05.000"), strings.TrimRight(msg, "\n"))
	_, _ = io.WriteString(r.console, line)
	if r.log != nil {
		_, _ = io.WriteString(r.log, line)
	} else {
		r.logBuf = append(r.logBuf, line)
	}
}

// LogWriter returns a writer that copies a tool's raw output into the job
// log (not the console, which is slow at 115200 baud).
func (r *Reporter) LogWriter() io.Writer { return logWriter{r} }

type logWriter struct{ r *Reporter }

func (w logWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	if w.r.log != nil {
		return w.r.log.Write(p)
	}
	w.r.logBuf = append(w.r.logBuf, string(p))
	return len(p), nil
}

// Record writes rec (time filled in) to the result file, fsyncs it, and
// sends it to the progress port. Nothing is recorded after the done record.
func (r *Reporter) Record(rec job.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return fmt.Errorf("record %s after done", rec.Type)
	}
	if rec.Time.IsZero() {
		rec.Time = r.now().UTC()
	}
	if err := rec.Check(); err != nil {
		return fmt.Errorf("record: %w", err) // a bug here: hostctl would refuse the result
	}
	if rec.Type == job.RecDone {
		r.done = true
	}
	if rec.Type != job.RecProgress {
		r.logLine(human(rec))
	}
	if r.port != nil {
		if b, err := json.Marshal(rec); err == nil {
			// Best effort: a host that does not read must not block the job
			// forever, and the result file is the authority anyway.
			_, _ = r.port.Write(append(b, '\n'))
		}
	}
	if r.result == nil {
		r.pending = append(r.pending, rec)
		return nil
	}
	return r.writeResult(rec)
}

func (r *Reporter) writeResult(rec job.Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s record: %w", rec.Type, err)
	}
	if _, err := r.result.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", job.FileResult, err)
	}
	if err := r.result.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", job.FileResult, err)
	}
	return nil
}

// Step records the start of a step and returns the function that records
// its end with the elapsed time and error, and passes the error through:
//
//	end := r.Step("mount snapshot")
//	err = end(mountSnapshot())
func (r *Reporter) Step(name string) func(error) error {
	start := r.now()
	_ = r.Record(job.Step{Name: name}.Record())
	return func(err error) error {
		st := job.Step{Name: name, Elapsed: r.now().Sub(start)}
		if st.Elapsed <= 0 {
			st.Elapsed = 1 // distinguishes an end record from a start record
		}
		if err != nil {
			st.Error = oneLine(err.Error())
		}
		_ = r.Record(st.Record())
		return err
	}
}

// Done writes the final record and fsyncs the job log. err == nil means
// ok, or warning when d carries the backend's Warning; an error makes
// the job failed and its warnings moot.
func (r *Reporter) Done(d job.Done, err error) error {
	if e := r.Record(outcome(d, err).Record()); e != nil {
		return e
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.log != nil {
		return r.log.Sync()
	}
	return nil
}

// outcome is d with its status: failed with err, else warning with a
// warning, else ok; its texts on one line.
func outcome(d job.Done, err error) job.Done {
	d.Status = job.StatusOK
	if d.Warning != "" {
		d.Status = job.StatusWarning
		d.Warning = oneLine(d.Warning)
	}
	if err != nil {
		d.Status = job.StatusFailed
		d.Error = oneLine(err.Error())
		d.Warnings = job.Warnings{}
	}
	return d
}

// Destination records the outcome of destination i of a backup with
// several destinations, its status decided as Done decides the job's.
func (r *Reporter) Destination(i int, d job.Done, stats *job.Stats, err error) error {
	return r.Record(job.Destination{Index: i, Done: outcome(d, err), Stats: stats}.Record())
}

// IsDone reports whether the done record has been written.
func (r *Reporter) IsDone() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// oneLine folds a multi-line error (a tool's stderr tail) onto one line.
func oneLine(s string) string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return strings.Join(f, " | ")
}

// human renders a record for the console and job.log.
func human(r job.Record) string {
	switch {
	case r.Step != nil:
		st := r.Step
		switch {
		case st.Elapsed == 0:
			return "step " + st.Name + " …"
		case st.Error != "":
			return fmt.Sprintf("step %s FAILED after %v: %s", st.Name, st.Elapsed.Round(time.Millisecond), st.Error)
		default:
			return fmt.Sprintf("step %s ok (%v)", st.Name, st.Elapsed.Round(time.Millisecond))
		}
	case r.Stats != nil:
		s := r.Stats
		return fmt.Sprintf("stats archive=%s original=%d compressed=%d deduplicated=%d files=%d", s.Archive, s.OriginalSize, s.CompressedSize, s.DedupSize, s.Files)
	case r.Verify != nil:
		return "verify " + r.Verify.Method
	case r.Done != nil:
		d := r.Done
		s := fmt.Sprintf("done status=%s archive=%s backend=%v ready_after=%v", d.Status, d.Archive, d.BackendElapsed.Round(time.Millisecond), d.ReadyAfter.Round(time.Millisecond))
		if d.Error != "" {
			s += " error: " + d.Error
		}
		if d.Warning != "" {
			s += fmt.Sprintf(" warning: %s (%d unreadable: %s)", d.Warning, d.UnreadableCount, strings.Join(d.Unreadable, ", "))
		}
		return s
	}
	return r.Type
}
