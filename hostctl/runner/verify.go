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
	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// ModeVerify is the Report.Mode of a verify job.
const ModeVerify = "verify"

// VerifyOptions say which backup a verify restores and how much of it.
type VerifyOptions struct {
	Archive string    // "" = the latest (at or before Time, when set)
	Time    time.Time // see RestoreOptions.Time
	Sample  int       // files chosen at random; 0 = all
	Paths   []string  // only these paths of the tree; empty = all
}

// Verify restores a client's backup into scratch space on the appliance's
// cache volume and compares it with the backend's own listing and
// checksums; the scratch space is removed afterwards. The report's Stats
// hold the files and bytes compared (Files, OriginalSize), its Verify
// the appliance's record.
func (r *Runner) Verify(ctx context.Context, c *config.Client, o VerifyOptions) *Report {
	return r.applianceReport(ctx, c.Name, ModeVerify, r.jobDir("verify-"+c.Name), func(rv *reverter, rep *Report) error {
		return r.verify(ctx, c, o, rv, rep)
	})
}

func (r *Runner) verify(ctx context.Context, c *config.Client, o VerifyOptions, rv *reverter, rep *Report) error {
	if o.Sample < 0 {
		return fmt.Errorf("verify: sample %d: want 0 (all) or a number of files", o.Sample)
	}
	aj, err := r.clientJob(c, job.ModeVerify, "verify-"+c.Name, repoExisting)
	if err != nil {
		return err
	}
	aj.job.Verify = &job.Verify{Archive: o.Archive, Time: o.Time, Sample: o.Sample, Paths: o.Paths}
	out, err := r.runAppliance(ctx, rv, aj)
	if out != nil {
		rep.Appl = out.elapsed
	}
	if err != nil {
		return err
	}
	rep.Archive = out.result.Done.Archive
	rep.Backend, rep.ReadyIn = out.result.Done.BackendElapsed, out.result.Done.ReadyAfter
	if v, ok := out.result.Verification(); ok {
		rep.Stats = &job.Stats{Archive: v.Archive, Files: v.Files, OriginalSize: v.Bytes}
		rep.Verify = &v
	}
	if out.result.Done.Status != job.StatusOK {
		return fmt.Errorf("verify failed: %s (log: %s)", out.result.LastError(), aj.logPath())
	}
	return nil
}

// VerifyDue counts a successful backup of c and says whether its
// verify_every schedule calls for a verify now. The count lives in the
// state dir (verify/CLIENT) and is reset by VerifyDone, so a verify that
// failed is tried again after the next backup.
func (r *Runner) VerifyDue(c *config.Client) (bool, error) {
	if c.VerifyEvery <= 0 {
		return false, nil
	}
	p := r.verifyCountPath(c.Name)
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

// VerifyDone restarts c's count after a successful verify.
func (r *Runner) VerifyDone(c *config.Client) error {
	err := os.Remove(r.verifyCountPath(c.Name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (r *Runner) verifyCountPath(client string) string {
	return filepath.Join(r.Cfg.Host.StateDir, "verify", client)
}
