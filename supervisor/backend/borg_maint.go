package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/retention"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// BorgLocation is borg's repository for a job: the local path for file
// targets, ssh://user@host:port/path (borg serve on the server) otherwise.
func BorgLocation(r job.Repo, local string) (string, error) {
	t := r.Target
	switch t.Scheme {
	case target.File:
		return local, nil
	case target.SSH, target.SFTP:
		user := ""
		if t.User != "" {
			user = t.User + "@"
		}
		return "ssh://" + user + hostPort(t.Host, t.PortOrDefault()) + t.Path, nil
	}
	return "", fmt.Errorf("borg cannot write to %s:// targets", t.Scheme)
}

// resolve fills in Repo for network targets and writes the ssh files.
func (b *Borg) resolve(req Request) (Request, error) {
	if req.Job.Repo.Target == (target.Target{}) {
		return req, nil // a hand-made job with a local Repo
	}
	loc, err := BorgLocation(*req.Job.Repo, req.Repo)
	if err != nil {
		return req, err
	}
	req.Repo = loc
	return req, prepareTarget(req)
}

// Retain implements Backend: prune, then compact to free the space.
func (b *Borg) Retain(ctx context.Context, req Request) error {
	req, err := b.resolve(req)
	if err != nil {
		return err
	}
	// The backups, then their VM records by the same policy: the
	// records' times are the backups', so the same ones stay.
	for _, series := range []string{req.Job.Client, vmrecord.BorgPrefix + req.Job.Client} {
		argv, err := retention.BorgPrune(req.Repo, series, req.Job.Repo.Retention)
		if err != nil || argv == nil {
			return err
		}
		if _, err := b.borg(ctx, req, argv, "/", true); err != nil {
			return err
		}
	}
	_, err = b.borg(ctx, req, []string{"borg", "compact", "--log-json", "--", req.Repo}, "/", true)
	return err
}

// Check implements Backend. borg check says "problems found" with exit
// status 1, its warning status: for a check that is a failure.
func (b *Borg) Check(ctx context.Context, req Request) error {
	req, err := b.resolve(req)
	if err != nil {
		return err
	}
	r, err := b.run(ctx, req, []string{"borg", "check", "--log-json", "--", req.Repo}, "/", true, nil)
	if err == nil && r.warned {
		err = fmt.Errorf("borg check: exit status 1: the repository has problems: %s", r.tail)
	}
	return err
}

// BreakLock implements Backend: borg break-lock, then borg delete
// --cache-only. borg cannot tell a dead appliance's lock from a live one
// (each boot has another host id), so it would wait for it until its lock
// timeout, every night; and a borg killed while it wrote its cache on the
// cache volume can leave it unreadable (seen after a SIGKILL of hostctl:
// "…/config does not look like a Borg cache" in every later job). The
// cache is rebuilt from the repository; the next backup reads every file
// once (the files cache went with it).
func (b *Borg) BreakLock(ctx context.Context, req Request) error {
	req, err := b.resolve(req)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(req.Repo, "ssh://") {
		if _, err := os.Stat(filepath.Join(req.Root, req.Repo, "config")); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	for _, argv := range [][]string{{"borg", "break-lock", "--", req.Repo}, {"borg", "delete", "--cache-only", "--", req.Repo}} {
		_, err = b.borg(ctx, req, argv, "/", false)
		if err != nil && strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		if err != nil {
			return err
		}
	}
	b.Sink.Logf("borg: the repository's locks and this client's cache removed (the cache is rebuilt from the repository)")
	return nil
}

// Snapshots implements Backend: borg info, for the sizes.
func (b *Borg) Snapshots(ctx context.Context, req Request) ([]Snapshot, error) {
	req, err := b.resolve(req)
	if err != nil {
		return nil, err
	}
	out, err := b.borg(ctx, req, BorgInfoArgs(req.Repo), "/", false)
	if err != nil {
		return nil, err
	}
	return ParseBorgInfo(out)
}

// ParseBorgInfo reads borg info --json of several archives.
func ParseBorgInfo(out []byte) ([]Snapshot, error) {
	var l struct {
		Archives []struct {
			Name  string `json:"name"`
			Start string `json:"start"`
			Stats struct {
				Original int64 `json:"original_size"`
				Dedup    int64 `json:"deduplicated_size"`
				NFiles   int64 `json:"nfiles"`
			} `json:"stats"`
		} `json:"archives"`
	}
	if err := json.Unmarshal(out, &l); err != nil {
		return nil, fmt.Errorf("parse borg info --json: %w", err)
	}
	var s []Snapshot
	records := map[string]bool{}
	for _, a := range l.Archives {
		if strings.HasPrefix(a.Name, vmrecord.BorgPrefix) {
			records[a.Name] = true
		}
	}
	for _, a := range l.Archives {
		if records[a.Name] {
			continue
		}
		// borg prints local time without a zone; the appliance runs in UTC.
		t, err := time.ParseInLocation("2006-01-02T15:04:05.000000", a.Start, time.Local)
		if err != nil {
			return nil, fmt.Errorf("borg info: archive %s: time %q: %w", a.Name, a.Start, err)
		}
		sn := Snapshot{ID: a.Name, Time: t, Full: true, Kind: job.KindSnapshot, Size: a.Stats.Original, Stored: a.Stats.Dedup, Files: a.Stats.NFiles}
		if records[vmrecord.BorgPrefix+a.Name] {
			sn.VM = vmrecord.BorgPrefix + a.Name
		}
		s = append(s, sn)
	}
	return s, nil
}

// Entries implements Backend: borg list with sha256, so that the listing
// itself reads every chunk of the archive.
func (b *Borg) Entries(ctx context.Context, req Request, id string) ([]Entry, error) {
	req, err := b.resolve(req)
	if err != nil {
		return nil, err
	}
	out, err := b.borg(ctx, req, BorgEntriesArgs(req.Repo, id), "/", true)
	if err != nil {
		return nil, err
	}
	return ParseBorgEntries(out)
}

// ParseBorgEntries reads borg list --json-lines output.
func ParseBorgEntries(out []byte) ([]Entry, error) {
	var es []Entry
	files := map[string]Entry{} // by path: the targets of hard links
	for n, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var it struct {
			Source string `json:"source"`
			Type   string `json:"type"`
			Mode   string `json:"mode"`
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			MTime  string `json:"mtime"`
			SHA256 string `json:"sha256"`
		}
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			return nil, fmt.Errorf("parse borg list --json-lines line %d: %w", n+1, err)
		}
		if it.Path == "." || it.Path == "" {
			continue
		}
		e := Entry{Path: it.Path, Size: it.Size, SHA256: it.SHA256, Mode: parsePerm(it.Mode)}
		switch it.Type {
		case "-":
			e.Type = EntryFile
			if it.Source != "" {
				// A further name of a hard-linked file ("hrw-…"): borg
				// lists its size and hash only with the first name.
				e.Size, e.SHA256 = -1, ""
				if f, ok := files[it.Source]; ok {
					e.Size, e.SHA256 = f.Size, f.SHA256
				}
			} else {
				files[it.Path] = e
			}
		case "d":
			e.Type = EntryDir
		case "l":
			e.Type = EntrySymlink
		default:
			e.Type = EntryOther
		}
		if it.MTime != "" {
			t, err := time.ParseInLocation("2006-01-02T15:04:05.000000", it.MTime, time.Local)
			if err != nil {
				return nil, fmt.Errorf("borg list: %s: mtime %q: %w", it.Path, it.MTime, err)
			}
			e.MTime = t
		}
		es = append(es, e)
	}
	return es, nil
}

// parsePerm reads the permission bits of an ls-style mode ("-rwxr-x---");
// 0 when it is not one.
func parsePerm(m string) fs.FileMode {
	if len(m) != 10 {
		return 0
	}
	var p fs.FileMode
	for i, c := range m[1:] {
		if c != '-' && c != 'S' && c != 'T' {
			p |= 1 << (8 - i)
		}
	}
	return p
}
