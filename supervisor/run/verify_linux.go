package run

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
)

// verifyScratch is the scratch space of a verify on the cache volume
// (below backend.CacheDir, per client), removed before and after.
func verifyScratch(client string) string {
	return path.Join(backend.CacheDir, "verify", strings.ReplaceAll(client, "/", "_"))
}

// maxProblems is how many differences a failed verify names.
const maxProblems = 10

// verify restores a backup (or a random sample of its files) into scratch
// space on the cache volume and compares it with the backend's listing:
// type, size, permissions, mtime and, where the backend lists one, the
// content hash (borg). restic also checks the restored data against its
// blob hashes (restore --verify), duplicity a whole restore against the
// backup's signatures (verify --compare-data).
func (s *supervisor) verify(ctx context.Context) (job.Done, error) {
	j, v := s.job, s.job.Verify
	done := job.Done{}
	req, err := s.prepare(ctx)
	if err != nil {
		return done, err
	}
	b, err := backend.New(j.Repo.Backend, s.runner, s.rep)
	if err != nil {
		return done, err
	}
	if v.Archive == "" {
		end := s.rep.Step("select backup")
		snaps, err := b.Snapshots(ctx, req)
		if err != nil {
			return done, end(err)
		}
		at := v.Time
		if at.IsZero() {
			at = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		sn, err := backend.PickAt(snaps, at)
		if err != nil {
			return done, end(err)
		}
		v.Archive = sn.ID
		end(nil)
	}
	done.Archive = v.Archive
	scratch := verifyScratch(j.Client)
	host := filepath.Join(req.Root, scratch)
	if err := os.RemoveAll(host); err != nil {
		return done, fmt.Errorf("clear verify scratch %s: %w", scratch, err)
	}
	if err := os.MkdirAll(host, 0o700); err != nil {
		return done, fmt.Errorf("verify scratch %s: %w", scratch, err)
	}
	defer func() {
		if err := os.RemoveAll(host); err != nil {
			s.rep.Logf("remove verify scratch %s: %v", scratch, err)
		}
	}()
	req.Dirs.Restore = scratch
	req.Verify = true
	req.Archive, req.Paths = v.Archive, v.Paths

	end := s.rep.Step("list backup")
	entries, err := b.Entries(ctx, req, v.Archive)
	if err := end(err); err != nil {
		return done, err
	}
	paths, err := job.CleanPaths(v.Paths)
	if err != nil {
		return done, err
	}
	var chosen []backend.Entry
	for _, e := range entries {
		if backend.Under(e.Path, paths) {
			chosen = append(chosen, e)
		}
	}
	if len(chosen) == 0 {
		return done, fmt.Errorf("backup %s lists nothing to verify", v.Archive)
	}
	method := "full restore"
	if n := v.Sample; n > 0 {
		chosen = sample(chosen, n)
		req.Paths = nil
		for _, e := range chosen {
			req.Paths = append(req.Paths, e.Path)
		}
		method = fmt.Sprintf("restore of %d file(s) chosen at random", len(chosen))
		s.rep.Logf("verify sample: %s", strings.Join(req.Paths, " "))
	}
	end = s.rep.Step("restore to scratch")
	start := time.Now()
	_, err = b.Restore(ctx, req)
	done.BackendElapsed = time.Since(start)
	if err := end(err); err != nil {
		return done, fmt.Errorf("verify of %s: %w", v.Archive, err)
	}
	end = s.rep.Step("compare")
	cmp := backend.CompareTree(host, chosen)
	rec := job.Verification{Archive: v.Archive, Files: cmp.Files, Bytes: cmp.Bytes,
		Method: fmt.Sprintf("%s compared with the %s listing (%s)", method, j.Repo.Backend, compared(j.Repo.Backend))}
	_ = s.rep.Record(rec.Record())
	if len(cmp.Problems) > 0 {
		for _, p := range cmp.Problems {
			s.rep.Logf("verify: %s", p)
		}
		shown := cmp.Problems[:min(len(cmp.Problems), maxProblems)]
		return done, end(fmt.Errorf("verify of %s: %d of %d item(s) differ from the backup's listing: %s",
			v.Archive, len(cmp.Problems), cmp.Files, strings.Join(shown, "; ")))
	}
	s.rep.Logf("verify of %s: %d item(s), %d bytes match", v.Archive, cmp.Files, cmp.Bytes)
	return done, end(nil)
}

// compared says what a backend's verify compares.
func compared(name string) string {
	switch name {
	case "borg":
		return "type, size, mode, mtime, sha256 of the content"
	case "restic":
		return "type, size, mode, mtime; data checked against restic's blob hashes"
	case "duplicity":
		return "presence, mtime; a full restore checked by duplicity verify --compare-data"
	}
	return "listing"
}

// sample picks up to n regular files (entries of unknown type count as
// files, the tool tells only at restore) at random.
func sample(entries []backend.Entry, n int) []backend.Entry {
	var files []backend.Entry
	for _, e := range entries {
		if e.Type == backend.EntryFile || e.Type == 0 {
			files = append(files, e)
		}
	}
	rand.Shuffle(len(files), func(i, k int) { files[i], files[k] = files[k], files[i] })
	return files[:min(n, len(files))]
}
