package backend

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
)

// PickAt returns the newest backup taken at or before t (snaps oldest
// first, as Snapshots returns them).
func PickAt(snaps []Snapshot, t time.Time) (Snapshot, error) {
	var best *Snapshot
	for i := range snaps {
		if !snaps[i].Time.After(t) && (best == nil || !snaps[i].Time.Before(best.Time)) {
			best = &snaps[i]
		}
	}
	if best == nil {
		if len(snaps) == 0 {
			return Snapshot{}, fmt.Errorf("the repository has no backup")
		}
		return Snapshot{}, fmt.Errorf("no backup at or before %s: the oldest is %s (%s)",
			t.UTC().Format(time.RFC3339), snaps[0].ID, snaps[0].Time.UTC().Format(time.RFC3339))
	}
	return *best, nil
}

// Latest returns the newest backup.
func Latest(snaps []Snapshot) (Snapshot, error) {
	return PickAt(snaps, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
}

// Entry is one item of a backup as the backend's own listing describes it:
// what a verify compares a restored tree with. Zero fields are unknown to
// that backend (duplicity lists only paths and times).
type Entry struct {
	Path   string // relative to the backed-up root: "etc/hostname"
	Type   byte   // EntryFile, EntryDir, EntrySymlink, EntryOther; 0 unknown
	Size   int64  // regular files; -1 unknown
	Mode   fs.FileMode
	MTime  time.Time
	SHA256 string // content hash (borg), hex
}

// Entry types.
const (
	EntryFile    = 'f'
	EntryDir     = 'd'
	EntrySymlink = 'l'
	EntryOther   = 'o'
)

// Under says whether p is one of paths or below one of them (any path
// when there are none).
func Under(p string, paths []string) bool {
	if len(paths) == 0 {
		return true
	}
	for _, q := range paths {
		if p == q || strings.HasPrefix(p, q+"/") {
			return true
		}
	}
	return false
}

// Compared is the outcome of CompareTree.
type Compared struct {
	Files    int64    // entries compared
	Bytes    int64    // bytes of regular files compared
	Problems []string // one line each: path and what differs
}

// CompareTree checks a restored tree at root against the listing: every
// entry is there with its type, size, permissions, modification time (to
// the second; not for directories, whose times the move of a restore
// touches, nor symlinks) and content hash, as far as the listing knows
// them.
func CompareTree(root string, entries []Entry) Compared {
	var c Compared
	for _, e := range entries {
		c.Files++
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		fi, err := os.Lstat(p)
		if err != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("%s: missing after the restore", e.Path))
			continue
		}
		if t := entryType(fi.Mode()); e.Type != 0 && t != e.Type {
			c.Problems = append(c.Problems, fmt.Sprintf("%s: restored as type %c, listed as %c", e.Path, t, e.Type))
			continue
		}
		if e.Mode != 0 && fi.Mode().Type() != fs.ModeSymlink && fi.Mode().Perm() != e.Mode.Perm() {
			c.Problems = append(c.Problems, fmt.Sprintf("%s: mode %v, listed %v", e.Path, fi.Mode().Perm(), e.Mode.Perm()))
		}
		if !e.MTime.IsZero() && fi.Mode().IsRegular() && fi.ModTime().Unix() != e.MTime.Unix() {
			c.Problems = append(c.Problems, fmt.Sprintf("%s: mtime %s, listed %s", e.Path,
				fi.ModTime().UTC().Format(time.RFC3339), e.MTime.UTC().Format(time.RFC3339)))
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		c.Bytes += fi.Size()
		if e.Size >= 0 && e.Type == EntryFile && fi.Size() != e.Size {
			c.Problems = append(c.Problems, fmt.Sprintf("%s: %d bytes, listed %d", e.Path, fi.Size(), e.Size))
			continue
		}
		if e.SHA256 != "" {
			h, _, err := fsutil.SHA256File(p)
			if err != nil {
				c.Problems = append(c.Problems, fmt.Sprintf("%s: %v", e.Path, err))
			} else if h != e.SHA256 {
				c.Problems = append(c.Problems, fmt.Sprintf("%s: content sha256 %s, listed %s", e.Path, h[:16], e.SHA256[:min(16, len(e.SHA256))]))
			}
		}
	}
	return c
}

func entryType(m fs.FileMode) byte {
	switch {
	case m.IsRegular():
		return EntryFile
	case m.IsDir():
		return EntryDir
	case m.Type() == fs.ModeSymlink:
		return EntrySymlink
	}
	return EntryOther
}
