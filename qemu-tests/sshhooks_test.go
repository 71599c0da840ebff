package qemutests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// TestHooksOverSSHAndTimeLimits: a running client without a guest agent whose hooks go
// over ssh (transport = "ssh", identity file, pinned known_hosts) to an
// sshd on 127.0.0.1 that stands in for the guest: the hooks run in order
// around a real live snapshot and backup, their output and exit codes come
// back, post_snapshot gets the outcome, a failing, a hanging (killed at its
// time limit, in the "guest" too) and an unreachable (wrong host key) hook
// are handled as specified, and on_snapshot runs when the snapshot failed. Then the time limits, on the same client: a job
// past its time_limit and a run past run_time_limit have their appliance
// stopped and everything cleaned up, and the report names the limit.
func TestHooksOverSSHAndTimeLimits(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	sshd := startSSHD(t)
	c := newClient(t, e, "sshhooks", "qcow2", smallTree)
	c.start(t)
	guest := t.TempDir() // what the hooks write, "in the guest"
	known := sshd.knownHostsAt(t, "127.0.0.1")
	hooksSSH := func(knownHosts string) string {
		return fmt.Sprintf(`transport = "ssh"
[hooks.ssh]
host = "127.0.0.1"
port = %d
user = "root"
identity_file = %q
known_hosts = %q
`, sshd.port, sshd.identity, knownHosts)
	}
	// Each hook appends "NAME TIME OUTCOME" to hooks.log.
	rec := func(name string) string {
		return fmt.Sprintf(`echo "%s $(date +%%s.%%N) ${SB_OUTCOME:-none} $SB_CLIENT" >> %s/hooks.log`, name, guest)
	}
	readLog := func(t *testing.T) [][]string {
		data, err := os.ReadFile(filepath.Join(guest, "hooks.log"))
		require.NoError(t, err)
		require.NoError(t, os.Remove(filepath.Join(guest, "hooks.log")))
		var lines [][]string
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			lines = append(lines, strings.Fields(l))
		}
		return lines
	}
	hookNames := func(r *report.Job) []string {
		var names []string
		for _, h := range r.Hooks {
			names = append(names, h.Name)
		}
		return names
	}

	t.Run("order-output", func(t *testing.T) {
		c.setHooks(t, fmt.Sprintf("pre_snapshot = %q\non_snapshot = %q\npost_snapshot = %q\ntime_limit = \"1m\"\n",
			rec("pre")+"; echo pre-out; echo pre-err >&2", rec("on"), rec("post"))+hooksSSH(known))
		code, out, _ := hostctl(t, ctx, "run", "--json", "-c", c.config)
		require.Equal(t, 0, code)
		r := parseReports(t, out)[0]
		require.Equal(t, "ok", r.Status)
		require.Equal(t, []string{hooks.PreSnapshot, hooks.OnSnapshot, hooks.PostSnapshot}, hookNames(r))
		for _, h := range r.Hooks {
			require.True(t, h.OK(), "%s: %+v", h.Name, h)
		}
		require.Equal(t, "pre-out\n", r.Hooks[0].Stdout)
		require.Equal(t, "pre-err\n", r.Hooks[0].Stderr)
		require.Positive(t, r.Pause)
		t.Logf("pause window over ssh: %s", r.Pause)

		log := readLog(t)
		require.Len(t, log, 3)
		var last float64
		for i, want := range [][2]string{{"pre", "none"}, {"on", "none"}, {"post", "ok"}} {
			require.Equal(t, want[0], log[i][0])
			require.Equal(t, want[1], log[i][2], "%s: SB_OUTCOME", want[0])
			require.Equal(t, c.name, log[i][3], "SB_CLIENT")
			ts, err := strconv.ParseFloat(log[i][1], 64)
			require.NoError(t, err)
			require.Greater(t, ts, last, "hooks ran in order")
			last = ts
		}
		// The pause window lies between pre_snapshot's end and on_snapshot's start.
		require.GreaterOrEqual(t, r.Hooks[1].Started.Sub(r.Hooks[0].Started.Add(r.Hooks[0].Elapsed)), time.Duration(0))
		require.Len(t, c.archives(t), 1)
		c.requireNothingLeft(t)
		// The job's appliance console log and job log are kept.
		for _, f := range []string{"console.log", "job.log"} {
			fi, err := os.Stat(filepath.Join(r.LogDir, f))
			require.NoError(t, err)
			require.Positive(t, fi.Size(), f)
		}
	})

	t.Run("failing-pre", func(t *testing.T) {
		c.setHooks(t, fmt.Sprintf("pre_snapshot = %q\non_snapshot = %q\npost_snapshot = %q\n",
			rec("pre")+"; echo cannot lock >&2; exit 3", rec("on"), rec("post"))+hooksSSH(known))
		requirePreFailed(t, runFailed(t, ctx, c))
		log := readLog(t)
		require.Equal(t, []string{"pre", "on", "post"}, []string{log[0][0], log[1][0], log[2][0]}, "on_snapshot and post_snapshot still run")
		require.Equal(t, "failed", log[2][2], "post_snapshot gets the outcome")
		require.Len(t, c.archives(t), 1, "no backup without the snapshot")
		c.requireNothingLeft(t)
	})

	t.Run("hanging-pre", func(t *testing.T) {
		// The hook and a child of its own hang; both must be gone after the
		// time limit, in the "guest" too.
		hang := fmt.Sprintf("echo $$ > %s/hook.pid; sleep 6011 & echo $! > %s/child.pid; sleep 6012", guest, guest)
		c.setHooks(t, fmt.Sprintf("pre_snapshot = %q\non_snapshot = %q\ntime_limit = \"3s\"\n", hang, rec("on"))+hooksSSH(known))
		start := time.Now()
		r := runFailed(t, ctx, c)
		t.Logf("run with a hanging pre_snapshot took %s", time.Since(start))
		require.True(t, r.Hooks[0].TimedOut)
		require.Contains(t, r.Error, "abandoned")
		require.Equal(t, "on", readLog(t)[0][0], "on_snapshot runs after the hang")
		var pids []string
		for _, f := range []string{"hook.pid", "child.pid"} {
			b, err := os.ReadFile(filepath.Join(guest, f))
			require.NoError(t, err)
			pids = append(pids, strings.TrimSpace(string(b)))
		}
		require.Eventually(t, func() bool {
			for _, pid := range pids {
				// Gone, or the pid reused by something else.
				if cmd, err := os.ReadFile("/proc/" + pid + "/cmdline"); err == nil && strings.Contains(string(cmd), "601") {
					return false
				}
			}
			return true
		}, time.Minute, 200*time.Millisecond, "the hung hook (pids %v) and its child were killed on the ssh server's side", pids)
		require.Len(t, c.archives(t), 1)
		c.requireNothingLeft(t)
	})

	t.Run("unknown-host-key", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "known_hosts")
		require.NoError(t, os.WriteFile(other, []byte(fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbs7gYGmB6wTcT4jDJ5qH7Uux5WkqcAn+kQ9nbRNhQj\n", sshd.port)), 0o600))
		c.setHooks(t, fmt.Sprintf("pre_snapshot = %q\n", rec("pre"))+hooksSSH(other))
		r := runFailed(t, ctx, c)
		require.Contains(t, r.Error, "pre_snapshot failed: snapshot skipped: hook pre_snapshot: ssh 127.0.0.1: exit 255")
		require.Contains(t, r.Hooks[0].Stderr, "Host key verification failed")
		_, err := os.Stat(filepath.Join(guest, "hooks.log"))
		require.ErrorIs(t, err, os.ErrNotExist, "the hook did not run on a host with the wrong key")
		c.requireNothingLeft(t)
	})

	t.Run("snapshot-fails", func(t *testing.T) {
		// pre_snapshot puts a directory where the snapshot's overlay goes
		// (the "guest" is this host): libvirt refuses the snapshot.
		block := fmt.Sprintf(`mkdir -p %s/runs/"$SB_RUN_ID"/"$SB_CLIENT"/vda.snapshot.qcow2`, c.stateDir)
		c.setHooks(t, fmt.Sprintf("pre_snapshot = %q\non_snapshot = %q\npost_snapshot = %q\n", block, rec("on"), rec("post"))+hooksSSH(known))
		r := runFailed(t, ctx, c)
		require.Contains(t, r.Error, "vda.snapshot.qcow2")
		require.Equal(t, []string{hooks.PreSnapshot, hooks.OnSnapshot, hooks.PostSnapshot}, hookNames(r))
		log := readLog(t)
		require.Equal(t, []string{"on", "post"}, []string{log[0][0], log[1][0]}, "on_snapshot runs after the failed snapshot")
		require.Equal(t, "failed", log[1][2])
		require.Len(t, c.archives(t), 1)
		c.requireNothingLeft(t)
	})

	// Time limits. The backend is slowed down (restic at 1 KiB/s) so that
	// the appliance is surely still running when the limit passes.
	etc := filepath.Join(c.dir, "etc")
	pass := filepath.Join(etc, "secrets", "restic.pass")
	require.NoError(t, os.WriteFile(pass, []byte("restic secret\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "local.toml"), []byte(fmt.Sprintf(`backend = "restic"
target = "file://%s/{client}"
bandwidth_limit = "1K"
[encryption]
passphrase_file = %q
`, filepath.Join(c.dir, "restic"), pass)), 0o600))
	// overrun runs a backup with the limit set by line (in file) and checks
	// what every overrun must end with: a failed job, post_snapshot run
	// with that outcome, nothing left.
	overrun := func(t *testing.T, file, line string) (*report.Job, time.Duration) {
		c.setHooks(t, fmt.Sprintf("post_snapshot = %q\n", rec("post"))+hooksSSH(known))
		orig, err := os.ReadFile(file)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file, append([]byte(line+"\n"), orig...), 0o600)) // top-level key: before the tables
		defer func() { require.NoError(t, os.WriteFile(file, orig, 0o600)) }()
		start := time.Now()
		r := runFailed(t, ctx, c)
		took := time.Since(start)
		t.Logf("%s: run took %s, reason: %s", line, took, r.Error)
		log := readLog(t)
		require.Equal(t, "post", log[0][0])
		require.Equal(t, "failed", log[0][2], "post_snapshot ran, with the outcome")
		c.requireNothingLeft(t)
		return r, took
	}

	t.Run("job-time-limit", func(t *testing.T) {
		r, took := overrun(t, filepath.Join(etc, "clients", c.name+".toml"), `time_limit = "75s"`)
		require.True(t, strings.HasPrefix(r.Error, "time_limit 1m15s of the job reached: "), r.Error)
		// Either the appliance's watchdog stopped it a little before the
		// deadline, or the host destroyed it at the deadline.
		require.Regexp(t, `: (the appliance's watchdog stopped the job|appliance hostctl-backup-sshhooks-\S+ destroyed)`, r.Error)
		require.Less(t, took, 75*time.Second+4*time.Minute, "bounded by the limit (plus cleanup)")
		require.FileExists(t, filepath.Join(r.LogDir, "console.log"), "the appliance's console log is kept")
	})

	t.Run("run-time-limit", func(t *testing.T) {
		r, _ := overrun(t, c.config, `run_time_limit = "60s"`)
		require.Regexp(t, `^run_time_limit 1m0s reached: appliance hostctl-backup-sshhooks-\S+ destroyed$`, r.Error,
			"the host destroyed the running appliance at the run's limit")
		// What the destroyed appliance had written to its job disk is kept.
		res, err := os.ReadFile(filepath.Join(r.LogDir, "result.jsonl"))
		require.NoError(t, err)
		require.Contains(t, string(res), `"mount snapshot"`, "the result records of the destroyed appliance")
	})
}

// runFailed runs `hostctl run --json` for c, which must fail (exit code 1),
// and returns the client's report.
func runFailed(t *testing.T, ctx context.Context, c *client) *report.Job {
	t.Helper()
	code, out, _ := hostctl(t, ctx, "run", "--json", "-c", c.config)
	require.Equal(t, 1, code)
	reps := parseReports(t, out)
	require.Len(t, reps, 1)
	require.Equal(t, job.StatusFailed, reps[0].Status)
	return reps[0]
}

// requirePreFailed checks the report of a job whose pre_snapshot was
// `echo cannot lock >&2; exit 3`: snapshot skipped, exit code and stderr kept.
func requirePreFailed(t *testing.T, r *report.Job) {
	t.Helper()
	require.Contains(t, r.Error, "pre_snapshot failed: snapshot skipped: hook pre_snapshot: exit code 3: cannot lock")
	require.Equal(t, 3, r.Hooks[0].Exit)
	require.Equal(t, "cannot lock\n", r.Hooks[0].Stderr)
}
