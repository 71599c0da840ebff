package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report/smtptest"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// runHost is a host configuration for runs that fail early, whatever the
// machine has: libvirt's in-process test driver (no libvirtd), TCG, a mail
// sink on 127.0.0.1 and a metrics file, two clients a and b.
type runHost struct {
	dir, config, stateDir, imageDir, metrics string
	sink                                     *smtptest.Server
}

func newRunHost(t *testing.T, hostExtra string) *runHost {
	t.Helper()
	sink, err := smtptest.Start()
	require.NoError(t, err)
	t.Cleanup(sink.Close)
	dir := t.TempDir()
	h := &runHost{dir: dir, config: filepath.Join(dir, "hostctl.toml"), stateDir: filepath.Join(dir, "state"),
		imageDir: filepath.Join(dir, "image"), metrics: filepath.Join(dir, "textfile", "hostctl.prom"), sink: sink}
	for _, d := range []string{"profiles", "clients"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o700))
	}
	host := fmt.Sprintf(`libvirt_uri = "test:///default"
state_dir = %q
image_dir = %q
default_profile = "p"
%s
[appliance]
accel = "tcg"

[report]
email = "failure"
to = ["ops@example.org"]
from = "hostctl@test.example"
metrics_file = %q
[report.smtp]
host = "127.0.0.1"
port = %d
starttls = false
`, h.stateDir, h.imageDir, hostExtra, h.metrics, sink.Port)
	files := map[string]string{
		"hostctl.toml":    host,
		"profiles/p.toml": fmt.Sprintf("backend = \"borg\"\ntarget = \"file://%s/backup/{client}\"\n[encryption]\nmode = \"none\"\n", dir),
		"clients/a.toml":  "domain = \"a-vm\"\n",
		"clients/b.toml":  "domain = \"b-vm\"\n",
	}
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	return h
}

// withImage creates the appliance files (empty: these runs never boot
// one) and a manifest that speaks this job format.
func (h *runHost) withImage(t *testing.T) {
	require.NoError(t, os.MkdirAll(h.imageDir, 0o755))
	for _, f := range []string{"vmlinuz", "initramfs.img", "appliance.img"} {
		require.NoError(t, os.WriteFile(filepath.Join(h.imageDir, f), nil, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(h.imageDir, "manifest.json"), fmt.Appendf(nil, `{"job_format": %d}`, job.Version), 0o644))
}

// holdLock takes the run lock as another hostctl run would, until the
// test ends.
func (h *runHost) holdLock(t *testing.T) {
	t.Helper()
	lock, err := runner.AcquireLock(h.stateDir)
	require.NoError(t, err)
	t.Cleanup(func() { lock.Release() })
}

// saved returns the run's report as `hostctl status` reads it.
func (h *runHost) saved(t *testing.T) *report.Run {
	t.Helper()
	runs, err := report.Last(h.stateDir, 1)
	require.NoError(t, err)
	require.Len(t, runs, 1, "one run report in %s", report.Dir(h.stateDir))
	return runs[0]
}

func jobsByClient(r *report.Run) map[string]*runner.Report {
	m := map[string]*runner.Report{}
	for _, j := range r.Jobs {
		m[j.Client] = j
	}
	return m
}

func (h *runHost) mail(t *testing.T) smtptest.Mail {
	t.Helper()
	select {
	case m := <-h.sink.Mails:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no report mail")
		return smtptest.Mail{}
	}
}

// writeLedgerEntry writes a ledger entry file as a (killed) hostctl left
// it, client being the job's client ("" for an older hostctl's entry).
func writeLedgerEntry(t *testing.T, stateDir string, seq int, client, kind string, fields map[string]string) {
	t.Helper()
	e := map[string]any{"seq": seq, "run_id": "20260101T000000Z", "kind": kind, "created": time.Now().UTC()}
	if client != "" {
		e["client"] = client
	}
	for k, v := range fields {
		e[k] = v
	}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	dir := filepath.Join(stateDir, "ledger")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d-%s.json", seq, kind)), b, 0o600))
}

// leftoverOverlay records, for client, an external snapshot of a domain
// that no longer exists while its overlay (guest writes) does: a leftover
// hostctl must not remove.
func (h *runHost) leftoverOverlay(t *testing.T, client string) string {
	overlay := filepath.Join(h.dir, client+"-vda.snapshot.qcow2")
	require.NoError(t, os.WriteFile(overlay, []byte("guest writes"), 0o600))
	writeLedgerEntry(t, h.stateDir, 1, client, "snapshot", map[string]string{
		"domain": client + "-gone", "disk": "vda", "path": overlay, "base": "/vms/" + client + ".qcow2", "base_format": "qcow2"})
	return overlay
}

// TestRunLeftoverBlocksOnlyItsClient: one client's leftover that cannot be
// removed fails that client's job, with the reason and where the ledger
// is, on every channel; the other client's job runs. Before, the run
// stopped before any job and reported nothing, every night.
func TestRunLeftoverBlocksOnlyItsClient(t *testing.T) {
	h := newRunHost(t, "")
	h.withImage(t)
	overlay := h.leftoverOverlay(t, "a")
	code, out, stderr := runMain(t, "run", "--config", h.config)
	require.Equal(t, ExitFailed, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
	jobs := jobsByClient(h.saved(t))
	require.Len(t, jobs, 2)
	ledgerDir := filepath.Join(h.stateDir, "ledger")
	require.Equal(t, runner.StatusFailed, jobs["a"].Status)
	require.Contains(t, jobs["a"].Error, "leftovers of an earlier run of a could not be removed (they stay recorded in "+ledgerDir)
	require.Contains(t, jobs["a"].Error, overlay)
	// b ran: the test driver has no domain b-vm, which is b's own failure.
	require.Contains(t, jobs["b"].Error, "b-vm")
	require.NotContains(t, jobs["b"].Error, "leftover")
	prom, err := os.ReadFile(h.metrics)
	require.NoError(t, err)
	require.Contains(t, string(prom), `hostctl_job_success{client="a"} 0`)
	m := h.mail(t)
	require.Contains(t, m.Data, "Subject: [hostctl FAILED] ")
	require.Contains(t, m.Data, "leftovers of an earlier run of a could not be removed")
	require.FileExists(t, overlay, "guest writes are never deleted")

	// cleanup says the leftover is still there, and fails.
	code, out, stderr = runMain(t, "cleanup", "--config", h.config)
	require.Equal(t, ExitFailed, code, out)
	require.Contains(t, stderr, "leftovers could not be removed; they stay recorded in "+ledgerDir)
}

// TestRunOldLeftoverWithoutClientBlocksAll: a leftover an older hostctl
// recorded (no client in it) could be anyone's: it blocks every client,
// and the reason says so.
func TestRunOldLeftoverWithoutClientBlocksAll(t *testing.T) {
	h := newRunHost(t, "")
	h.withImage(t)
	h.leftoverOverlay(t, "")
	code, _, stderr := runMain(t, "run", "--config", h.config)
	require.Equal(t, ExitFailed, code, stderr)
	for _, c := range []string{"a", "b"} {
		j := jobsByClient(h.saved(t))[c]
		require.Equal(t, runner.StatusFailed, j.Status)
		require.Contains(t, j.Error, "leftovers recorded without a client (by an older hostctl) could not be removed, and they block every client")
	}
}

// TestRunFailureBeforeClientsIsReported: a run that fails before its jobs
// (here: the appliance image is missing) still reports every client as
// failed on every channel: report JSON, metrics, mail.
func TestRunFailureBeforeClientsIsReported(t *testing.T) {
	h := newRunHost(t, "")
	code, out, stderr := runMain(t, "run", "--config", h.config)
	require.Equal(t, ExitFailed, code, "stdout:\n%s\nstderr:\n%s", out, stderr)
	require.Contains(t, stderr, "appliance image incomplete")
	r := h.saved(t)
	require.Equal(t, ExitFailed, r.ExitCode)
	jobs := jobsByClient(r)
	require.Len(t, jobs, 2)
	for _, c := range []string{"a", "b"} {
		require.Equal(t, runner.StatusFailed, jobs[c].Status)
		require.Contains(t, jobs[c].Error, "not started: appliance image incomplete")
	}
	prom, err := os.ReadFile(h.metrics)
	require.NoError(t, err)
	require.Contains(t, string(prom), `hostctl_job_success{client="b"} 0`)
	require.Contains(t, string(prom), "hostctl_run_exit_code 1")
	m := h.mail(t)
	require.Contains(t, m.Data, "Subject: [hostctl FAILED] ")
	require.Contains(t, m.Data, "reason: not started: appliance image incomplete")
}

// TestRunRefusedByLockIsReported: a run refused because another holds the
// lock is reported (exit code 4), without overwriting the other run's
// report.
func TestRunRefusedByLockIsReported(t *testing.T) {
	h := newRunHost(t, "")
	h.withImage(t)
	h.holdLock(t)
	code, _, stderr := runMain(t, "run", "--config", h.config)
	require.Equal(t, ExitLocked, code, stderr)
	r := h.saved(t)
	require.True(t, strings.HasSuffix(r.ID, "-refused"), r.ID)
	require.Equal(t, ExitLocked, r.ExitCode)
	require.Contains(t, jobsByClient(r)["a"].Error, "not started: ")
	require.Contains(t, jobsByClient(r)["a"].Error, "another hostctl run is in progress")
	require.Contains(t, h.mail(t).Data, "another hostctl run is in progress")
}

// TestRunConfigErrorReported: with a configuration that does not load,
// there is no state dir, mail or metrics setting to report to: the error
// goes to stderr and the journal, and the exit code is 2.
func TestRunConfigErrorReported(t *testing.T) {
	h := newRunHost(t, "no_such_key = 1")
	code, _, stderr := runMain(t, "run", "--config", h.config)
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, "no_such_key")
	msg, prio, fields := configFailureEntry(h.config, fmt.Errorf("%s:5: unknown key no_such_key", h.config))
	require.Equal(t, "hostctl: run not started: configuration "+h.config+": "+h.config+":5: unknown key no_such_key", msg)
	require.EqualValues(t, 3, prio, "err")
	require.Equal(t, "failed", fields["SB_STATUS"])
	require.Equal(t, h.config, fields["SB_CONFIG"])
	require.Equal(t, "hostctl", fields["SYSLOG_IDENTIFIER"])
}

// TestReportRunPrunesRuns: the runs' job directories (console logs, job
// logs, results) are pruned with the reports, keep_runs of them; one that
// holds a leftover the ledger lists stays.
func TestReportRunPrunesRuns(t *testing.T) {
	h := newRunHost(t, "")
	cfg, err := (&Globals{ConfigPath: h.config}).LoadConfig()
	require.NoError(t, err)
	cfg.Host.Report.KeepRuns = 2
	cfg.Host.Report.To = nil // no mail
	runs := filepath.Join(h.stateDir, "runs")
	ids := []string{"20260101T000000Z", "20260102T000000Z", "20260103T000000Z", "20260104T000000Z", "20260105T000000Z"}
	for _, id := range ids {
		require.NoError(t, os.MkdirAll(filepath.Join(runs, id, "a"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(runs, id, "a", "job.log"), []byte("log"), 0o600))
	}
	overlay := filepath.Join(runs, ids[1], "a", "vda.snapshot.qcow2")
	require.NoError(t, os.WriteFile(overlay, []byte("guest writes"), 0o600))
	writeLedgerEntry(t, h.stateDir, 1, "a", "snapshot", map[string]string{"domain": "a-vm", "disk": "vda", "path": overlay})
	g := &Globals{Stdout: io.Discard, Stderr: io.Discard}
	require.NoError(t, reportRun(context.Background(), g, cfg, ids[4], time.Now(), []*runner.Report{{Client: "a", Status: runner.StatusOK}}, false))
	left, err := os.ReadDir(runs)
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{ids[1], ids[3], ids[4]}, names, "the 2 newest, and the one with a leftover")
}

// TestRunUnreadableLedgerIsReported: a ledger entry that cannot be read
// could be any client's leftover: no job runs, and every client is
// reported failed with the reason.
func TestRunUnreadableLedgerIsReported(t *testing.T) {
	h := newRunHost(t, "")
	h.withImage(t)
	dir := filepath.Join(h.stateDir, "ledger")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00000000000000000001-snapshot.json"), []byte("{not json"), 0o600))
	code, _, stderr := runMain(t, "run", "--config", h.config)
	require.Equal(t, ExitFailed, code, stderr)
	for _, c := range []string{"a", "b"} {
		j := jobsByClient(h.saved(t))[c]
		require.Equal(t, runner.StatusFailed, j.Status)
		require.Contains(t, j.Error, "not started: the ledger of earlier runs' leftovers cannot be read")
	}
	require.Contains(t, h.mail(t).Data, "cannot be read")
}
