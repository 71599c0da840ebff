package hooks

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSSHArgv(t *testing.T) {
	s := &SSHRunner{Host: "db.example", User: "backup", Port: 2222, IdentityFile: "/etc/hostctl/secrets/id", KnownHosts: "/etc/hostctl/known_hosts"}
	argv := s.Argv(Hook{Command: "echo 'x'", Env: map[string]string{"SB_HOOK": "pre_snapshot"}})
	require.Equal(t, []string{"ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15",
		"-o", "StrictHostKeyChecking=yes",
		"-i", "/etc/hostctl/secrets/id", "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=/etc/hostctl/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null", "-p", "2222",
		"backup@db.example", "--"}, argv[:len(argv)-1])
	remote := argv[len(argv)-1]
	require.True(t, strings.HasPrefix(remote, `env PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' SB_HOOK='pre_snapshot' /bin/sh -c '`), remote)
	require.True(t, strings.HasSuffix(remote, `' sb-hook 'echo '\''x'\'''`), remote)

	// The remote line, run by a shell as sshd would, gives the hook its
	// environment and output.
	remote = strings.Replace(remote, "echo '\\''x'\\''", "echo \"$SB_HOOK\"", 1)
	cmd, conn, out := startWrapper(t, "/bin/sh", "-c", remote)
	defer conn.Close()
	require.NoError(t, cmd.Wait())
	require.Equal(t, "pre_snapshot\n", out.String())
}

// startWrapper runs argv (remoteWrapper around a hook) as sshd would: its
// own process group (the wrapper kills it), stdin a pipe that stands for
// the connection.
func startWrapper(t *testing.T, argv ...string) (*exec.Cmd, *os.File, *strings.Builder) {
	t.Helper()
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	var out strings.Builder
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pr.Close()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd, pw, &out
}

func TestRemoteWrapper(t *testing.T) {
	// A hook that ends: its exit code and output, the watcher gone.
	cmd, conn, out := startWrapper(t, "/bin/sh", "-c", remoteWrapper, "sb-hook", "echo out; echo err >&2; exit 7")
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 7, ee.ExitCode())
	require.Equal(t, "out\nerr\n", out.String())
	require.Eventually(t, func() bool { return syscall.Kill(-cmd.Process.Pid, 0) == syscall.ESRCH }, 10*time.Second, 10*time.Millisecond,
		"the watcher ends with the hook")
	conn.Close()

	// A hung hook with a child: when the connection goes, all of it dies.
	dir := t.TempDir()
	cmd, conn, _ = startWrapper(t, "/bin/sh", "-c", remoteWrapper, "sb-hook", "sleep 300 & echo $! > "+dir+"/child; sleep 300")
	require.Eventually(t, func() bool { _, err := os.Stat(dir + "/child"); return err == nil }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // let the hook reach its sleep
	conn.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "killed")
	case <-time.After(30 * time.Second):
		t.Fatal("the wrapper did not end when its stdin closed")
	}
	require.Eventually(t, func() bool { return syscall.Kill(-cmd.Process.Pid, 0) == syscall.ESRCH }, 10*time.Second, 10*time.Millisecond,
		"the hook and its child are killed")
}
