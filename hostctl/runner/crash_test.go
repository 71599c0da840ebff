package runner

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// These tests play a hostctl that is killed (SIGKILL: no deferred
// function runs) at the worst moments, and the next run that must clean up
// after it. A kill is simulated by copying the ledger directory at that
// moment: it is all a killed hostctl leaves to its successor.

// crashLedger copies the ledger directory of l into a new directory.
func crashLedger(t *testing.T, l *ledger.Ledger) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "ledger")
	require.NoError(t, os.MkdirAll(dst, 0o700))
	entries, err := os.ReadDir(l.Dir())
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(l.Dir(), e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
	return dst
}

// TestUndoTakesOverRunningCommit: a hostctl killed during blockcommit
// leaves the commit job running in libvirt. The next cleanup waits for it
// and pivots; it never starts a second commit (libvirt refuses one while a
// job runs on the disk, which failed every later cleanup).
func TestUndoTakesOverRunningCommit(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"))
	require.NoError(t, err)
	overlay := filepath.Join(dir, "vda.snapshot.qcow2")
	require.NoError(t, os.WriteFile(overlay, nil, 0o600))
	hv := newFakeHV()
	hv.base = "/vms/web.qcow2"
	hv.live["web"], hv.inactive["web"] = domXML(overlay), domXML(overlay)
	hv.jobs["web vda"] = virt.JobActiveCommit // started by the killed hostctl
	e, err := l.Record(ledger.Entry{RunID: "r", Kind: ledger.KindSnapshot, Domain: "web", Disk: "vda",
		Path: overlay, Base: "/vms/web.qcow2", BaseFormat: "qcow2"})
	require.NoError(t, err)

	require.NoError(t, Undo(context.Background(), hv, nil, l, e))
	require.Empty(t, hv.commits, "no second commit started")
	require.Contains(t, hv.calls, "finish-commit web vda", "the running commit was waited for and pivoted")
	require.Empty(t, hv.jobs)
	require.Contains(t, hv.live["web"], "/vms/web.qcow2", "the domain runs on its base")
	require.Contains(t, hv.inactive["web"], "/vms/web.qcow2")
	require.NoFileExists(t, overlay)
	left, err := l.List()
	require.NoError(t, err)
	require.Empty(t, left)
}

// TestUndoLeavesForeignBlockJob: a block job hostctl cannot have started
// (a copy) on the overlay's disk is not hostctl's to pivot or abort.
func TestUndoLeavesForeignBlockJob(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"))
	require.NoError(t, err)
	overlay := filepath.Join(dir, "vda.snapshot.qcow2")
	require.NoError(t, os.WriteFile(overlay, []byte("guest writes"), 0o600))
	hv := newFakeHV()
	hv.base = "/vms/web.qcow2"
	hv.live["web"], hv.inactive["web"] = domXML(overlay), domXML(overlay)
	hv.jobs["web vda"] = virt.JobCopy
	e, err := l.Record(ledger.Entry{RunID: "r", Kind: ledger.KindSnapshot, Domain: "web", Disk: "vda",
		Path: overlay, Base: "/vms/web.qcow2", BaseFormat: "qcow2"})
	require.NoError(t, err)
	err = Undo(context.Background(), hv, nil, l, e)
	require.ErrorContains(t, err, "a copy block job runs on disk vda of web")
	require.FileExists(t, overlay, "guest data is never deleted")
	require.Equal(t, virt.JobCopy, hv.jobs["web vda"])
	left, _ := l.List()
	require.Len(t, left, 1)
}

// TestKillWhileSuspended: a hostctl killed while the domain is suspended
// around its snapshots (an LV and a file disk) leaves it paused; the next
// cleanup resumes it.
func TestKillWhileSuspended(t *testing.T) {
	j := newLVMJob(t, "")
	x := `<domain type="qemu"><name>web</name><devices>` + lvDisk + fileDisk(t, j.dir) + `</devices></domain>`
	j.hv.live["web"], j.hv.inactive["web"] = x, x
	var crashed string
	j.hv.onSnapshot = func() {
		require.Equal(t, virt.StateSuspended, j.hv.paused["web"], "the snapshot is taken while suspended")
		crashed = crashLedger(t, j.l)
	}
	j.r.Backup(context.Background(), j.c)
	require.NotEmpty(t, crashed)

	// What the killed hostctl left: the domain paused, its ledger.
	hv := newFakeHV()
	hv.live["web"], hv.inactive["web"] = x, x
	hv.paused["web"] = virt.StateSuspended
	l, err := ledger.Open(crashed)
	require.NoError(t, err)
	_, err = Reconcile(context.Background(), hv, j.lm, l, io.Discard)
	require.NoError(t, err)
	require.Contains(t, hv.calls, "resume web")
	require.Empty(t, hv.paused, "the domain runs again")
	left, _ := l.List()
	require.Empty(t, left)
}

// TestKillWhileFrozen: a hostctl killed while the guest's filesystems are
// frozen (hooks.freeze) leaves them frozen; the next cleanup thaws them,
// before it merges the snapshot back.
func TestKillWhileFrozen(t *testing.T) {
	j := newLVMJob(t, "")
	x := `<domain type="qemu"><name>web</name><devices>` + fileDisk(t, j.dir) + `</devices></domain>`
	j.hv.live["web"], j.hv.inactive["web"] = x, x
	j.hv.agent = true
	j.c.Hooks = config.Hooks{Freeze: true}
	var crashed string
	j.hv.onSnapshot = func() {
		require.True(t, j.hv.frozen["web"], "the snapshot is taken while frozen")
		crashed = crashLedger(t, j.l)
	}
	rep := j.r.Backup(context.Background(), j.c)
	require.NotEmpty(t, crashed, rep.Error)
	require.Empty(t, j.hv.frozen, "the job itself thawed")

	hv := newFakeHV()
	hv.agent = true
	overlay := filepath.Join(j.r.jobDir("web"), "vdb.snapshot.qcow2")
	require.NoError(t, os.MkdirAll(filepath.Dir(overlay), 0o700))
	require.NoError(t, os.WriteFile(overlay, nil, 0o600))
	onOverlay := strings.Replace(x, filepath.Join(j.dir, "data.raw"), overlay, 1)
	hv.live["web"], hv.inactive["web"] = onOverlay, onOverlay
	hv.base = filepath.Join(j.dir, "data.raw")
	hv.frozen["web"] = true
	l, err := ledger.Open(crashed)
	require.NoError(t, err)
	recorded, err := l.List()
	require.NoError(t, err)
	for _, e := range recorded {
		require.Equal(t, "web", e.Client, "%s carries its client", e)
	}
	_, err = Reconcile(context.Background(), hv, j.lm, l, io.Discard)
	require.NoError(t, err)
	require.Empty(t, hv.frozen, "the guest's filesystems are thawed")
	var order []string
	for _, c := range hv.calls {
		if strings.HasPrefix(c, "thaw ") || strings.HasPrefix(c, "define ") {
			order = append(order, c)
		}
	}
	require.Equal(t, "thaw web", order[0], "thawed first, then the snapshot merged back: %v", hv.calls)
	require.NotEmpty(t, hv.commits, "the snapshot was merged back")
	require.NoFileExists(t, overlay)
	left, _ := l.List()
	require.Empty(t, left)
}

// TestOperatorPausedDomainStaysPaused: a domain an operator paused is
// snapshotted as it is (its disks are quiet) and left paused: hostctl
// resumes only what it suspended.
func TestOperatorPausedDomainStaysPaused(t *testing.T) {
	j := newLVMJob(t, "")
	x := `<domain type="qemu"><name>web</name><devices>` + lvDisk + fileDisk(t, j.dir) + `</devices></domain>`
	j.hv.live["web"], j.hv.inactive["web"] = x, x
	j.hv.paused["web"] = virt.StateSuspended // virsh suspend web
	j.r.Backup(context.Background(), j.c)
	require.Contains(t, j.hv.calls, "snapshot web")
	require.NotContains(t, j.hv.calls, "resume web")
	require.Equal(t, virt.StateSuspended, j.hv.paused["web"], "still paused")
	j.requireNothingLeft(t)
}

// TestPanicInJobIsRecovered: a panic inside a job (here in the appliance
// start) fails that job with the panic, its stack goes to the job's log
// directory, and the job's cleanup still runs.
func TestPanicInJobIsRecovered(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	j.hv.onStart = func(string) error { panic("index out of range [3] with length 3") }
	var rep *Report
	require.NotPanics(t, func() { rep = j.r.Backup(context.Background(), j.c) })
	require.Equal(t, StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "panic: index out of range [3] with length 3")
	stack, err := os.ReadFile(filepath.Join(rep.LogDir, "hostctl-panic.log"))
	require.NoError(t, err)
	require.Contains(t, string(stack), "goroutine ")
	require.Contains(t, string(stack), "runner.(*Runner).runAppliance")
	j.requireNothingLeft(t)
}

// TestLeftoverBlocksOnlyItsClient: a leftover that cannot be removed (the
// overlay of a domain that is gone holds guest writes) fails the jobs of
// its own client, with the reason and the ledger; the other clients run.
// An entry without a client (an older hostctl's) blocks every client.
func TestLeftoverBlocksOnlyItsClient(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	overlay := filepath.Join(j.dir, "db-vda.snapshot.qcow2")
	require.NoError(t, os.WriteFile(overlay, []byte("guest writes"), 0o600))
	_, err := j.l.Record(ledger.Entry{RunID: "old", Client: "db", Kind: ledger.KindSnapshot, Domain: "db-gone",
		Disk: "vda", Path: overlay, Base: "/vms/db.qcow2", BaseFormat: "qcow2"})
	require.NoError(t, err)
	lo, err := ReconcileClients(context.Background(), j.hv, j.lm, j.l, io.Discard)
	require.NoError(t, err)
	require.NoError(t, lo.Blocks("web"))
	require.ErrorContains(t, lo.Blocks("db"), "leftovers of an earlier run of db could not be removed (they stay recorded in "+j.l.Dir())
	require.ErrorContains(t, lo.Blocks("db"), "merge it by hand")
	j.r.Leftovers = lo

	db := &config.Client{Name: "db", Domain: "db", Type: config.TypeLVMLibvirt, Profile: "p", TimeLimit: j.c.TimeLimit,
		Hooks: config.Hooks{PreSnapshot: "touch " + filepath.Join(j.dir, "db-hook-ran"), Transport: config.TransportLocal}}
	rep := j.r.Backup(context.Background(), db)
	require.Equal(t, StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "leftovers of an earlier run of db could not be removed")
	require.NoFileExists(t, filepath.Join(j.dir, "db-hook-ran"), "nothing of the blocked job ran")

	j.hv.onStart = func(x string) error {
		require.NoError(t, writeResult(applianceDisk(t, x), okStats, job.Done{Status: job.StatusOK}.Record()))
		delete(j.hv.live, x[strings.Index(x, "<name>")+6:strings.Index(x, "</name>")])
		return nil
	}
	rep = j.r.Backup(context.Background(), j.c)
	require.Equal(t, StatusOK, rep.Status, rep.Error)

	// An older hostctl's entry, without a client.
	_, err = j.l.Record(ledger.Entry{RunID: "older", Kind: ledger.KindSnapshot, Domain: "gone", Disk: "vda",
		Path: overlay, Base: "/vms/x.qcow2", BaseFormat: "qcow2"})
	require.NoError(t, err)
	lo, err = ReconcileClients(context.Background(), j.hv, j.lm, j.l, io.Discard)
	require.NoError(t, err)
	require.ErrorContains(t, lo.Blocks("web"), "leftovers recorded without a client (by an older hostctl) could not be removed, and they block every client")
}
