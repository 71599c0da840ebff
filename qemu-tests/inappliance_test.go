package qemutests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/jobdisk"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// execResult is what one in-appliance run returned.
type execResult struct {
	log     string // the program's output (and the supervisor's lines)
	result  *job.Result
	elapsed time.Duration
}

// runInAppliance boots a transient appliance in mode exec that runs the
// static binary bin (a `go test -c` binary) as root in the appliance
// userland with args, with blank raw disks of the given sizes attached as
// sb-disk0, sb-disk1, … It returns the output and the done record: the
// harness for code that needs device-mapper, which the hosts lack.
func runInAppliance(t testing.TB, e *env, bin string, args []string, diskMiB []int, limit time.Duration) execResult {
	t.Helper()
	dir := t.TempDir()
	prog, err := os.ReadFile(bin)
	require.NoError(t, err)
	name := fmt.Sprintf("sbtest-exec-%d", time.Now().UnixNano())
	j := &job.Job{Version: job.Version, Mode: job.ModeExec, Client: "exec", RunID: name,
		TimeLimit: job.Duration{Duration: limit},
		Exec:      &job.Exec{File: job.SecretPrefix + "prog", Args: args, Env: []string{"SB_IN_APPLIANCE=1"}}}
	disks := []virt.DiskSpec{
		{Path: filepath.Join(e.imageDir, "appliance.img"), Format: "raw", Serial: job.SerialAppliance, Target: "vda", ReadOnly: true},
		{Path: filepath.Join(dir, "job.img"), Format: "raw", Serial: job.SerialJob, Target: "vdb"},
	}
	for i, mib := range diskMiB {
		p := filepath.Join(dir, fmt.Sprintf("disk%d.raw", i))
		require.NoError(t, os.WriteFile(p, nil, 0o600))
		require.NoError(t, os.Truncate(p, int64(mib)<<20))
		serial := fmt.Sprintf("%s%d", job.DiskSerialPrefix, i)
		disks = append(disks, virt.DiskSpec{Path: p, Format: "raw", Serial: serial, Target: "vd" + string(rune('c'+i))})
		j.Disks = append(j.Disks, job.Disk{Serial: serial, Dev: "vd" + string(rune('a'+i))})
	}
	require.NoError(t, jobdisk.Create(disks[1].Path, j, map[string][]byte{j.Exec.File: prog}))
	x, err := virt.ApplianceXML(virt.ApplianceSpec{Name: name, Accel: e.accel, MemoryMiB: 1024, VCPUs: 2,
		Kernel: filepath.Join(e.imageDir, "vmlinuz"), Initrd: filepath.Join(e.imageDir, "initramfs.img"),
		Cmdline: virt.Cmdline(job.CmdlineModeJob, true), Disks: disks, ConsoleLog: filepath.Join(dir, "console.log")})
	require.NoError(t, err)
	xf := filepath.Join(dir, "appliance.xml")
	require.NoError(t, os.WriteFile(xf, []byte(x), 0o600))
	start := time.Now()
	virsh(t, "create", xf)
	defer exec.Command("virsh", "-c", "qemu:///system", "destroy", name).Run()
	deadline := start.Add(limit + 2*time.Minute)
	for strings.Contains(virsh(t, "list", "--name"), name) {
		if time.Now().After(deadline) {
			console, _ := os.ReadFile(filepath.Join(dir, "console.log"))
			t.Fatalf("appliance %s still running after %v; console:\n%s", name, limit, console)
		}
		time.Sleep(time.Second)
	}
	res := execResult{elapsed: time.Since(start)}
	contents, err := jobdisk.Read(disks[1].Path)
	require.NoError(t, err)
	res.log = string(contents.Log)
	res.result, err = job.ParseResult(contents.Result)
	if err != nil {
		console, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		t.Fatalf("result: %v\nlog:\n%s\nconsole:\n%s", err, res.log, console)
	}
	return res
}

// buildInAppliance compiles the in-appliance test package statically.
func buildInAppliance(t testing.TB, e *env) string {
	t.Helper()
	out := filepath.Join(e.bin, "inappliance.test")
	cmd := exec.Command("go", "test", "-c", "-tags", "inappliance", "-o", out, "./inappliance/")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go test -c: %s", b)
	return out
}

// TestInAppliance runs the in-appliance test package (real LVM: classic and
// thin snapshots, the overflow guard, leftover removal; guest layouts:
// partitions, guest LVM, XFS, btrfs, fstab assembly, mount failures; a
// guest's symlinked mount point and a mount over the tools) as
// root inside one appliance boot with blank disks, and fails with its
// output when any of its tests fails.
func TestInAppliance(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	bin := buildInAppliance(t, e)
	res := runInAppliance(t, e, bin, []string{"-test.v", "-test.timeout", "8m"}, []int{512, 512, 512, 512, 512, 512, 512, 512}, 10*time.Minute)
	t.Logf("in-appliance tests (%v):\n%s", res.elapsed.Round(time.Second), res.log)
	require.Equal(t, job.StatusOK, res.result.Done.Status, "in-appliance tests failed: %s", res.result.LastError())
	require.Contains(t, res.log, "PASS")
	require.NotContains(t, res.log, "--- SKIP", "in-appliance tests must not skip")
}
