// Package ledger records, in the state dir, every host resource a run
// creates (appliance domains, overlays, external snapshots, job disks) and
// every state it puts a client in (suspended, frozen) before it does so,
// and forgets it once it is undone. Whatever a crashed or killed run leaves
// behind is therefore listed here, and the next run (or `hostctl cleanup`)
// undoes it.
package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
)

// Kinds of resources.
const (
	KindDomain   = "domain"   // a transient appliance domain: Name
	KindFile     = "file"     // a file hostctl created: Path (overlay, job disk, cache dir entries)
	KindSnapshot = "snapshot" // an external snapshot: Domain, Disk, Path (overlay), Base, BaseFormat
	// KindLVMSnapshot is an LVM snapshot of this host: VG, Name (the
	// snapshot), Origin (the LV it must be a snapshot of to be removed).
	KindLVMSnapshot = "lvm-snapshot"
	// KindDir is a directory hostctl created for a job's files (the job
	// disk's directory on the run dir): Path. It is removed once empty.
	KindDir = "dir"
	// KindSuspend is a client domain hostctl suspended: Domain. Undone by
	// resuming it, if it is still paused by a suspend.
	KindSuspend = "suspend"
	// KindFreeze is a client domain whose filesystems hostctl froze through
	// the guest agent: Domain. Undone by thawing them.
	KindFreeze = "freeze"
)

// Entry is one recorded resource, or state of a client domain.
type Entry struct {
	Seq   int64  `json:"seq"`
	RunID string `json:"run_id"`
	// Client is the client whose job recorded the entry: a leftover that
	// cannot be removed blocks that client's jobs only. Entries written
	// by a hostctl before this field have none and block every client.
	Client     string    `json:"client,omitempty"`
	Kind       string    `json:"kind"`
	Created    time.Time `json:"created"`
	Name       string    `json:"name,omitempty"`
	Domain     string    `json:"domain,omitempty"`
	Disk       string    `json:"disk,omitempty"`
	Path       string    `json:"path,omitempty"`
	Base       string    `json:"base,omitempty"`
	BaseFormat string    `json:"base_format,omitempty"`
	VG         string    `json:"vg,omitempty"`
	Origin     string    `json:"origin,omitempty"`
	file       string
}

func (e *Entry) String() string {
	switch e.Kind {
	case KindDomain:
		return "appliance domain " + e.Name
	case KindSnapshot:
		return fmt.Sprintf("external snapshot of %s %s (overlay %s)", e.Domain, e.Disk, e.Path)
	case KindLVMSnapshot:
		return fmt.Sprintf("LVM snapshot %s/%s of %s/%s", e.VG, e.Name, e.VG, e.Origin)
	case KindDir:
		return "directory " + e.Path
	case KindSuspend:
		return "suspended domain " + e.Domain
	case KindFreeze:
		return "frozen filesystems of domain " + e.Domain
	default:
		return e.Kind + " " + e.Path
	}
}

// Ledger is the directory of entries.
type Ledger struct {
	dir string
	mu  sync.Mutex
	seq int64
}

// Dir is the ledger's directory (for messages that send the operator there).
func (l *Ledger) Dir() string { return l.dir }

// Open opens (creating) the ledger directory.
func Open(dir string) (*Ledger, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", dir, err)
	}
	return &Ledger{dir: dir}, nil
}

// Record writes e durably and returns it with its sequence number set. Call
// it before creating the resource: a record of something that was never
// created costs one no-op undo, a resource without a record leaks.
func (l *Ledger) Record(e Entry) (*Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := time.Now().UnixNano()
	if seq <= l.seq {
		seq = l.seq + 1
	}
	l.seq = seq
	e.Seq, e.Created = seq, time.Now().UTC()
	e.file = filepath.Join(l.dir, fmt.Sprintf("%020d-%s.json", seq, e.Kind))
	data, err := json.MarshalIndent(&e, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(e.file, data, 0o600); err != nil {
		return nil, fmt.Errorf("record %s: %w", e.String(), err)
	}
	return &e, nil
}

// Forget removes e once the resource is gone.
func (l *Ledger) Forget(e *Entry) error {
	if err := os.Remove(e.file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget %s: %w", e.String(), err)
	}
	return fsutil.SyncDir(l.dir)
}

// List returns all entries, oldest first. Unreadable entries are errors:
// guessing what one meant could remove the wrong thing.
func (l *Ledger) List() ([]*Entry, error) {
	names, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", l.dir, err)
	}
	var out []*Entry
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".json") {
			continue
		}
		p := filepath.Join(l.dir, n.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("ledger entry %s: %w", p, err)
		}
		var e Entry
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("ledger entry %s: %w", p, err)
		}
		e.file = p
		out = append(out, &e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}
