package job

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
)

// Record types in result.jsonl and on the progress port. Each record
// carries the payload of its type, and only that.
const (
	RecStep     = "step"     // a step started or ended: Step
	RecProgress = "progress" // backend progress: Progress
	RecStats    = "stats"    // backend statistics after the backup: Stats
	RecVerify   = "verify"   // the outcome of a verify: Verify
	RecSnapshot = "snapshot" // one backup in the repository (modes list, prune): Snapshot
	RecPruned   = "pruned"   // one backup a prune removed: Pruned
	// RecDestination is the outcome of one destination of a backup with
	// several (Job.Also): Destination. The done record then sums them up.
	RecDestination = "destination"
	RecDone        = "done" // final record: Done
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

// Kinds of backups (Snapshot.Kind).
const (
	KindFull = "full" // duplicity full backup: starts a chain
	KindIncr = "incr" // duplicity incremental: needs its chain back to the full
	// KindSnapshot is a borg archive or restic snapshot: complete on its
	// own (restorable alone, removable alone), its data deduplicated
	// against every other backup in the repository.
	KindSnapshot = "snapshot"
)

// MaxUnreadable is how many unreadable paths a record lists; the count
// says how many there were.
const MaxUnreadable = 20

// Record is one line of the result file and of the progress stream: its
// type, when, and the payload of its type.
type Record struct {
	Type     string        `json:"type"`
	Time     time.Time     `json:"time"`
	Step     *Step         `json:"step,omitempty"`
	Progress *Progress     `json:"progress,omitempty"`
	Stats    *Stats        `json:"stats,omitempty"`
	Verify   *Verification `json:"verify,omitempty"`
	Snapshot *Snapshot     `json:"snapshot,omitempty"`
	Pruned   *Pruned       `json:"pruned,omitempty"`
	Dest     *Destination  `json:"destination,omitempty"`
	Done     *Done         `json:"done,omitempty"`
}

// Destination is the outcome of destination Index of a backup with
// several (0 Job.Repo, i Job.Also[i-1]): its status, error, archive and
// warnings as a done record has them, and its backend's statistics (none
// when it failed before the backend finished).
type Destination struct {
	Index int    `json:"index"`
	Done  Done   `json:"done"`
	Stats *Stats `json:"stats,omitempty"`
}

// Pruned is one backup a prune removed, by its Snapshot.Archive.
type Pruned struct {
	Archive string `json:"archive"`
}

// Step is a step of the appliance's work: started (Elapsed 0) or ended
// (Elapsed > 0, Error when it failed).
type Step struct {
	Name    string        `json:"name"`
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// Progress is the backend's progress: files and bytes so far, the path it
// is at, the tool's own words on it (Message: borg's "25.0%"); Total, sent
// once before the backend starts, is the expected byte count (the space
// the client's filesystems use): the host's ETA.
type Progress struct {
	Files   int64  `json:"files,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// Warnings are what makes a backup "warning": the tool's one-line summary
// (Warning), the first MaxUnreadable paths (relative to the backed-up
// root) it could not read and how many it reported.
type Warnings struct {
	Warning         string   `json:"warning,omitempty"`
	Unreadable      []string `json:"unreadable,omitempty"`
	UnreadableCount int      `json:"unreadable_count,omitempty"`
}

// Stats are the backend's statistics of the archive it wrote.
type Stats struct {
	Archive        string `json:"archive,omitempty"`
	Files          int64  `json:"files,omitempty"`
	OriginalSize   int64  `json:"original_size,omitempty"`
	CompressedSize int64  `json:"compressed_size,omitempty"`
	DedupSize      int64  `json:"deduplicated_size,omitempty"`
	Warnings
}

// Verification is the outcome of a verify: Files and Bytes compared of
// Archive, and Method, what was compared with what.
type Verification struct {
	Archive string `json:"archive"`
	Files   int64  `json:"files"`
	Bytes   int64  `json:"bytes"`
	Method  string `json:"method"`
}

// Snapshot is one backup in a repository: Archive is the backend's id
// (borg archive, restic snapshot id, duplicity backup time), Time when it
// was taken, Full whether it is restorable on its own, Kind the backend's
// word for it (KindFull, KindIncr, KindSnapshot), OriginalSize the size
// of the data it holds and DedupSize the bytes it stores in the
// repository (0 where the backend does not tell).
type Snapshot struct {
	Archive      string    `json:"archive"`
	Time         time.Time `json:"snapshot_time"` // hostctl list --json's key
	Full         bool      `json:"full,omitempty"`
	Kind         string    `json:"kind"`
	OriginalSize int64     `json:"original_size,omitempty"`
	DedupSize    int64     `json:"deduplicated_size,omitempty"`
	// VM says that the backup carries its VM record (vmrecord): the disk
	// layout an in-place recovery maps mount points by.
	VM bool `json:"vm_record,omitempty"`
}

// Done is the final record: the job's Status ("ok", "warning" or
// "failed") and Error, the archive it wrote or restored, the time spent
// in the backup tool itself (BackendElapsed, so the per-job overhead of
// boot, mount and power-off can be told apart) and when the supervisor
// was ready (ReadyAfter, the appliance's monotonic clock since kernel
// start); with status warning the backend's Warnings.
type Done struct {
	Status         string        `json:"status"`
	Error          string        `json:"error,omitempty"`
	Archive        string        `json:"archive,omitempty"`
	BackendElapsed time.Duration `json:"backend_elapsed_ns,omitempty"`
	ReadyAfter     time.Duration `json:"ready_after_ns,omitempty"`
	// VMRecord is a backup's VM record in one line (vmrecord.Summary).
	VMRecord string `json:"vm_record,omitempty"`
	Warnings
}

// Record returns the step as a record.
func (p Step) Record() Record { return Record{Type: RecStep, Step: &p} }

// Record returns the progress as a record.
func (p Progress) Record() Record { return Record{Type: RecProgress, Progress: &p} }

// Record returns the stats as a record.
func (p Stats) Record() Record { return Record{Type: RecStats, Stats: &p} }

// Record returns the verification as a record.
func (p Verification) Record() Record { return Record{Type: RecVerify, Verify: &p} }

// Record returns the snapshot as a record.
func (p Snapshot) Record() Record { return Record{Type: RecSnapshot, Snapshot: &p} }

// Record returns the pruned record.
func (p Pruned) Record() Record { return Record{Type: RecPruned, Pruned: &p} }

// Record returns the destination's record.
func (p Destination) Record() Record { return Record{Type: RecDestination, Dest: &p} }

// Record returns the done record.
func (p Done) Record() Record { return Record{Type: RecDone, Done: &p} }

// Check says whether the record carries its type's payload and no other:
// what hostctl reads of a record is then there.
func (r Record) Check() error {
	payloads := []struct {
		typ string
		set bool
	}{
		{RecStep, r.Step != nil}, {RecProgress, r.Progress != nil}, {RecStats, r.Stats != nil},
		{RecVerify, r.Verify != nil}, {RecSnapshot, r.Snapshot != nil}, {RecPruned, r.Pruned != nil}, {RecDone, r.Done != nil},
		{RecDestination, r.Dest != nil},
	}
	known := false
	for _, p := range payloads {
		switch {
		case p.typ == r.Type && !p.set:
			return fmt.Errorf("%s record without its %q payload", r.Type, p.typ)
		case p.typ == r.Type:
			known = true
		case p.set:
			return fmt.Errorf("%.32q record with a %q payload", r.Type, p.typ)
		}
	}
	if !known {
		return fmt.Errorf("unknown record type %.32q", r.Type)
	}
	// hostctl list prints the kind as it is.
	if s := r.Snapshot; s != nil && s.Kind != KindFull && s.Kind != KindIncr && s.Kind != KindSnapshot {
		return fmt.Errorf("snapshot record of unknown kind %.32q", s.Kind)
	}
	// hostctl records and prints archive names: bounded and printable.
	for _, a := range []*string{snapshotArchive(r.Snapshot), prunedArchive(r.Pruned)} {
		if a != nil && (*a == "" || len(*a) > MaxArchiveName || strings.IndexFunc(*a, unicode.IsControl) >= 0) {
			return fmt.Errorf("%s record: an archive name that is empty, longer than %d bytes or has control characters", r.Type, MaxArchiveName)
		}
	}
	// (A backend may name no archive in its stats.)
	stats := r.Stats
	if d := r.Dest; d != nil {
		if d.Index < 0 || d.Index >= MaxDestinations {
			return fmt.Errorf("destination record: index %d out of range", d.Index)
		}
		if err := d.Done.check(); err != nil {
			return fmt.Errorf("destination record: %w", err)
		}
		stats = d.Stats
	}
	if s := stats; s != nil && (len(s.Archive) > MaxArchiveName || strings.IndexFunc(s.Archive, unicode.IsControl) >= 0) {
		return fmt.Errorf("%s record: an archive name longer than %d bytes or with control characters", r.Type, MaxArchiveName)
	}
	return nil
}

// MaxArchiveName bounds an archive name in a record (borg's are at most
// 255 bytes; ours are CLIENT-RUNID).
const MaxArchiveName = 255

func snapshotArchive(s *Snapshot) *string {
	if s == nil {
		return nil
	}
	return &s.Archive
}

func prunedArchive(p *Pruned) *string {
	if p == nil {
		return nil
	}
	return &p.Archive
}

// ParseRecord reads one record strictly: unknown fields are errors, and
// the record must carry its type's payload (Check).
func ParseRecord(line []byte) (Record, error) {
	var r Record
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return Record{}, err
	}
	if d.More() {
		return Record{}, errors.New("more than one record on the line")
	}
	return r, r.Check()
}

// Result is the parsed result file.
type Result struct {
	Records []Record
	Done    Done // the final record's
}

// TimeLimitExceeded begins the error of a done record whose job the
// supervisor's watchdog stopped: the backend was killed, and may have left
// its lock in the repository.
const TimeLimitExceeded = "time limit exceeded"

// ErrNoDone means the appliance stopped without writing its final record:
// it crashed, was killed or ran out of time. Such a job failed.
var ErrNoDone = errors.New("appliance stopped without a final done record")

// ParseResult reads result.jsonl. A missing final done record is ErrNoDone;
// the records read so far are returned with it, for the report. A record
// that is not one of ours, or a done record hostctl would misread, is an
// error of its own.
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
		rec, err := ParseRecord(sc.Bytes())
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF):
			// A torn last line is what a killed appliance leaves.
			return &r, fmt.Errorf("%s line %d: %w (%w)", FileResult, line, err, ErrNoDone)
		case err != nil:
			return &r, fmt.Errorf("%s line %d: %w", FileResult, line, err)
		}
		r.Records = append(r.Records, rec)
	}
	if err := sc.Err(); err != nil {
		return &r, fmt.Errorf("read %s: %w", FileResult, err)
	}
	if len(r.Records) == 0 || r.Records[len(r.Records)-1].Type != RecDone {
		return &r, ErrNoDone
	}
	done := *r.Records[len(r.Records)-1].Done
	if err := done.check(); err != nil {
		return &r, fmt.Errorf("%s line %d: %w", FileResult, line, err)
	}
	r.Done = done
	return &r, nil
}

// check checks a done record as strictly as Parse checks a job: an
// appliance that is not ours (or a guest that took it over) must not make
// hostctl report a status it does not know or a list it did not bound.
func (d Done) check() error {
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
		return fmt.Errorf("done record: unknown status %.32q", d.Status)
	}
	if len(d.Unreadable) > MaxUnreadable || d.UnreadableCount < len(d.Unreadable) {
		return fmt.Errorf("done record: %d unreadable paths listed, %d counted (at most %d listed)", len(d.Unreadable), d.UnreadableCount, MaxUnreadable)
	}
	// The supervisor writes guest file names printable and bounded
	// (supervisor/backend); anything else did not come from it.
	for _, s := range append([]string{d.Warning, d.VMRecord}, d.Unreadable...) {
		if len(s) > maxWarningText || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return fmt.Errorf("done record: a warning, path or VM record longer than %d bytes or with control characters", maxWarningText)
		}
	}
	return nil
}

// maxWarningText bounds the warning and each unreadable path of a done
// record (the supervisor cuts them at 512 bytes).
const maxWarningText = 1024

// Last returns the last record of a type, if any.
func (r *Result) Last(typ string) (Record, bool) {
	for i := len(r.Records) - 1; i >= 0; i-- {
		if r.Records[i].Type == typ {
			return r.Records[i], true
		}
	}
	return Record{}, false
}

// Stats returns the last stats record's, if any.
func (r *Result) Stats() (Stats, bool) {
	rec, ok := r.Last(RecStats)
	if !ok {
		return Stats{}, false
	}
	return *rec.Stats, true
}

// Verification returns the last verify record's, if any.
func (r *Result) Verification() (Verification, bool) {
	rec, ok := r.Last(RecVerify)
	if !ok {
		return Verification{}, false
	}
	return *rec.Verify, true
}

// Snapshots returns the snapshot records' of a list result, in order.
func (r *Result) Snapshots() []Snapshot {
	var out []Snapshot
	for _, rec := range r.Records {
		if rec.Type == RecSnapshot {
			out = append(out, *rec.Snapshot)
		}
	}
	return out
}

// Pruned returns the archives of a prune result's pruned records, in order.
func (r *Result) Pruned() []string {
	var out []string
	for _, rec := range r.Records {
		if rec.Type == RecPruned {
			out = append(out, rec.Pruned.Archive)
		}
	}
	return out
}

// Destinations returns the destination records' of a backup with several
// destinations, by index; a destination without one is missing (its
// appliance stopped before it got there).
func (r *Result) Destinations() map[int]Destination {
	out := map[int]Destination{}
	for _, rec := range r.Records {
		if rec.Type == RecDestination {
			out[rec.Dest.Index] = *rec.Dest
		}
	}
	return out
}

// Steps returns the step records', in order.
func (r *Result) Steps() []Step {
	var out []Step
	for _, rec := range r.Records {
		if rec.Type == RecStep {
			out = append(out, *rec.Step)
		}
	}
	return out
}

// LastError returns the error of the done record or else of the last failed step.
func (r *Result) LastError() string {
	if r.Done.Error != "" {
		return r.Done.Error
	}
	for i := len(r.Records) - 1; i >= 0; i-- {
		if s := r.Records[i].Step; s != nil && s.Error != "" {
			return s.Name + ": " + s.Error
		}
	}
	return ""
}
