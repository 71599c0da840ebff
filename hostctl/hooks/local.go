package hooks

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// LocalRunner runs hooks on this host (lvm_host clients).
type LocalRunner struct{}

var _ Runner = LocalRunner{}

func (LocalRunner) Run(ctx context.Context, h Hook) Result {
	return runCommand(ctx, h, []string{"/bin/sh", "-c", h.Command}, envList(h.Env), nil)
}

// runCommand runs argv on the host with the hook's time limit; on the limit
// the whole process group is killed. in is its stdin (nil: /dev/null).
func runCommand(ctx context.Context, h Hook, argv, env []string, in *os.File) Result {
	res := Result{Name: h.Name, Command: h.Command, Started: time.Now(), Exit: -1}
	cctx := ctx
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	stdout, stderr := newTailBuffer(maxOutput), newTailBuffer(maxOutput)
	xc := execx.Cmd{Argv: argv, Env: env, Stdout: stdout, Stderr: stderr,
		Setup: func(c *exec.Cmd) {
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
			c.WaitDelay = 5 * time.Second
		}}
	if in != nil {
		xc.In = in // an *os.File: the child gets it as is, no copying
	}
	_, err := execx.Run(cctx, xc)
	res.Elapsed = time.Since(res.Started)
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	res.StdoutDropped, res.StderrDropped = stdout.Dropped(), stderr.Dropped()
	var xe *execx.Error
	switch {
	case err == nil:
		res.Exit = 0
	case cctx.Err() != nil && ctx.Err() == nil:
		res.TimedOut = true
	case ctx.Err() != nil:
		res.Error = context.Cause(ctx).Error() // which limit stopped it
	case errors.As(err, &xe) && xe.ExitCode() >= 0:
		res.Exit = xe.ExitCode()
	default:
		res.Error = err.Error()
	}
	return res
}
