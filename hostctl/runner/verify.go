package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// verifyTable is mode verify.
func verifyTable(v *job.Verify) modeTable {
	return modeTable{job.ModeVerify, repoExisting, func(j *job.Job) { j.Verify = v }}
}

// VerifyOptions say which backup a verify restores and how much of it.
type VerifyOptions struct {
	Archive string    // "" = the latest (at or before Time, when set)
	Time    time.Time // see RestoreOptions.Time
	Sample  int       // files chosen at random; 0 = all
	Paths   []string  // only these paths of the tree; empty = all
	GPGKeys []string  // key files besides the profile's (withGPGKeys)
}

// Verify restores a client's backup into scratch space on the appliance's
// cache volume and compares it with the backend's own listing and
// checksums; the scratch space is removed afterwards. The report's Stats
// hold the files and bytes compared (Files, OriginalSize), its Verify
// the appliance's record.
//
// c is one destination of its client: a client with several has one
// verify job and log directory per destination, its row named by its
// profile.
func (r *Runner) Verify(ctx context.Context, c *config.Resolved, o VerifyOptions) *report.Job {
	rep := r.applianceReport(ctx, c.Name, report.ModeVerify, r.jobDir("verify-"+destKey(c)), func(rv *reverter, rep *jobReport) error {
		return r.verify(ctx, c, o, rv, rep)
	})
	rep.Profile = c.RowProfile()
	return rep
}

func (r *Runner) verify(ctx context.Context, c *config.Resolved, o VerifyOptions, rv *reverter, rep *jobReport) error {
	if o.Sample < 0 {
		return fmt.Errorf("verify: sample %d: want 0 (all) or a number of files", o.Sample)
	}
	aj, res, err := r.runFromArchive(ctx, rv, rep, c, verifyTable(&job.Verify{Archive: o.Archive, Time: o.Time, Sample: o.Sample, Paths: o.Paths}),
		named("verify-"+destKey(c)), withGPGKeys(c, o.GPGKeys))
	if err != nil {
		return err
	}
	if v, ok := res.Verification(); ok {
		rep.Stats = &job.Stats{Archive: v.Archive, Files: v.Files, OriginalSize: v.Bytes}
		rep.Verify = &v
	}
	if res.Done.Status != job.StatusOK {
		return fmt.Errorf("verify failed: %s (log: %s)", res.LastError(), aj.logPath())
	}
	return nil
}

// VerifyDue counts a successful backup to destination c and says whether
// its client's verify_every schedule calls for a verify of it now. The
// count lives in the state dir (verify/CLIENT, verify/CLIENT.PROFILE for a
// client's further destinations) and is reset by VerifyDone, so a verify
// that failed is tried again after the next backup.
func (r *Runner) VerifyDue(c *config.Resolved) (bool, error) {
	if c.VerifyEvery <= 0 {
		return false, nil
	}
	p := r.verifyCountPath(destKey(c))
	n := 0
	if b, err := os.ReadFile(p); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("verify schedule of %s: %w", c.Name, err)
	}
	n++
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return false, err
	}
	if err := fsutil.WriteFileAtomic(p, []byte(strconv.Itoa(n)+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("verify schedule of %s: %w", c.Name, err)
	}
	return n >= c.VerifyEvery, nil
}

// VerifyDone restarts destination c's count after a successful verify.
func (r *Runner) VerifyDone(c *config.Resolved) error {
	err := os.Remove(r.verifyCountPath(destKey(c)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (r *Runner) verifyCountPath(client string) string {
	return filepath.Join(r.cfg.Host.StateDir, "verify", client)
}
