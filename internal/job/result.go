package job

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Record types in result.jsonl and on the progress port.
const (
	RecStep     = "step"     // a step started (Step) or ended (Step + Error/Elapsed)
	RecProgress = "progress" // backend progress: Files, Bytes
	RecStats    = "stats"    // backend statistics after the backup/restore
	RecDone     = "done"     // final record: Status is "ok", "warning" or "failed"
)

// Status values of the done record.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
	// StatusWarning: the backend finished and wrote its archive, but said
	// it is not complete (borg exit 1, restic exit 3, duplicity's read
	// errors), e.g. files it could not read. Retention does not run.
	StatusWarning = "warning"
)

// MaxUnreadable is how many unreadable paths a record lists; the count
// says how many there were.
const MaxUnreadable = 20

// Record is one line of the result file and of the progress stream.
type Record struct {
	Type    string        `json:"type"`
	Time    time.Time     `json:"time"`
	Step    string        `json:"step,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	Error   string        `json:"error,omitempty"`
	Message string        `json:"message,omitempty"`

	// progress
	Files int64  `json:"files,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	Path  string `json:"path,omitempty"`
	// Total is the expected byte count of the backup (the space its
	// filesystems use), sent once before the backend starts: the host's ETA.
	Total int64 `json:"total,omitempty"`

	// stats and done
	Archive        string `json:"archive,omitempty"`
	OriginalSize   int64  `json:"original_size,omitempty"`
	CompressedSize int64  `json:"compressed_size,omitempty"`
	DedupSize      int64  `json:"deduplicated_size,omitempty"`
	Status         string `json:"status,omitempty"`
	// BackendElapsed is the time spent in the backup tool itself, so that the
	// per-job overhead (boot, mount, power-off) can be told apart.
	BackendElapsed time.Duration `json:"backend_elapsed_ns,omitempty"`
	// ReadyAt is when the supervisor finished booting (for "done" records),
	// as the appliance's monotonic clock since kernel start.
	ReadyAfter time.Duration `json:"ready_after_ns,omitempty"`

	// stats and done of a backup with warnings: Warning is the tool's
	// one-line summary, Unreadable the first MaxUnreadable paths
	// (relative to the backed-up root) it could not read, UnreadableCount
	// how many it reported.
	Warning         string   `json:"warning,omitempty"`
	Unreadable      []string `json:"unreadable,omitempty"`
	UnreadableCount int      `json:"unreadable_count,omitempty"`

	// snapshot records (mode list): Archive is the backend's id
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
	Full         bool      `json:"full,omitempty"`
	Kind         string    `json:"kind,omitempty"`
}

// Result is the parsed result file.
type Result struct {
	Records []Record
	Done    Record // the final record
}

// ErrNoDone means the appliance stopped without writing its final record:
// it crashed, was killed or ran out of time. Such a job failed.
var ErrNoDone = errors.New("appliance stopped without a final done record")

// ParseResult reads result.jsonl. A missing final done record is ErrNoDone;
// the records read so far are returned with it, for the report.
func ParseResult(data []byte) (*Result, error) {
	var r Result
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			// A torn last line is what a killed appliance leaves.
			return &r, fmt.Errorf("%s line %d: %w (%w)", FileResult, line, err, ErrNoDone)
		}
		r.Records = append(r.Records, rec)
	}
	if err := sc.Err(); err != nil {
		return &r, fmt.Errorf("read %s: %w", FileResult, err)
	}
	if len(r.Records) == 0 || r.Records[len(r.Records)-1].Type != RecDone {
		return &r, ErrNoDone
	}
	done := r.Records[len(r.Records)-1]
	if err := done.checkDone(); err != nil {
		return &r, fmt.Errorf("%s line %d: %w", FileResult, line, err)
	}
	r.Done = done
	return &r, nil
}

// checkDone checks a done record as strictly as Parse checks a job: an
// appliance that is not ours (or a guest that took it over) must not make
// hostctl report a status it does not know or a list it did not bound.
func (d Record) checkDone() error {
	switch d.Status {
	case StatusOK, StatusFailed:
		if d.Warning != "" || len(d.Unreadable) > 0 || d.UnreadableCount != 0 {
			return fmt.Errorf("done record: status %q with warnings", d.Status)
		}
	case StatusWarning:
		if d.Warning == "" {
			return fmt.Errorf("done record: status %q without a warning", d.Status)
		}
	default:
		return fmt.Errorf("done record: unknown status %q", d.Status)
	}
	if len(d.Unreadable) > MaxUnreadable || d.UnreadableCount < len(d.Unreadable) {
		return fmt.Errorf("done record: %d unreadable paths listed, %d counted (at most %d listed)", len(d.Unreadable), d.UnreadableCount, MaxUnreadable)
	}
	// The supervisor writes guest file names printable and bounded
	// (supervisor/backend); anything else did not come from it.
	for _, s := range append([]string{d.Warning}, d.Unreadable...) {
		if len(s) > maxWarningText || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return fmt.Errorf("done record: a warning or path longer than %d bytes or with control characters", maxWarningText)
		}
	}
	return nil
}

// maxWarningText bounds the warning and each unreadable path of a done
// record (the supervisor cuts them at 512 bytes).
const maxWarningText = 1024

// Stats returns the last stats record, if any.
func (r *Result) Stats() (Record, bool) { return r.Last(RecStats) }

// Last returns the last record of a type, if any.
func (r *Result) Last(typ string) (Record, bool) {
	for i := len(r.Records) - 1; i >= 0; i-- {
		if r.Records[i].Type == typ {
			return r.Records[i], true
		}
	}
	return Record{}, false
}

// LastError returns the error of the done record or else of the last failed step.
func (r *Result) LastError() string {
	if r.Done.Error != "" {
		return r.Done.Error
	}
	for i := len(r.Records) - 1; i >= 0; i-- {
		if r.Records[i].Error != "" {
			return r.Records[i].Step + ": " + r.Records[i].Error
		}
	}
	return ""
}
