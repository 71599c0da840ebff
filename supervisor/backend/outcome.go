package backend

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// What makes a backup "ok", "warning" or failed, the same for every
// backend: a source that is not there fails before the tool runs; the
// tool's own "finished, but" exit (borg 1, restic 3) or read errors it
// logged (duplicity) make a warning that lists what it could not read; an
// archive without files fails. Only an ok backup is followed by retention
// (supervisor/run).

// checkSources fails a backup before the tool runs when a source path is
// not in the client's tree: borg and restic warn and archive the rest,
// duplicity archives nothing, and either looks like a backup. The path is
// resolved inside the snapshot dir without following a symlink out of it
// (os.Root) nor one at its last component (Lstat: the tools archive a
// symlink as a symlink).
func checkSources(req Request) error {
	rels, err := SourceArgs(req.Job.Backup.Source)
	if err != nil {
		return err
	}
	dir := filepath.Join(req.Root, req.D().Snapshot)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open the snapshot %s: %w", req.D().Snapshot, err)
	}
	defer root.Close()
	var missing []string
	for i, rel := range rels {
		if rel == "." {
			continue
		}
		src := path.Clean(req.Job.Backup.Source[i])
		_, err := root.Lstat(rel)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, src)
		default:
			// A symlink on the way that points out of the tree: the
			// tool would read the appliance's files, not the client's.
			return fmt.Errorf("backup source %s cannot be resolved inside the client's filesystem: %w", src, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("backup source %s: not found in the client's filesystem (nothing backed up, retention not run)", strings.Join(missing, ", "))
	}
	return nil
}

// emptyArchive is the error of an archive that holds no files (borg and
// restic count regular files; duplicity counts directories too, so its
// minimum is the backed-up root): a source that is empty or excluded
// entirely. The archive stays in the repository; it is not a backup.
func emptyArchive(tool string, rec job.Stats, min int64) error {
	if rec.Files > min {
		return nil
	}
	return fmt.Errorf("%s: archive %s holds no files: nothing was backed up (are the sources empty or excluded?)", tool, rec.Archive)
}

// unreadable collects the paths a tool reported it could not read,
// relative to the backed-up root: the first job.MaxUnreadable, and how
// many. A guest names its files, so each is bounded and stripped of
// control characters.
type unreadable struct {
	mu       sync.Mutex
	snapshot string // the snapshot dir as the tool saw it, stripped from absolute paths
	paths    []string
	last     string
	count    int
	// first is the first path with why it could not be read, for the
	// warning's one line.
	first string
}

// maxPathText bounds one listed path.
const maxPathText = 512

// add notes one path and, where the tool says it, why ("" otherwise).
func (u *unreadable) add(p, why string) {
	p = printable(relToSnapshot(u.snapshot, p))
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.first == "" && why != "" {
		u.first = p + ": " + printable(why)
	}
	// Tools report some files twice in a row (duplicity: once per read).
	if p == u.last {
		return
	}
	u.last = p
	for _, q := range u.paths {
		if q == p {
			return
		}
	}
	u.count++
	if len(u.paths) < job.MaxUnreadable {
		u.paths = append(u.paths, p)
	}
}

// record puts what was collected into the stats.
func (u *unreadable) record(rec *job.Stats) {
	u.mu.Lock()
	defer u.mu.Unlock()
	rec.Unreadable = append([]string(nil), u.paths...)
	rec.UnreadableCount = u.count
}

// relToSnapshot makes a tool's path relative to the backed-up root.
func relToSnapshot(snapshot, p string) string {
	if snapshot != "" {
		s := strings.TrimSuffix(snapshot, "/")
		if p == s {
			return "."
		}
		if r, ok := strings.CutPrefix(p, s+"/"); ok {
			p = r
		}
	}
	p = strings.TrimPrefix(p, "./")
	if p == "" {
		return "."
	}
	return p
}

// printable replaces control characters (a terminal's escape sequences)
// and invalid UTF-8, and cuts a path to maxPathText bytes.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > maxPathText {
		s = strings.ToValidUTF8(s[:maxPathText-len("…")], "") + "…"
	}
	return s
}

// warning is the Warning of a stats record: the command, its exit status
// (-1: none), how many items it could not read, and the first of them
// with why, or else the tool's own last words.
func warning(cmd string, code int, u *unreadable, tail string) string {
	u.mu.Lock()
	n, first := u.count, u.first
	u.mu.Unlock()
	s := fmt.Sprintf("%s finished with warnings (exit status %d)", cmd, code)
	if code < 0 {
		s = cmd + " finished with warnings"
	}
	if n > 0 {
		s += fmt.Sprintf(": %d item(s) could not be read", n)
	}
	switch {
	case first != "":
		s += ", e.g. " + first
	case tail != "":
		s += ": " + tail
	}
	return printable(s)
}
