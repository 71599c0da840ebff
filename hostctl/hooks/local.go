package hooks

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// LocalRunner runs hooks on this host (lvm_host clients).
type LocalRunner struct{}

var _ Runner = LocalRunner{}

func (LocalRunner) Run(ctx context.Context, h Hook) Result {
	return runCommand(ctx, h, []string{"/bin/sh", "-c", h.Command}, envList(h.Env))
}

// SSHRunner runs hooks in a guest over ssh, for guests without an agent.
type SSHRunner struct {
	Host         string
	User         string
	Port         int
	IdentityFile string
	KnownHosts   string
}

var _ Runner = (*SSHRunner)(nil)

// Argv is the ssh command line for h. The environment goes into the
// remote command line (ssh would filter it otherwise), shell-quoted.
func (s *SSHRunner) Argv(h Hook) []string {
	argv := []string{"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15"}
	if s.IdentityFile != "" {
		argv = append(argv, "-i", s.IdentityFile, "-o", "IdentitiesOnly=yes")
	}
	if s.KnownHosts != "" {
		argv = append(argv, "-o", "UserKnownHostsFile="+s.KnownHosts, "-o", "StrictHostKeyChecking=yes")
	}
	if s.Port != 0 {
		argv = append(argv, "-p", fmt.Sprint(s.Port))
	}
	dest := s.Host
	if s.User != "" {
		dest = s.User + "@" + s.Host
	}
	var remote []string
	for _, kv := range envList(h.Env) {
		k, v, _ := strings.Cut(kv, "=")
		remote = append(remote, k+"="+ShellQuote(v))
	}
	remote = append(remote, "exec", "/bin/sh", "-c", ShellQuote(h.Command))
	return append(argv, dest, "--", "env "+strings.Join(remote, " "))
}

func (s *SSHRunner) Run(ctx context.Context, h Hook) Result {
	return runCommand(ctx, h, s.Argv(h), nil)
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runCommand runs argv on the host with the hook's time limit; on the limit
// the whole process group is killed.
func runCommand(ctx context.Context, h Hook, argv, env []string) Result {
	res := Result{Name: h.Name, Command: h.Command, Started: time.Now(), Exit: -1}
	cctx := ctx
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	var stdout, stderr strings.Builder
	_, err := execx.Run(cctx, execx.Cmd{Argv: argv, Env: env, Stdout: &stdout, Stderr: &stderr,
		Setup: func(c *exec.Cmd) {
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
			c.WaitDelay = 5 * time.Second
		}})
	res.Elapsed = time.Since(res.Started)
	res.Stdout, res.Stderr = tail([]byte(stdout.String())), tail([]byte(stderr.String()))
	var xe *execx.Error
	switch {
	case err == nil:
		res.Exit = 0
	case cctx.Err() != nil && ctx.Err() == nil:
		res.TimedOut = true
	case ctx.Err() != nil:
		res.Error = ctx.Err().Error()
	case errors.As(err, &xe) && xe.ExitCode() >= 0:
		res.Exit = xe.ExitCode()
	default:
		res.Error = err.Error()
	}
	return res
}
