package backend

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// borgLine is one line of borg --log-json output on stderr.
type borgLine struct {
	Type      string   `json:"type"`
	Message   string   `json:"message"`
	Levelname string   `json:"levelname"`
	Msgid     string   `json:"msgid"`
	Finished  bool     `json:"finished"`
	NFiles    int64    `json:"nfiles"`
	Original  int64    `json:"original_size"`
	Path      string   `json:"path"`
	Current   int64    `json:"current"`
	Total     int64    `json:"total"`
	Info      []string `json:"info"`
	Status    string   `json:"status"`
}

// ParseBorgFileStatus reads one line of borg create --list --log-json
// (a file_status record): the path of a file borg could not read ("E")
// or that changed while it read it ("C"), whose content in the archive is
// then incomplete. ok is false for every other line.
func ParseBorgFileStatus(line string) (path string, ok bool) {
	if !strings.Contains(line, `"file_status"`) {
		return "", false
	}
	var l borgLine
	if json.Unmarshal([]byte(line), &l) != nil || l.Type != "file_status" || (l.Status != "E" && l.Status != "C") {
		return "", false
	}
	return l.Path, true
}

// ParseBorgLine turns one stderr line into a progress record (ok) or a log
// message (msg, level). Lines that are not JSON are returned as messages.
func ParseBorgLine(line string) (rec job.Record, isProgress bool, msg, level string) {
	var l borgLine
	if err := json.Unmarshal([]byte(line), &l); err != nil || l.Type == "" {
		return job.Record{}, false, strings.TrimSpace(line), ""
	}
	switch l.Type {
	case "archive_progress":
		if l.Finished {
			return job.Record{}, false, "", ""
		}
		return job.Progress{Files: l.NFiles, Bytes: l.Original, Path: l.Path}.Record(), true, "", ""
	case "progress_percent":
		if l.Finished || l.Total == 0 {
			return job.Record{}, false, "", ""
		}
		p := job.Progress{Bytes: l.Current, Message: fmt.Sprintf("%.1f%%", 100*float64(l.Current)/float64(l.Total))}
		if len(l.Info) > 0 {
			p.Path = l.Info[len(l.Info)-1]
		}
		return p.Record(), true, "", ""
	case "log_message":
		return job.Record{}, false, l.Message, l.Levelname
	case "file_status":
		return job.Record{}, false, "", ""
	case "progress_message":
		// "Initializing cache transaction: …": news, not a problem.
		return job.Record{}, false, strings.TrimSpace(l.Message), "INFO"
	}
	return job.Record{}, false, l.Message, ""
}

// borgStderr consumes borg's stderr: progress becomes (throttled) records,
// messages go to the job log, and warnings/errors are kept for the error.
type borgStderr struct {
	sink     Sink
	every    time.Duration
	mu       sync.Mutex
	last     time.Time
	problems []string
	// unread collects the paths of --list's E and C lines (borg create).
	unread *unreadable
}

func (b *borgStderr) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	log := b.sink.LogWriter()
	for sc.Scan() {
		rec, prog, msg, level := ParseBorgLine(sc.Text())
		if prog {
			if now := time.Now(); now.Sub(b.last) >= b.every {
				b.last = now
				_ = b.sink.Record(rec)
			}
			continue
		}
		if msg == "" {
			if p, ok := ParseBorgFileStatus(sc.Text()); ok && b.unread != nil {
				b.unread.add(p, "")
			}
			continue
		}
		fmt.Fprintf(log, "borg: %s\n", msg)
		// A Python traceback stays in the job log: the message borg
		// logged before it says what went wrong.
		if strings.HasPrefix(msg, "Traceback (most recent call last)") {
			continue
		}
		if level == "ERROR" || level == "CRITICAL" || level == "WARNING" || level == "" {
			b.mu.Lock()
			b.problems = append(b.problems, msg)
			if len(b.problems) > 8 {
				b.problems = b.problems[1:]
			}
			b.mu.Unlock()
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// tail is the one-line reason distilled from the last warnings and
// errors, for the done record.
func (b *borgStderr) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Reason(b.problems)
}

// CreateStats is the part of borg create --json we keep.
type createJSON struct {
	Archive struct {
		Name     string  `json:"name"`
		Duration float64 `json:"duration"`
		Stats    struct {
			Compressed   int64 `json:"compressed_size"`
			Deduplicated int64 `json:"deduplicated_size"`
			NFiles       int64 `json:"nfiles"`
			Original     int64 `json:"original_size"`
		} `json:"stats"`
	} `json:"archive"`
}

// ParseBorgCreate turns borg create --json output into stats.
func ParseBorgCreate(out []byte) (job.Stats, error) {
	var c createJSON
	if err := json.Unmarshal(out, &c); err != nil {
		return job.Stats{}, fmt.Errorf("parse borg create --json: %w", err)
	}
	s := c.Archive.Stats
	return job.Stats{Archive: c.Archive.Name, OriginalSize: s.Original,
		CompressedSize: s.Compressed, DedupSize: s.Deduplicated, Files: s.NFiles}, nil
}

// ParseBorgLast returns the newest archive's name from borg list --json --last 1.
func ParseBorgLast(out []byte) (string, error) {
	var l struct {
		Archives []struct {
			Name string `json:"name"`
		} `json:"archives"`
	}
	if err := json.Unmarshal(out, &l); err != nil {
		return "", fmt.Errorf("parse borg list --json: %w", err)
	}
	for i := len(l.Archives) - 1; i >= 0; i-- {
		if !strings.HasPrefix(l.Archives[i].Name, vmrecord.BorgPrefix) {
			return l.Archives[i].Name, nil
		}
	}
	return "", fmt.Errorf("repository has no archives")
}
