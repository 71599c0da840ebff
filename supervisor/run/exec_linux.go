package run

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
)

// execDir holds mode exec's program inside the userland: the job disk is
// mounted noexec, and the runner runs programs from the userland's own
// root filesystem only (its tmpfs upper layer here), not from /run's bind.
const execDir = "/var/lib/sb-exec"

// exec runs mode exec's program as root in the userland with the job's
// disks attached (found by serial, as the program likes). Its output goes
// to the job log; a non-zero exit fails the job.
func (s *supervisor) exec(ctx context.Context, j *job.Job) (job.Done, error) {
	e := j.Exec
	if e == nil || !strings.HasPrefix(e.File, job.SecretPrefix) || strings.Contains(e.File, "/") {
		return job.Done{}, fmt.Errorf("mode exec: want [exec] file = \"%s…\" on the job disk", job.SecretPrefix)
	}
	if err := os.MkdirAll(Sysroot+execDir, 0o700); err != nil {
		return job.Done{}, err
	}
	s.loadAllFilesystems()
	prog := filepath.Join(execDir, e.File)
	if err := copyFile(filepath.Join(jobDir, e.File), Sysroot+prog, 0o700); err != nil {
		return job.Done{}, err
	}
	w := s.rep.LogWriter()
	end := s.rep.Step("exec " + e.File)
	_, err := s.runner.Run(ctx, chroot.Cmd{Argv: append([]string{prog}, e.Args...), Env: e.Env, Stdout: w, Stderr: w, Dir: "/"})
	return job.Done{}, end(err)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
