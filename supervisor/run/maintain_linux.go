package run

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
)

// maintain runs retention after an "ok" backup (never after a failed one
// or one with warnings: backup returns before) and, every Repo.CheckEvery
// ok backups (counted per client on the cache volume), the backend's
// consistency check.
func (s *supervisor) maintain(ctx context.Context, b backend.Backend, req backend.Request) error {
	j := s.job
	if !j.Repo.Retention.Empty() {
		if err := s.rep.Step("retention")(b.Retain(ctx, req)); err != nil {
			return err
		}
	}
	if j.Repo.CheckEvery <= 0 {
		return nil
	}
	counter := filepath.Join(Sysroot, backend.CacheDir, "sb-state", j.Client+".backups")
	n := 0
	if b, err := os.ReadFile(counter); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	n++
	if n >= j.Repo.CheckEvery {
		if err := s.rep.Step("check")(b.Check(ctx, req)); err != nil {
			return err
		}
		n = 0
	}
	_ = os.MkdirAll(filepath.Dir(counter), 0o700)
	return os.WriteFile(counter, []byte(strconv.Itoa(n)+"\n"), 0o600)
}
