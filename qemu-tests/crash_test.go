package qemutests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirt"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// These tests SIGKILL hostctl (nothing of it runs after that: no deferred
// cleanup, no signal handler) at the two moments a guest is most exposed,
// and check that the next `hostctl cleanup` and `hostctl run` put the guest
// back: writable, on its base image, nothing of the killed run left.

// bigDisk gives the client a 1 GiB disk with the small tree: room for a
// guest that writes a lot during its backup.
func bigDisk(o *clientOptions) { o.tree, o.diskMiB = fixture.Small, 1024 }

// bgRun is a `hostctl run` in a process of its own.
type bgRun struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it has exited
}

// startRun starts `hostctl run` as its own process, output to a log file.
func startRun(t *testing.T, e *env, c *client, name string) *bgRun {
	t.Helper()
	r := &bgRun{cmd: exec.Command(filepath.Join(e.bin, "hostctl"), "run", "-c", c.config),
		log: filepath.Join(c.dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(r.log)
	require.NoError(t, err)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	require.NoError(t, r.cmd.Start())
	go func() {
		_ = r.cmd.Wait()
		logf.Close()
		close(r.done)
	}()
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); <-r.done })
	return r
}

func (r *bgRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the hostctl and shows what it printed.
func (r *bgRun) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGKILL))
	<-r.done
	log, _ := os.ReadFile(r.log)
	t.Logf("hostctl run, killed:\n%s", log)
}

// requireWritable checks, through the guest agent, that the guest's
// filesystems are thawed and that a write to the backed-up disk reaches
// it; a write to a frozen filesystem would block until the time limit.
func requireWritable(t *testing.T, c *client) {
	t.Helper()
	require.Equal(t, `{"return":"thawed"}`, strings.TrimSpace(virsh(t, "qemu-agent-command", c.domain, `{"execute":"guest-fsfreeze-status"}`)))
	lv, err := virt.NewLibvirt("qemu:///system")
	require.NoError(t, err)
	defer lv.Close()
	r := (&hooks.AgentRunner{Agent: lv, Domain: c.domain}).Run(context.Background(),
		hooks.Hook{Name: "test", Command: "echo written > /mnt/vda/after-cleanup && sync && cat /mnt/vda/after-cleanup", Timeout: 2 * time.Minute})
	require.True(t, r.OK(), "a write in the guest after cleanup: %+v", r)
	require.Equal(t, "written\n", r.Stdout)
}

// TestKillDuringBlockCommit: hostctl is killed while it merges the
// guest's writes since the snapshot back into the base (an active block
// commit, which libvirt keeps running without hostctl). The next cleanup
// takes the running commit over (it cannot start a second one: libvirt
// refuses), pivots, and the guest is on its base image with its writes.
func TestKillDuringBlockCommit(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	c := newAgentClient(t, e, "commit", 1, bigDisk)
	// After the snapshot the guest writes 400 MB into its overlay, and a
	// marker the base must hold in the end.
	c.setHooks(t, fmt.Sprintf("on_snapshot = %q\ntime_limit = \"2m\"\n",
		`echo after-snapshot > /mnt/vda/marker; sync; (dd if=/dev/urandom of=/mnt/vda/fill bs=1M count=400 conv=fsync >/dev/null 2>&1 &)`))
	c.startAgent(t)

	conn, err := libvirt.NewConnect("qemu:///system")
	require.NoError(t, err)
	defer conn.Close()
	dom, err := conn.LookupDomainByName(c.domain)
	require.NoError(t, err)
	defer dom.Free()

	run := startRun(t, e, c, "run-killed")
	// Wait for the commit (the appliance is gone by then), then hold it
	// at 1 MiB/s so that the kill lands while it runs.
	deadline := time.Now().Add(20 * time.Minute)
	for {
		info, err := dom.GetBlockJobInfo("vda", 0)
		if err == nil && info.Type == libvirt.DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT {
			require.NoError(t, dom.BlockJobSetSpeed("vda", 1, 0))
			t.Logf("commit running: %d of %d", info.Cur, info.End)
			break
		}
		if run.exited() || time.Now().After(deadline) {
			t.Fatal("no block commit seen")
		}
		time.Sleep(2 * time.Millisecond)
	}
	run.kill(t)
	info, err := dom.GetBlockJobInfo("vda", 0)
	require.NoError(t, err)
	require.Equal(t, libvirt.DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT, info.Type, "the killed hostctl's commit still runs")
	require.NoError(t, dom.BlockJobSetSpeed("vda", 0, 0)) // full speed again
	entries, _ := os.ReadDir(filepath.Join(c.stateDir, "ledger"))
	require.NotEmpty(t, entries, "the snapshot is still in the ledger")

	code, out, _ := hostctl(t, context.Background(), "cleanup", "-c", c.config)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "nothing left behind")
	info, err = dom.GetBlockJobInfo("vda", 0)
	require.NoError(t, err)
	require.Zero(t, info.Type, "no block job left")
	c.requireNothingLeft(t)
	require.True(t, c.running(t))
	// The guest's writes are on the base: read back past its page cache.
	r := c.guest(t, "echo 3 > /proc/sys/vm/drop_caches; cat /mnt/vda/marker")
	require.Equal(t, "after-snapshot\n", r.Stdout)
	requireWritable(t, c)

	// And the next run backs the client up as usual.
	c.setHooks(t, "")
	code, _, _ = hostctl(t, context.Background(), "run", "-c", c.config)
	require.Equal(t, 0, code)
	c.requireNothingLeft(t)
}

// TestKillWhileFrozen: hostctl is killed while the guest's filesystems
// are frozen (hooks.freeze = true, between the freeze and the thaw around
// the snapshot). A frozen guest blocks every write until someone thaws
// it: the next cleanup does, and merges the snapshot (if it was taken)
// back.
func TestKillWhileFrozen(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	c := newAgentClient(t, e, "frozen", 1, smallTree)
	c.setHooks(t, "freeze = true\ntime_limit = \"1m\"\n")
	c.startAgent(t)

	run := startRun(t, e, c, "run-killed")
	// The window: hostctl records each snapshot in the ledger after the
	// freeze succeeded and before it takes the snapshot.
	ledger := filepath.Join(c.stateDir, "ledger")
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if m, _ := filepath.Glob(filepath.Join(ledger, "*-snapshot.json")); len(m) > 0 {
			break
		}
		if run.exited() || time.Now().After(deadline) {
			t.Fatal("no snapshot recorded")
		}
		time.Sleep(time.Millisecond)
	}
	run.kill(t)
	require.Equal(t, `{"return":"frozen"}`, strings.TrimSpace(virsh(t, "qemu-agent-command", c.domain, `{"execute":"guest-fsfreeze-status"}`)),
		"the kill landed while the guest was frozen")

	code, out, _ := hostctl(t, context.Background(), "cleanup", "-c", c.config)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "nothing left behind")
	requireWritable(t, c)
	c.requireNothingLeft(t)

	code, _, _ = hostctl(t, context.Background(), "run", "-c", c.config)
	require.Equal(t, 0, code)
	requireWritable(t, c)
	c.requireNothingLeft(t)
}
