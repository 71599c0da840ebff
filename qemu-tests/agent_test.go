package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report/smtptest"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

var agentVM fixtureOnce[*fixture.AgentVM]

// needAgentVM builds (once; its userland is cached by content hash) the
// initramfs of the client VM that runs qemu-guest-agent.
func needAgentVM(t testing.TB, e *env) *fixture.AgentVM {
	t.Helper()
	return agentVM.get(t, buildVM("agentvm", "agent VM initramfs", func(ctx context.Context, root string, logf func(string, ...any)) (*fixture.AgentVM, error) {
		return fixture.BuildAgentVM(ctx, root, filepath.Join(filepath.Dir(e.imageDir), "agentvm-cache"), filepath.Join(e.bin, "agentvm.cpio"), logf)
	}))
}

// newAgentClient is newClient with the guest agent: ndisks ext4 disks
// (the first holds the known tree), mounted in the guest at /mnt/vdX.
func newAgentClient(t testing.TB, e *env, name string, ndisks int, opts ...clientOption) *client {
	vm := needAgentVM(t, e)
	c := newClient(t, e, name, "qcow2", opts...)
	var extra []string
	for i := 1; i < ndisks; i++ {
		d := filepath.Join(c.dir, fmt.Sprintf("data%d.qcow2", i))
		tree := filepath.Join(c.dir, fmt.Sprintf("tree%d", i))
		require.NoError(t, os.MkdirAll(tree, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(tree, "disk"), []byte(fmt.Sprint(i)), 0o644))
		require.NoError(t, fixture.MakeClientDisk(context.Background(), tree, d, "qcow2", 64))
		extra = append(extra, d)
	}
	x, err := fixture.ClientDomain{Name: c.domain, Kernel: vm.Kernel, Initrd: vm.Initramfs, Disk: c.disk,
		DiskFormat: "qcow2", ConsoleLog: filepath.Join(c.dir, "client-console.log"),
		ExtraDisks: extra, Agent: true, MemoryMiB: 512}.XML()
	require.NoError(t, err)
	xf := filepath.Join(c.dir, "client.xml")
	require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
	exec.Command("virsh", "-c", "qemu:///system", "undefine", c.domain).Run()
	virsh(t, "define", xf)
	return c
}

// setHooks rewrites the client's configuration with a [hooks] table.
func (c *client) setHooks(t testing.TB, hooksTOML string) {
	f := filepath.Join(filepath.Dir(c.config), "clients", c.name+".toml")
	data, err := os.ReadFile(f)
	require.NoError(t, err)
	base, _, _ := strings.Cut(string(data), "\n[hooks]")
	require.NoError(t, os.WriteFile(f, []byte(base+"\n[hooks]\n"+hooksTOML), 0o600))
}

// appendHostConfig adds TOML to the client's hostctl.toml.
func (c *client) appendHostConfig(t testing.TB, toml string) {
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(toml)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// guest runs a shell command in the client through its agent.
func (c *client) guest(t testing.TB, cmd string) hooks.Result {
	t.Helper()
	lv, err := virt.NewLibvirt("qemu:///system")
	require.NoError(t, err)
	defer lv.Close()
	r := (&hooks.AgentRunner{Agent: lv, Domain: c.domain}).Run(context.Background(), hooks.Hook{Name: "test", Command: cmd, Timeout: time.Minute})
	require.Empty(t, r.Error, "guest-exec %q", cmd)
	return r
}

// startAgent starts the client and waits until its guest agent answers.
func (c *client) startAgent(t testing.TB) {
	t.Helper()
	c.start(t)
	c.waitAgent(t)
}

// waitAgent waits until the client's guest agent answers.
func (c *client) waitAgent(t testing.TB) {
	t.Helper()
	// Generous: a TCG guest on a loaded 2-core machine (other test runs
	// booting VMs) boots several times slower than on an idle one.
	deadline := time.Now().Add(8 * time.Minute)
	for {
		out, err := exec.Command("virsh", "-c", "qemu:///system", "qemu-agent-command", c.domain, `{"execute":"guest-ping"}`).CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			console, _ := os.ReadFile(filepath.Join(c.dir, "client-console.log"))
			t.Fatalf("guest agent of %s did not answer: %s\nconsole:\n%s", c.domain, out, console)
		}
		time.Sleep(time.Second)
	}
}

// TestHooksInGuest: hooks run inside a running client through its QEMU
// guest agent, in order and around a frozen snapshot; a failing and a
// hanging pre_snapshot stop the job before the snapshot, on_snapshot still
// runs, and nothing is left behind.
func TestHooksInGuest(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	c := newAgentClient(t, e, "agent", 1, smallTree)
	sink, err := smtptest.Start()
	require.NoError(t, err)
	defer sink.Close()
	metrics := filepath.Join(c.dir, "textfile", "hostctl.prom")
	c.appendHostConfig(t, fmt.Sprintf(`
[report]
email = "always"
to = ["ops@example.org"]
from = "hostctl@test.example"
metrics_file = %q
[report.smtp]
host = "127.0.0.1"
port = %d
starttls = false
`, metrics, sink.Port))
	c.startAgent(t)
	// Each hook appends "NAME uptime" to a log in the guest's /run.
	rec := func(name string) string {
		return fmt.Sprintf(`echo "%s $(cut -d' ' -f1 /proc/uptime) $SB_OUTCOME" >> /run/hooks.log`, name)
	}

	t.Run("order-freeze-output", func(t *testing.T) {
		c.setHooks(t, fmt.Sprintf(`pre_snapshot = %q
on_snapshot = %q
post_snapshot = %q
freeze = true
time_limit = "1m"
`, rec("pre")+`; echo in-snapshot > /mnt/vda/pre-marker; sync; echo pre-out; echo pre-err >&2`,
			rec("on")+`; echo after-snapshot > /mnt/vda/on-marker`,
			rec("post")))
		code, out, _ := hostctl(t, ctx, "run", "--json", "-c", c.config)
		require.Equal(t, 0, code)
		reps := parseReports(t, out)
		require.Len(t, reps, 1)
		r := reps[0]
		require.Equal(t, "ok", r.Status)
		var names []string
		for _, h := range r.Hooks {
			names = append(names, h.Name)
			require.True(t, h.OK(), "%s: %+v", h.Name, h)
		}
		require.Equal(t, []string{hooks.PreSnapshot, hooks.OnSnapshot, hooks.PostSnapshot}, names)
		require.Equal(t, "pre-out\n", r.Hooks[0].Stdout)
		require.Equal(t, "pre-err\n", r.Hooks[0].Stderr)
		require.Positive(t, r.Pause, "pause window")
		require.Positive(t, r.Frozen, "filesystems were frozen and thawed")
		require.Less(t, r.Frozen, r.Pause+time.Millisecond)
		t.Logf("pause window %s, frozen %s", r.Pause, r.Frozen)

		log := strings.Fields(c.guest(t, "cat /run/hooks.log").Stdout)
		require.Len(t, log, 7, "hooks.log in the guest: %v", log)
		require.Equal(t, []string{"pre", "on", "post", "ok"}, []string{log[0], log[2], log[4], log[6]}, "hook order in the guest: %v", log)
		// Guest uptimes as numbers ("99.9" < "100.1"; as strings it is not).
		var up []float64
		for _, f := range []string{log[1], log[3], log[5]} {
			u, err := strconv.ParseFloat(f, 64)
			require.NoError(t, err, "uptime %q", f)
			up = append(up, u)
		}
		require.True(t, up[0] <= up[1] && up[1] <= up[2], "guest uptimes of pre, on, post: %v", up)
		require.Equal(t, `{"return":"thawed"}`, strings.TrimSpace(virsh(t, "qemu-agent-command", c.domain, `{"execute":"guest-fsfreeze-status"}`)))

		arch := c.archives(t)
		require.Len(t, arch, 1)
		list := borg(t, c.pass, c.dir, "list", "--format", "{path}{NL}", c.repo+"::"+arch[0])
		require.Contains(t, list, "pre-marker", "pre_snapshot's write is in the snapshot")
		require.NotContains(t, list, "on-marker", "on_snapshot ran after the snapshot")
		c.requireNothingLeft(t)

		mail := recvMail(t, sink)
		require.Equal(t, []string{"ops@example.org"}, mail.To)
		require.Contains(t, mail.Data, "Subject: [hostctl OK] ")
		require.Regexp(t, `agent +ok +\S+ +\S+ +\d+ +`, mail.Data, "the client's line with pause and files")
		prom, err := os.ReadFile(metrics)
		require.NoError(t, err)
		require.Contains(t, string(prom), `hostctl_job_success{client="agent"} 1`)
		require.Contains(t, string(prom), `hostctl_job_pause_seconds{client="agent"}`)
		require.Contains(t, string(prom), `hostctl_last_success_timestamp_seconds{client="agent"}`)
	})

	t.Run("failing-pre", func(t *testing.T) {
		c.setHooks(t, fmt.Sprintf("pre_snapshot = %q\non_snapshot = %q\n",
			`echo cannot lock >&2; exit 3`, `echo on-ran > /run/on-after-failure`))
		requirePreFailed(t, runFailed(t, ctx, c))
		require.Equal(t, "on-ran\n", c.guest(t, "cat /run/on-after-failure").Stdout, "on_snapshot runs after a failed pre_snapshot")
		require.Len(t, c.archives(t), 1, "no backup without the snapshot")
		c.requireNothingLeft(t)

		mail := recvMail(t, sink)
		require.Contains(t, mail.Data, "Subject: [hostctl FAILED] ")
		require.Contains(t, mail.Data, "reason: pre_snapshot failed")
		require.Contains(t, mail.Data, "stderr: cannot lock")
		code, out, _ := hostctl(t, ctx, "status", "-c", c.config)
		require.Equal(t, 1, code)
		require.Regexp(t, `(?m)^\d{8}T\d{6}Z +failed +1 `, out)
		require.Regexp(t, `(?m)^\d{8}T\d{6}Z +ok +0 `, out)
	})

	t.Run("hanging-pre", func(t *testing.T) {
		c.setHooks(t, fmt.Sprintf("pre_snapshot = %q\non_snapshot = %q\ntime_limit = \"3s\"\n",
			`sleep 600`, `echo on-ran > /run/on-after-hang`))
		start := time.Now()
		r := runFailed(t, ctx, c)
		// Bounded by the 3s hook limit plus agent round trips, far below
		// the hook's 600s (a loaded TCG guest answers slowly: no tight bound).
		took := time.Since(start)
		t.Logf("run with a hanging pre_snapshot took %s", took)
		require.Less(t, took, 5*time.Minute)
		require.True(t, r.Hooks[0].TimedOut)
		require.Contains(t, r.Error, "abandoned")
		require.Equal(t, "on-ran\n", c.guest(t, "cat /run/on-after-hang").Stdout)
		// kill waits for its killer; polled anyway, since a slow guest may
		// take longer than that wait.
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
			out := c.guest(t, "pgrep -x sleep; echo rc=$?").Stdout
			if out == "rc=1\n" { // pgrep ran and found no sleep
				break
			}
			require.True(t, time.Now().Before(deadline), "the hung hook was not killed: %q", out)
		}
		c.requireNothingLeft(t)
		recvMail(t, sink)
	})

	// One run at a time: a second run is refused while the first holds the
	// lock (or waits, and gives up); a killed run's lock does not block the next.
	t.Run("lock", func(t *testing.T) {
		c.setHooks(t, "pre_snapshot = \"sleep 60\"\ntime_limit = \"90s\"\n")
		first := exec.Command(filepath.Join(e.bin, "hostctl"), "run", "-c", c.config)
		first.Stdout, first.Stderr = os.Stdout, os.Stdout
		require.NoError(t, first.Start())
		defer first.Process.Kill()
		require.Eventually(t, func() bool {
			b, _ := os.ReadFile(filepath.Join(c.stateDir, "run.lock"))
			return strings.Contains(string(b), fmt.Sprintf("pid %d ", first.Process.Pid))
		}, 3*time.Minute, 100*time.Millisecond)

		// Refused at once: well before the first run's 60s hook ends (the
		// bound is loose for a loaded machine; a waiting run would take >60s).
		start := time.Now()
		code, _, errOut := hostctl(t, ctx, "run", "-c", c.config)
		require.Equal(t, 4, code)
		require.Less(t, time.Since(start), 30*time.Second, "refused at once")
		require.Contains(t, errOut, fmt.Sprintf("another hostctl run is in progress (held by pid %d ", first.Process.Pid))

		code, _, errOut = hostctl(t, ctx, "run", "--lock-timeout", "2s", "-c", c.config)
		require.Equal(t, 4, code)
		require.Contains(t, errOut, "waiting for the run lock")
		require.Contains(t, errOut, "gave up after waiting 2s")

		require.NoError(t, first.Process.Signal(syscall.SIGKILL))
		_ = first.Wait()
		// The next run gets the lock (its pre_snapshot ends the killed
		// run's hook and fails, to keep this quick).
		c.setHooks(t, "pre_snapshot = \"pkill -x sleep; exit 5\"\n")
		code, out, _ := hostctl(t, ctx, "run", "-c", c.config)
		require.Equal(t, 1, code, "the killed run's lock is gone")
		require.Contains(t, out, "exit code 5")
		c.requireNothingLeft(t)
		// The two refused runs are reported too (a night without a backup
		// must not be silent), then the run that got the lock.
		for i := 0; i < 2; i++ {
			mail := recvMail(t, sink)
			require.Contains(t, mail.Data, "Subject: [hostctl FAILED] ")
			require.Contains(t, mail.Data, "reason: not started: "+filepath.Join(c.stateDir, "run.lock")+": another hostctl run is in progress")
		}
		mail := recvMail(t, sink)
		require.Contains(t, mail.Data, "exit code 5")
	})
}

// recvMail waits for the next mail the sink received.
func recvMail(t testing.TB, sink *smtptest.Server) smtptest.Mail {
	t.Helper()
	select {
	case m := <-sink.Mails:
		return m
	case <-time.After(2 * time.Minute):
		t.Fatal("no report mail arrived within 2 minutes")
		return smtptest.Mail{}
	}
}

// parseReports reads `hostctl run --json` output.
func parseReports(t testing.TB, out string) []*report.Job {
	t.Helper()
	var reps []*report.Job
	require.NoError(t, json.Unmarshal([]byte(out), &reps), "run --json output: %s", out)
	return reps
}
