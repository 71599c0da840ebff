package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// recoverJob is a runner with the fake hypervisor, a running client "web"
// with one file disk, a repository directory, and local recovery hooks
// that append to a log.
func recoverJob(t *testing.T) (*lvmJob, string) {
	dir := t.TempDir()
	j := newLVMJob(t, fileDisk(t, dir))
	require.NoError(t, os.MkdirAll(filepath.Join(j.dir, "backup", "web"), 0o700))
	log := filepath.Join(dir, "hooks.log")
	rec := func(name string) string { return `echo "` + name + ` $SB_HOOK $SB_CLIENT $SB_ARCHIVE" >> ` + log }
	j.c.Hooks = config.Hooks{Transport: config.TransportLocal, TimeLimit: job.Duration{Duration: time.Minute},
		PreRecovery: rec("pre"), EndRecovery: "touch /recovered", PostRecovery: rec("post")}
	j.c.Tree.Mount = job.MountFstab
	return j, log
}

// applianceDisk is the job disk of the fake appliance's domain XML.
func applianceDisk(t *testing.T, x string) string {
	i := strings.Index(x, "job.img")
	require.Positive(t, i)
	return x[strings.LastIndex(x[:i], `"`)+1:i] + "job.img"
}

func readJob(t *testing.T, img string) *job.Job {
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	defer d.Close()
	fsys, err := d.GetFilesystem(0)
	require.NoError(t, err)
	f, err := fsys.OpenFile("/"+job.FileJob, os.O_RDONLY)
	require.NoError(t, err)
	buf := make([]byte, 64<<10)
	n, _ := f.Read(buf)
	j, err := job.Parse(buf[:n])
	require.NoError(t, err)
	return j
}

func domainName(x string) string {
	return x[strings.Index(x, "<name>")+6 : strings.Index(x, "</name>")]
}

func TestRecoverInPlace(t *testing.T) {
	j, log := recoverJob(t)
	var got *job.Job
	j.hv.onStart = func(x string) error {
		_, running := j.hv.live["web"]
		require.False(t, running, "the client is off while the appliance has its disks")
		require.Contains(t, x, "data.raw")
		require.NotContains(t, x[strings.Index(x, "data.raw"):], "<readonly", "client disk attached writable")
		img := applianceDisk(t, x)
		got = readJob(t, img)
		now := time.Now()
		require.NoError(t, writeResult(img,
			at(job.Step{Name: hooks.EndRecovery}.Record(), now),
			at(job.Step{Name: hooks.EndRecovery, Elapsed: time.Second}.Record(), now.Add(time.Second)),
			job.Done{Status: job.StatusOK, Archive: "web-1"}.Record()))
		delete(j.hv.live, domainName(x))
		return nil
	}
	rep := j.r.Recover(context.Background(), j.c, RecoverOptions{ShutdownTimeout: time.Second})
	require.Equal(t, job.StatusOK, rep.Status, rep.Error)
	require.Equal(t, "web-1", rep.Archive)

	require.Equal(t, job.ModeRestore, got.Mode)
	require.Equal(t, &job.Restore{To: job.RestoreToClient, Tree: job.Tree{Mount: job.MountFstab}, EndRecovery: &job.Hook{Command: "touch /recovered",
		TimeLimit: job.Duration{Duration: time.Minute},
		Env:       []string{"SB_HOOK=end_recovery", "SB_CLIENT=web", "SB_RUN_ID=20261125T000000Z", "SB_DOMAIN=web"}}}, got.Restore)
	require.Equal(t, []job.Disk{{Serial: "sb-disk0", Dev: "vdb"}}, got.Disks)
	require.Equal(t, job.MountFstab, got.Restore.Tree.Mount)

	var names []string
	for _, h := range rep.Hooks {
		names = append(names, h.Name)
		require.True(t, h.OK(), "%+v", h)
	}
	require.Equal(t, []string{hooks.PreRecovery, hooks.EndRecovery, hooks.PostRecovery}, names)
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	require.Equal(t, "pre pre_recovery web \npost post_recovery web web-1\n", string(b))

	appl := "hostctl-restore-web-20261125T000000Z"
	require.Equal(t, []string{"shutdown web", "start " + appl, "destroy " + appl, "start-domain web"}, j.hv.calls)
	require.Contains(t, j.hv.live, "web", "the client runs again")
	j.requireNothingLeft(t)
}

func TestRecoverFailedRestoreLeavesClientOff(t *testing.T) {
	j, log := recoverJob(t)
	j.hv.onStart = func(x string) error {
		require.NoError(t, writeResult(applianceDisk(t, x),
			job.Step{Name: "restore", Error: "borg: Archive web-9 does not exist", Elapsed: time.Second}.Record(),
			job.Done{Status: job.StatusFailed, Error: "restore: borg: Archive web-9 does not exist"}.Record()))
		delete(j.hv.live, domainName(x))
		return nil
	}
	rep := j.r.Recover(context.Background(), j.c, RecoverOptions{Archive: "web-9", ShutdownTimeout: time.Second})
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, `step "restore in the appliance" failed: restore: borg: Archive web-9 does not exist`)
	require.Contains(t, rep.Error, "The client is shut off and its disks are detached (no appliance is left)")
	require.Contains(t, rep.Error, "rerun `hostctl recover web` (with --mkfs when")
	require.Contains(t, rep.Error, "`hostctl rescue web`")
	require.NotContains(t, j.hv.live, "web", "the client stays off")
	require.NotContains(t, strings.Join(j.hv.calls, ","), "start-domain")
	b, _ := os.ReadFile(log)
	require.Equal(t, "pre pre_recovery web \n", string(b), "post_recovery does not run")
	j.requireNothingLeft(t)
}

func TestRecoverFailingPreRecoveryChangesNothing(t *testing.T) {
	j, _ := recoverJob(t)
	j.c.Hooks.PreRecovery = "echo not a blank VM >&2; exit 7"
	rep := j.r.Recover(context.Background(), j.c, RecoverOptions{})
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, `step "pre_recovery" failed: hook pre_recovery: exit code 7: not a blank VM. Nothing was changed: the client web is still running`)
	require.Empty(t, j.hv.calls)
	require.Contains(t, j.hv.live, "web")
}

func TestRecoverForcesShutdown(t *testing.T) {
	j, _ := recoverJob(t)
	j.hv.ignoreShutdown = true
	j.c.Hooks = config.Hooks{}
	j.hv.onStart = func(x string) error {
		_, running := j.hv.live["web"]
		require.False(t, running, "forced off")
		require.NoError(t, writeResult(applianceDisk(t, x), job.Done{Status: job.StatusOK, Archive: "web-1"}.Record()))
		delete(j.hv.live, domainName(x))
		return nil
	}
	var out strings.Builder
	j.rebuild(WithOutput(&out))
	rep := j.r.Recover(context.Background(), j.c, RecoverOptions{ShutdownTimeout: 50 * time.Millisecond})
	require.Equal(t, job.StatusOK, rep.Status, rep.Error)
	require.Equal(t, "shutdown web", j.hv.calls[0])
	require.Equal(t, "destroy web", j.hv.calls[1])
	require.Contains(t, out.String(), "web did not shut down within 50ms: forcing it off")
	j.requireNothingLeft(t)
}

// TestRecoverClientOffAlready: the client goes off by itself between its
// pre_recovery hook and the shutdown request, which libvirt refuses
// ("domain is not running"): the recovery goes on, forcing nothing.
func TestRecoverClientOffAlready(t *testing.T) {
	j, _ := recoverJob(t)
	j.hv.offBeforeShutdown = true
	j.c.Hooks = config.Hooks{}
	j.hv.onStart = func(x string) error {
		require.NoError(t, writeResult(applianceDisk(t, x), job.Done{Status: job.StatusOK, Archive: "web-1"}.Record()))
		delete(j.hv.live, domainName(x))
		return nil
	}
	var out strings.Builder
	j.rebuild(WithOutput(&out))
	rep := j.r.Recover(context.Background(), j.c, RecoverOptions{ShutdownTimeout: time.Minute})
	require.Equal(t, job.StatusOK, rep.Status, rep.Error)
	require.Equal(t, "shutdown web", j.hv.calls[0])
	require.NotContains(t, j.hv.calls, "destroy web")
	require.Contains(t, out.String(), "web is off already")
	require.NotContains(t, out.String(), "forcing it off")
	j.requireNothingLeft(t)
}

func TestRecoverPlanChangesNothing(t *testing.T) {
	j, _ := recoverJob(t)
	p, err := j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{MkFS: true})
	require.NoError(t, err)
	text := strings.Join(p.Lines(), "\n")
	for _, want := range []string{
		"in-place recovery of client web (domain web, running)",
		"backup: borg repository file://" + j.dir + "/backup/web, archive the latest",
		`1. run pre_recovery in the client: "echo \"pre`,
		"2. shut the client down (forced off after 2m0s)",
		`a backup without a record: as backup.mount = "fstab" says), stopping before any change if one is missing; a blank disk (nothing on it) gets the recorded partition table, guest LVM, filesystems and swap; create the filesystems afresh`,
		`run end_recovery chrooted into the restored tree: "touch /recovered"`,
		"wait for its guest agent (at most 5m0s), run post_recovery in it",
	} {
		require.Contains(t, text, want)
	}
	require.Regexp(t, `(?m)^disks: vdb=/\S+/data\.raw \(raw\)$`, text)
	require.Empty(t, j.hv.calls)
	_, err = os.Stat(j.r.jobDir("web"))
	require.ErrorIs(t, err, os.ErrNotExist, "no job directory")

	p, err = j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{Time: time.Date(2026, 11, 20, 3, 30, 0, 0, time.UTC)})
	require.NoError(t, err)
	require.Contains(t, strings.Join(p.Lines(), "\n"), "archive the newest at or before 2026-11-20T03:30:00Z")

	delete(j.hv.inactive, "web") // a transient domain would be gone after the shutdown
	_, err = j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{})
	require.ErrorContains(t, err, "domain web must be defined (persistent) to be started again after the restore")

	j.c.Type = config.TypeSelf
	_, err = j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{})
	require.ErrorContains(t, err, "only lvm_libvirt clients (a VM) are recovered in place; use hostctl restore web --to-dir DIR")
}

// The hint after a failed restore step says whether the client's
// filesystems may hold a partial restore: not when the appliance stopped
// while it looked for the backup.
func TestChangedFilesystems(t *testing.T) {
	step := func(name string) job.Record { return job.Step{Name: name}.Record() }
	require.False(t, changedFilesystems(&job.Result{Records: []job.Record{step("find client filesystems"), step("find the archive")}}))
	require.True(t, changedFilesystems(&job.Result{Records: []job.Record{step("find the archive"), step("empty client filesystems")}}))
	require.True(t, changedFilesystems(&job.Result{Records: []job.Record{step("find client filesystems"), step("lay out blank disks")}}))
	require.True(t, changedFilesystems(&job.Result{Records: []job.Record{step("create filesystems")}}))
}

// at is rec at time t.
func at(rec job.Record, t time.Time) job.Record { rec.Time = t; return rec }
