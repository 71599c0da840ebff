package qemutests

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/cli"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// TestRescueShell boots the persistent rescue appliance that build-image
// defines: with no job disk the supervisor must give a root shell on the
// serial console, with the appliance's userland (borg among it) usable.
func TestRescueShell(t *testing.T) {
	e := needEnv(t)
	xml := virsh(t, "dumpxml", "--inactive", rescueDomain)
	require.Contains(t, xml, "sb.mode=shell")
	require.Contains(t, xml, filepath.Join(e.imageDir, "appliance.img"))
	log := filepath.Join(e.imageDir, "rescue-console.log")
	os.Remove(log)
	virsh(t, "start", rescueDomain)
	t.Cleanup(func() { exec.Command("virsh", "-c", "qemu:///system", "destroy", rescueDomain).Run() })

	deadline := time.Now().Add(2 * time.Minute)
	var console string
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(log)
		console = string(data)
		if strings.Contains(console, "rescue shell") {
			break
		}
		time.Sleep(time.Second)
	}
	require.Contains(t, console, "rescue shell", "no rescue banner on the console:\n%s", console)
	require.True(t, strings.Contains(virsh(t, "domstate", rescueDomain), "running"), "the shell keeps the appliance up")
}

// TestRescueDisk drives `hostctl rescue --disk` through the console the way
// an operator would: wait for the shell, run a program in the client's
// system with chroot-target, exit; the change is on the disk afterwards and
// nothing is left behind.
func TestRescueDisk(t *testing.T) {
	e := needEnv(t)
	ctx := context.Background()
	c := newClient(t, e, "resc", "raw")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"bin", "dev", "proc", "sys", "run"} { // a system's mount points
		require.NoError(t, os.MkdirAll(filepath.Join(tree, d), 0o755))
	}
	build := exec.Command("go", "build", "-o", filepath.Join(tree, "bin", "probe"), ".")
	build.Dir, build.Env = "chrootprobe", append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	disk := filepath.Join(dir, "system.raw")
	require.NoError(t, fixture.MakeClientDisk(ctx, tree, disk, "raw", 64))

	in, feed := io.Pipe()
	con := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"rescue", "-c", c.config, "--disk", disk}, in, con, con)
	}()
	waitFor(t, con, "rescue shell", 3*time.Minute)
	time.Sleep(2 * time.Second) // let bash print its prompt
	_, err = io.WriteString(feed, "chroot-target /bin/probe\n")
	require.NoError(t, err)
	waitFor(t, con, "PROBE: chrooted", time.Minute)
	_, err = io.WriteString(feed, "exit\n")
	require.NoError(t, err)
	select {
	case code := <-done:
		t.Logf("console:\n%s", con.String())
		require.Equal(t, 0, code)
	case <-time.After(2 * time.Minute):
		t.Fatalf("hostctl rescue did not end after exit; console:\n%s", con.String())
	}
	feed.Close()

	marker, err := exec.Command("debugfs", "-R", "cat /marker", disk).Output()
	require.NoError(t, err)
	require.Contains(t, string(marker), "chrooted, /proc/self/root=/")
	c.requireNothingLeft(t)
	for _, n := range strings.Fields(virsh(t, "list", "--all", "--name")) {
		require.False(t, strings.HasPrefix(n, "hostctl-shell-"), "rescue appliance left: %s", n)
	}
}

// syncBuffer is a bytes.Buffer safe for the console goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, b *syncBuffer, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if strings.Contains(b.String(), want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no %q on the console within %s:\n%s", want, limit, b.String())
}
