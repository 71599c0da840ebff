package runner

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirtxml"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
)

// recordedDomain is the VM record's domain XML: the client as it was,
// with a host device that the rebuilt definition must not carry.
const recordedDomain = `<domain type='qemu'><name>web</name><uuid>2b8e5a2c-3f1d-4d7e-9a41-1c2b3d4e5f60</uuid><memory unit='MiB'>512</memory>
<os><type arch='x86_64'>hvm</type><boot dev='hd'/></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/old/web-root.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg0/old-data'/><target dev='vdb' bus='virtio'/></disk>
<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>
</devices></domain>`

func testRecord(t *testing.T) []byte {
	rec := vmrecord.Record{Version: vmrecord.Version, Client: "web",
		Disks:       []vmrecord.Disk{{Dev: "vda", Size: 8 << 30}, {Dev: "vdb", Size: 2 << 30}},
		Filesystems: []vmrecord.Filesystem{{Where: "/", Disk: "vda", Part: 1, Type: "ext4"}, {Where: "/srv", Disk: "vdb", Type: "xfs"}},
		BootLoader:  &vmrecord.BootLoader{Kind: "grub-pc", Disk: "vda"},
		Domain:      recordedDomain}
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	return b
}

// missingDomainJob is recoverJob with the client's domain gone: the first
// appliance reads the record (recorded), the second restores (restore, nil:
// ok).
func missingDomainJob(t *testing.T, recorded []byte, restore func(x string) error) (*lvmJob, *[]*job.Job) {
	j, _ := recoverJob(t)
	j.c.Hooks.PreRecovery, j.c.Hooks.PostRecovery = "", ""
	delete(j.hv.live, "web")
	delete(j.hv.inactive, "web")
	var jobs []*job.Job
	j.hv.onStart = func(x string) error {
		img := applianceDisk(t, x)
		jb := readJob(t, img)
		jobs = append(jobs, jb)
		defer delete(j.hv.live, domainName(x))
		if jb.Mode == job.ModeList {
			require.NoError(t, writeJobFile(img, job.FileVMRecord, recorded))
			return writeResult(img, job.Done{Status: job.StatusOK, Archive: "web-3"}.Record())
		}
		if restore != nil {
			return restore(x)
		}
		return writeResult(img, job.Done{Status: job.StatusOK, Archive: "web-3"}.Record())
	}
	return j, &jobs
}

func TestRecoverRecreatesDomain(t *testing.T) {
	j, jobs := missingDomainJob(t, testRecord(t), nil)
	diskDir := filepath.Join(j.dir, "new")
	rep := j.r.Recover(context.Background(), j.c, RecoverOptions{DiskDir: diskDir, ShutdownTimeout: time.Second})
	require.Equal(t, job.StatusOK, rep.Status, rep.Error)

	require.Len(t, *jobs, 2)
	require.Equal(t, &job.List{Record: true}, (*jobs)[0].List, "the record of the latest backup")
	require.Equal(t, "web-3", (*jobs)[1].Restore.Archive, "the recovery restores the backup whose record made the VM")
	require.Equal(t, []job.Disk{{Serial: "sb-disk0", Dev: "vda"}, {Serial: "sb-disk1", Dev: "vdb"}}, (*jobs)[1].Disks)
	require.Contains(t, j.img.calls, "create web-vda.qcow2 8589934592")
	require.Contains(t, j.img.calls, "create web-vdb.qcow2 2147483648")

	var dom libvirtxml.Domain
	require.NoError(t, dom.Unmarshal(j.hv.inactive["web"]))
	require.Equal(t, "2b8e5a2c-3f1d-4d7e-9a41-1c2b3d4e5f60", dom.UUID)
	require.Equal(t, filepath.Join(diskDir, "web-vda.qcow2"), dom.Devices.Disks[0].Source.File.File)
	require.Equal(t, filepath.Join(diskDir, "web-vdb.qcow2"), dom.Devices.Disks[1].Source.File.File)
	require.Empty(t, dom.Devices.Hostdevs, "the host device is not carried over")
	require.Contains(t, j.hv.live, "web", "the recreated client runs")
	calls := strings.Join(j.hv.calls, ",")
	require.Regexp(t, `^start hostctl-list-web-[^,]*,destroy [^,]*,define web,start hostctl-restore-web-[^,]*,destroy [^,]*,start-domain web$`, calls)
	j.requireNothingLeft(t)
}

// A failed restore into a recreated domain removes the domain and its disks
// again: a rerun starts from the same point, and nothing is left behind.
func TestRecoverRecreateFailureRemovesWhatItMade(t *testing.T) {
	j, _ := missingDomainJob(t, testRecord(t), func(x string) error {
		return writeResult(applianceDisk(t, x), job.Done{Status: job.StatusFailed, Error: "restore: borg: connection closed"}.Record())
	})
	diskDir := filepath.Join(j.dir, "new")
	rep := j.r.Recover(context.Background(), j.c, RecoverOptions{DiskDir: diskDir, ShutdownTimeout: time.Second})
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "The domain web and the disks this recovery made are removed again")
	require.NotContains(t, j.hv.inactive, "web")
	entries, err := os.ReadDir(diskDir)
	require.NoError(t, err)
	require.Empty(t, entries)
	j.requireNothingLeft(t)
}

func TestRecoverMissingDomain(t *testing.T) {
	t.Run("without --disk-dir", func(t *testing.T) {
		j, jobs := missingDomainJob(t, testRecord(t), nil)
		rep := j.r.Recover(context.Background(), j.c, RecoverOptions{})
		require.Equal(t, job.StatusFailed, rep.Status)
		require.Contains(t, rep.Error, "domain web does not exist")
		require.Contains(t, rep.Error, "pass --disk-dir DIR (qcow2 files) or --vg VG")
		require.Empty(t, *jobs)
	})
	t.Run("existing domain with --disk-dir", func(t *testing.T) {
		j, _ := recoverJob(t)
		_, err := j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{DiskDir: "/srv/x"})
		require.ErrorContains(t, err, "domain web exists: --disk-dir and --vg only make a domain that does not")
	})
	t.Run("a disk file exists", func(t *testing.T) {
		j, _ := missingDomainJob(t, testRecord(t), nil)
		diskDir := filepath.Join(j.dir, "new")
		require.NoError(t, os.MkdirAll(diskDir, 0o700))
		keep := filepath.Join(diskDir, "web-vdb.qcow2")
		require.NoError(t, os.WriteFile(keep, []byte("someone's disk"), 0o600))
		rep := j.r.Recover(context.Background(), j.c, RecoverOptions{DiskDir: diskDir})
		require.Equal(t, job.StatusFailed, rep.Status)
		require.Contains(t, rep.Error, keep+" exists already; nothing is overwritten")
		b, err := os.ReadFile(keep)
		require.NoError(t, err)
		require.Equal(t, "someone's disk", string(b))
		require.NotContains(t, strings.Join(j.img.calls, ","), "web-vd", "no client disk is made")
	})
	// The record comes from the repository: a forged one that the record
	// checks refuse makes nothing.
	t.Run("forged record", func(t *testing.T) {
		bad := strings.Replace(string(testRecord(t)), `"dev":"vdb"`, `"dev":"../../etc"`, 1)
		j, _ := missingDomainJob(t, []byte(bad), nil)
		rep := j.r.Recover(context.Background(), j.c, RecoverOptions{DiskDir: filepath.Join(j.dir, "new")})
		require.Equal(t, job.StatusFailed, rep.Status)
		require.Contains(t, rep.Error, "the VM record of backup web-3: VM record:")
		require.NotContains(t, strings.Join(j.img.calls, ","), "web-vd", "no client disk is made")
		require.NotContains(t, j.hv.inactive, "web")
	})
}

// The plan of a recreated domain names every disk it makes and what the
// definition leaves out.
func TestRecreatePlanLines(t *testing.T) {
	j, _ := missingDomainJob(t, testRecord(t), nil)
	p, err := j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{VG: "vg0"})
	require.NoError(t, err)
	require.True(t, p.Missing)
	require.NoError(t, j.r.PlanRecreate(context.Background(), j.c, p))
	lines := strings.Join(p.Lines(), "\n")
	require.Contains(t, lines, "domain web, to be made")
	require.Contains(t, lines, "the domain does not exist: it is made from the VM record of backup web-3")
	require.Contains(t, lines, "new disk vda: /dev/vg0/web-vda, 8.0 GiB (logical volume vg0/web-vda)")
	require.Contains(t, lines, "left out: 1 hostdev (host device passthrough)")
	require.Contains(t, lines, "1. make the new disks and define the domain")
	require.Equal(t, "web-3", p.Archive)
}

// A dry run of an existing domain shows the backup's record; one that
// cannot be read is said, not fatal.
func TestPlanRecordLines(t *testing.T) {
	j, _ := missingDomainJob(t, testRecord(t), nil)
	j.hv.inactive["web"] = `<domain type="qemu"><name>web</name><devices>` + fileDisk(t, j.dir) + `</devices></domain>`
	p, err := j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{})
	require.NoError(t, err)
	j.r.PlanRecord(context.Background(), j.c, p)
	lines := strings.Join(p.Lines(), "\n")
	for _, want := range []string{"VM record of backup web-3:", "  disk vda: 8.0 GiB, no partition table", "  filesystem / (ext4 on vda1)",
		"  filesystem /srv (xfs on vdb)", "  boot loader grub-pc on vda"} {
		require.Contains(t, lines, want)
	}
	bad, _ := missingDomainJob(t, []byte(`{"version":1,"client":"web","disks":[{"dev":"vda","size":-1}]}`), nil)
	bad.hv.inactive["web"] = j.hv.inactive["web"]
	p, err = bad.r.PlanRecovery(context.Background(), bad.c, RecoverOptions{})
	require.NoError(t, err)
	bad.r.PlanRecord(context.Background(), bad.c, p)
	require.Contains(t, strings.Join(p.Lines(), "\n"), "the VM record was not read: the VM record of backup web-3: VM record:")
}

// --vg makes the disks as logical volumes, attached as block devices, and
// removes them again after a failure.
func TestRecoverRecreateLVs(t *testing.T) {
	j, _ := missingDomainJob(t, testRecord(t), func(x string) error {
		return writeResult(applianceDisk(t, x), job.Done{Status: job.StatusFailed, Error: "restore: no space left"}.Record())
	})
	rep := j.r.Recover(context.Background(), j.c, RecoverOptions{VG: "vg9", ShutdownTimeout: time.Second})
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Equal(t, []string{"create vg9/web-vda size 8589934592", "create vg9/web-vdb size 2147483648", "remove vg9/web-vdb", "remove vg9/web-vda"},
		slices.DeleteFunc(slices.Clone(j.lm.calls), func(c string) bool { return !strings.Contains(c, "vg9/") }))
	require.NotContains(t, j.hv.inactive, "web")
	require.Contains(t, strings.Join(j.hv.calls, ","), "define web")
}

// What appears between the plan and the recovery (the operator reads the
// plan at the prompt) is never overwritten, and a domain that was started
// meanwhile is planned again.
func TestRecoverPlannedRaces(t *testing.T) {
	plan := func(t *testing.T) (*lvmJob, *RecoverPlan) {
		j, _ := missingDomainJob(t, testRecord(t), nil)
		p, err := j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{DiskDir: filepath.Join(j.dir, "new")})
		require.NoError(t, err)
		require.NoError(t, j.r.PlanRecreate(context.Background(), j.c, p))
		return j, p
	}
	t.Run("a domain defined", func(t *testing.T) {
		j, p := plan(t)
		j.hv.inactive["web"] = "<domain><name>web</name></domain>"
		rep := j.r.RecoverPlanned(context.Background(), j.c, p)
		require.Equal(t, job.StatusFailed, rep.Status)
		require.Contains(t, rep.Error, "domain web was defined since the plan was made")
		require.Equal(t, "<domain><name>web</name></domain>", j.hv.inactive["web"])
	})
	t.Run("a disk file", func(t *testing.T) {
		j, p := plan(t)
		require.NoError(t, os.MkdirAll(filepath.Join(j.dir, "new"), 0o700))
		keep := filepath.Join(j.dir, "new", "web-vdb.qcow2")
		require.NoError(t, os.WriteFile(keep, []byte("mine"), 0o600))
		rep := j.r.RecoverPlanned(context.Background(), j.c, p)
		require.Equal(t, job.StatusFailed, rep.Status)
		require.Contains(t, rep.Error, keep+" appeared since the plan was made")
		b, _ := os.ReadFile(keep)
		require.Equal(t, "mine", string(b))
		_, err := os.Stat(filepath.Join(j.dir, "new", "web-vda.qcow2"))
		require.ErrorIs(t, err, os.ErrNotExist, "the disk made before it is removed again")
		require.NotContains(t, j.hv.inactive, "web")
	})
	t.Run("an existing domain started", func(t *testing.T) {
		j, _ := recoverJob(t)
		x := j.hv.live["web"]
		delete(j.hv.live, "web")
		p, err := j.r.PlanRecovery(context.Background(), j.c, RecoverOptions{ShutdownTimeout: time.Second})
		require.NoError(t, err)
		require.False(t, p.Running)
		j.hv.live["web"] = x // started while the plan was read
		j.hv.onStart = func(x string) error {
			_, running := j.hv.live["web"]
			require.False(t, running, "the client is off while the appliance has its disks")
			delete(j.hv.live, domainName(x))
			return writeResult(applianceDisk(t, x), job.Done{Status: job.StatusOK, Archive: "web-1"}.Record())
		}
		rep := j.r.RecoverPlanned(context.Background(), j.c, p)
		require.Equal(t, job.StatusOK, rep.Status, rep.Error)
		require.Contains(t, j.hv.calls, "shutdown web")
	})
}
