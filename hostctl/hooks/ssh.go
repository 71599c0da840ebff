package hooks

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// SSHRunner runs hooks in a guest over ssh, for guests without an agent:
// key authentication only (BatchMode), the host key checked against a
// pinned known_hosts file, a bounded connect.
type SSHRunner struct {
	Host         string
	User         string
	Port         int
	IdentityFile string
	KnownHosts   string
}

var _ Runner = (*SSHRunner)(nil)

// ExitSSHError is the exit code ssh itself fails with (connection, key or
// host key refused); a hook exiting 255 is reported as such an error too.
const ExitSSHError = 255

// remoteWrapper runs the hook ($1) in the background and watches the
// session's stdin, which hostctl holds open and never writes to: it reaches
// EOF only when the connection is gone, that is when hostctl killed ssh at
// the hook's time limit (or died itself). The watcher then kills the
// session's whole process group (sshd makes every session its own), so a
// hung hook does not outlive its time limit in the guest. Plain POSIX sh:
// no job control, no setsid, no pkill needed in the guest.
const remoteWrapper = `exec 3<&0
/bin/sh -c "$1" </dev/null &
p=$!
(while read -r _; do :; done; kill -s KILL 0) <&3 >/dev/null 2>&1 &
w=$!
exec 3<&-
wait "$p"
rc=$?
kill "$w" 2>/dev/null
exit "$rc"`

// Argv is the ssh command line for h. The environment goes into the
// remote command line (ssh would filter it otherwise), shell-quoted.
func (s *SSHRunner) Argv(h Hook) []string {
	argv := []string{"ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
		"-o", "ServerAliveInterval=15", "-o", "StrictHostKeyChecking=yes"}
	if s.IdentityFile != "" {
		argv = append(argv, "-i", s.IdentityFile, "-o", "IdentitiesOnly=yes")
	}
	if s.KnownHosts != "" {
		argv = append(argv, "-o", "UserKnownHostsFile="+s.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null")
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
	remote = append(remote, "/bin/sh", "-c", ShellQuote(remoteWrapper), "sb-hook", ShellQuote(h.Command))
	return append(argv, dest, "--", "env "+strings.Join(remote, " "))
}

// Run runs h over ssh. ssh's stdin is a pipe held open until it exits (see
// remoteWrapper); at the time limit ssh is killed, which ends the hook in
// the guest too.
func (s *SSHRunner) Run(ctx context.Context, h Hook) Result {
	pr, pw, err := os.Pipe()
	if err != nil {
		return Result{Name: h.Name, Command: h.Command, Exit: -1, Error: fmt.Sprintf("ssh stdin: %v", err)}
	}
	defer pr.Close()
	defer pw.Close()
	res := runCommand(ctx, h, s.Argv(h), nil, pr)
	if res.Exit == ExitSSHError && !res.TimedOut && res.Error == "" {
		res.Exit = -1
		res.Error = fmt.Sprintf("ssh %s: exit %d (ssh failed, or the hook exited %d)", s.Host, ExitSSHError, ExitSSHError)
		if l := lastLine(res.Stderr); l != "" {
			res.Error += ": " + l
		}
	}
	return res
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
