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
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// TestRescueShell boots the persistent rescue appliance that build-image
// defines: with no job disk the supervisor must give a root shell on the
// serial console, with the appliance's userland (borg among it) usable.
func TestRescueShell(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	requireNoRescueAppliance(t, c)

	// The same through `rescue CLIENT`: the shut-off client's own disk
	// (now the system disk) is attached, and detached again afterwards:
	// the domain still has exactly its disk and starts.
	require.NoError(t, exec.Command("debugfs", "-w", "-R", "rm /marker", disk).Run())
	x, err := fixture.ClientDomain{Name: c.domain, Kernel: e.kernel, Initrd: e.idle, Disk: disk,
		DiskFormat: "raw", ConsoleLog: filepath.Join(dir, "client-console.log")}.XML()
	require.NoError(t, err)
	xf := filepath.Join(dir, "client.xml")
	require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
	virsh(t, "undefine", c.domain) // shut off; newClient's cleanup removes the new definition
	virsh(t, "define", xf)
	start := time.Now()
	in, feed = io.Pipe()
	con = &syncBuffer{}
	go func() {
		done <- cli.Main(ctx, []string{"rescue", "-c", c.config, c.name}, in, con, con)
	}()
	waitFor(t, con, "rescue shell", 3*time.Minute)
	time.Sleep(2 * time.Second)
	_, err = io.WriteString(feed, "chroot-target /bin/probe && exit\n")
	require.NoError(t, err)
	select {
	case code := <-done:
		t.Logf("console:\n%s", con.String())
		require.Equal(t, 0, code)
	case <-time.After(3 * time.Minute):
		t.Fatalf("hostctl rescue %s did not end after exit; console:\n%s", c.name, con.String())
	}
	feed.Close()
	require.Contains(t, con.String(), "PROBE: chrooted")
	marker, err = exec.Command("debugfs", "-R", "cat /marker", disk).Output()
	require.NoError(t, err)
	require.Contains(t, string(marker), "chrooted, /proc/self/root=/", "the chrooted command wrote to the client's disk")
	requireNoRescueAppliance(t, c)
	for _, flags := range [][]string{{"dumpxml", c.domain}, {"dumpxml", "--inactive", c.domain}} {
		disks, err := virt.ClientDisks(virsh(t, flags...))
		require.NoError(t, err)
		require.Len(t, disks, 1, "%v", flags)
		require.Equal(t, disk, disks[0].Path)
	}
	require.Contains(t, virsh(t, "domstate", c.domain), "shut off")
	t.Logf("rescue CLIENT took %s", time.Since(start).Round(time.Second))
}

// requireNoRescueAppliance: the rescue appliance of c's state dir is gone,
// and with it its hold on the disks.
func requireNoRescueAppliance(t *testing.T, c *client) {
	t.Helper()
	require.Empty(t, appliances(t, c.stateDir, false), "rescue appliance left")
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
