package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

var bootVM fixtureOnce[*fixture.BootVM]

// needBootVM builds (once) the bootable client's initramfs and init; its
// userland is the agent VM's (cached by content hash).
func needBootVM(t testing.TB, e *env) *fixture.BootVM {
	t.Helper()
	return bootVM.get(t, buildVM("bootvm", "boot VM initramfs", func(ctx context.Context, root string, logf func(string, ...any)) (*fixture.BootVM, error) {
		return fixture.BuildBootVM(ctx, root, filepath.Join(filepath.Dir(e.imageDir), "agentvm-cache"), e.bin, logf)
	}))
}

// TestRecoverInPlace: a client that boots from its own disks (root by
// label, /srv/data by UUID from its fstab) is backed up, lost, and
// reinstalled blank (new filesystems, new UUIDs, no data); `hostctl
// recover CLIENT --yes` brings it back: hooks in order, the restored system
// boots with its fstab finding both filesystems, and shows the marker
// from the restored data. A restore of a missing archive afterwards fails
// before any disk is touched and leaves the client off and detached.
func TestRecoverInPlace(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	vm := needBootVM(t, e)
	ctx := context.Background()
	dir := t.TempDir()
	c := &client{name: "recover", domain: testDomain("recover"), dir: dir, format: "qcow2",
		stateDir: filepath.Join(dir, "state"), pass: "correct horse battery staple"}
	c.repo = filepath.Join(dir, "backup", c.name)
	disks := &fixture.BootDisks{Root: filepath.Join(dir, "root.qcow2"), Data: filepath.Join(dir, "data.qcow2")}
	marker := "restored-" + fixture.NewUUID()[:8]
	require.NoError(t, vm.MakeDisks(ctx, disks, marker))
	orig := *disks
	console := filepath.Join(dir, "client-console.log")
	x, err := fixture.ClientDomain{Name: c.domain, Kernel: vm.Kernel, Initrd: vm.Initramfs, Disk: disks.Root,
		DiskFormat: "qcow2", ConsoleLog: console, ExtraDisks: []string{disks.Data}, Agent: true, MemoryMiB: 384,
		Cmdline: "root=LABEL=" + fixture.BootRootLabel}.XML()
	require.NoError(t, err)
	xf := filepath.Join(dir, "client.xml")
	require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
	virsh(t, "define", xf)
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "destroy", c.domain).Run()
		exec.Command("virsh", "-c", "qemu:///system", "undefine", c.domain).Run()
	})
	c.config, err = fixture.Config{Accel: e.accel, StateDir: c.stateDir, ImageDir: e.imageDir, TargetRoot: filepath.Join(dir, "backup"),
		Client: c.name, Domain: c.domain, Passphrase: c.pass}.Write(filepath.Join(dir, "etc"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc", "clients", c.name+".toml"), []byte(fmt.Sprintf(`domain = %q

[backup]
mount = "fstab"
source = ["/"]

[hooks]
time_limit = "2m"
pre_recovery = 'echo "HOOK pre_recovery $SB_CLIENT $(cat /srv/data/marker 2>/dev/null || echo blank)" > /dev/console'
end_recovery = 'test -c /dev/null && test -r /proc/self/status && test -d /sys/block && echo "END_RECOVERY $SB_CLIENT $(cat /etc/hostname)" > /root/end-recovery'
post_recovery = 'echo "HOOK post_recovery $SB_ARCHIVE $(cat /root/end-recovery)" > /dev/console'
`, c.domain)), 0o600))

	c.startAgent(t)
	requireConsole(t, console, 0, "bootvm: mounted UUID="+orig.DataUUID+" on /srv/data", "bootvm: MARKER "+marker)
	code, _, _ := hostctl(t, ctx, "run", "-c", c.config)
	require.Equal(t, 0, code)
	require.Len(t, c.archives(t), 1)

	// The VM is lost; a fresh install takes its place: same layout, new
	// filesystems (other UUIDs), no data.
	virsh(t, "destroy", c.domain)
	require.NoError(t, vm.MakeDisks(ctx, disks, ""))
	require.NotEqual(t, orig.DataUUID, disks.DataUUID)
	off := consoleSize(t, console)
	c.startAgent(t)
	requireConsole(t, console, off, "bootvm: mounted UUID="+disks.DataUUID+" on /srv/data", "bootvm: MARKER (none)")

	t.Run("dry-run", func(t *testing.T) {
		runs, err := os.ReadDir(filepath.Join(c.stateDir, "runs"))
		require.NoError(t, err)
		code, out, _ := hostctl(t, ctx, "recover", "--dry-run", "-c", c.config, c.name)
		require.Equal(t, 0, code)
		for _, want := range []string{
			fmt.Sprintf("in-place recovery of client recover (domain %s, running)", c.domain),
			fmt.Sprintf("disks: vda=%s (qcow2), vdb=%s (qcow2)", disks.Root, disks.Data),
			"archive the latest",
			`run pre_recovery in the client: "echo \"HOOK pre_recovery`,
			`the backup's VM record says they were (disk, partition or LV, and type; a backup without a record: as backup.mount = "fstab" says), stopping before any change if one is missing; a blank disk (nothing on it) gets the recorded partition table, guest LVM, filesystems and swap; empty the existing filesystems`,
			`run end_recovery chrooted into the restored tree: "test -c /dev/null`,
			// The backup's record, read through an appliance.
			"VM record of backup " + c.archives(t)[0] + ":",
			"  disk vdb: ",
			"  filesystem /srv/data (ext4 on vdb, LABEL=" + fixture.BootDataLabel + ", UUID=" + orig.DataUUID + ")",
			"dry run: nothing was changed",
		} {
			require.Contains(t, out, want)
		}
		require.True(t, c.running(t))
		require.Empty(t, appliances(t, c.stateDir, false))
		after, err := os.ReadDir(filepath.Join(c.stateDir, "runs"))
		require.NoError(t, err)
		require.Len(t, after, len(runs)+1, "the record read's logs, and nothing else")
		jobs, err := os.ReadDir(filepath.Join(c.stateDir, "runs", after[len(after)-1].Name()))
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.Equal(t, "record-"+c.name, jobs[0].Name())
		c.requireNoLeftovers(t)
	})

	// recover empties the VM's filesystems: without a terminal to ask on
	// and without --yes it refuses and changes nothing.
	t.Run("refuses-without-yes", func(t *testing.T) {
		runs, err := os.ReadDir(filepath.Join(c.stateDir, "runs"))
		require.NoError(t, err)
		code, _, errOut := hostctl(t, ctx, "recover", "-c", c.config, c.name)
		require.Equal(t, 2, code)
		require.Contains(t, errOut, "cannot ask (stdin is not a terminal): pass --yes")
		require.Contains(t, errOut, "nothing was changed")
		require.True(t, c.running(t), "the blank VM keeps running")
		require.Empty(t, appliances(t, c.stateDir, false))
		after, err := os.ReadDir(filepath.Join(c.stateDir, "runs"))
		require.NoError(t, err)
		require.Len(t, after, len(runs), "no job ran")
		code, _, errOut = hostctl(t, ctx, "restore", "-c", c.config, c.name)
		require.Equal(t, 2, code, "restore without a destination is no recovery")
		require.Contains(t, errOut, "use: hostctl recover "+c.name)
		require.True(t, c.running(t))
	})

	t.Run("recover", func(t *testing.T) {
		off := consoleSize(t, console)
		start := time.Now()
		code, out, errOut := hostctl(t, ctx, "recover", "--yes", "--shutdown-timeout", "90s", "--agent-timeout", "3m", "-c", c.config, c.name)
		require.Equal(t, 0, code)
		t.Logf("in-place recovery took %s", time.Since(start).Round(time.Second))
		require.Contains(t, out, "recovered recover from archive recover-")
		require.NotContains(t, errOut, "forcing it off", "the agent shut the blank VM down gracefully")
		requireOrder(t, errOut, "recover: hook pre_recovery: ok", "recover: shut down the client…",
			"recover: restore in the appliance…", "recover: empty client filesystems done",
			"recover: set filesystem UUIDs and labels done", "recover: hook end_recovery: ok",
			"recover: start the client…", "recover: hook post_recovery: ok")
		// The restored system booted: its root is the filesystem its fstab
		// names by the original UUID, /srv/data was found by its original
		// UUID, the marker is the backed-up one; the hooks ran in order.
		requireConsole(t, console, off,
			"HOOK pre_recovery recover blank",
			"bootvm: root matches fstab UUID="+orig.RootUUID,
			"bootvm: mounted UUID="+orig.DataUUID+" on /srv/data",
			"bootvm: MARKER "+marker,
			"HOOK post_recovery recover-",
			"END_RECOVERY recover recover-client")
		c.requireNoLeftovers(t)
		c.requireDisks(t, disks.Root, disks.Data)
	})

	t.Run("missing-archive", func(t *testing.T) {
		code, _, errOut := hostctl(t, ctx, "recover", "--yes", "--archive", "nope", "--shutdown-timeout", "90s", "-c", c.config, c.name)
		require.Equal(t, 1, code)
		for _, want := range []string{
			`step "restore in the appliance" failed`,
			`archive "nope" is not in the repository`,
			"The client is shut off and its disks are detached (no appliance is left)",
			"rerun `hostctl recover recover` (with --mkfs when",
			"`hostctl rescue recover`",
		} {
			require.Contains(t, errOut, want)
		}
		require.False(t, c.running(t), "the client stays off")
		c.requireNoLeftovers(t)
		c.requireDisks(t, disks.Root, disks.Data)
	})

	// The client is off now (as after a failed step): --mkfs makes its
	// filesystems anew and restores again, the backup chosen by --time;
	// no pre_recovery, no shutdown.
	t.Run("mkfs-shut-off", func(t *testing.T) {
		off := consoleSize(t, console)
		code, out, errOut := hostctl(t, ctx, "recover", "--yes", "--mkfs", "--time", time.Now().UTC().Format(time.RFC3339),
			"--agent-timeout", "3m", "-c", c.config, c.name)
		require.Equal(t, 0, code)
		require.Contains(t, out, "recovered recover from archive "+c.archives(t)[0])
		require.Contains(t, errOut, "is shut off: no pre_recovery, no shutdown")
		requireOrder(t, errOut, "recover: create filesystems done", "recover: restore done", "recover: hook post_recovery: ok")
		require.NotContains(t, errOut, "empty client filesystems")
		requireConsole(t, console, off,
			"bootvm: root matches fstab UUID="+orig.RootUUID,
			"bootvm: mounted UUID="+orig.DataUUID+" on /srv/data",
			"bootvm: MARKER "+marker,
			"HOOK post_recovery recover-")
		require.NotContains(t, readFrom(t, console, off), "HOOK pre_recovery")
		c.requireNoLeftovers(t)
		c.requireDisks(t, disks.Root, disks.Data)
	})

	// A backup that holds no file (what a backup of a missing source
	// leaves) is refused in the appliance before a filesystem is emptied.
	t.Run("empty-archive", func(t *testing.T) {
		empty := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(empty, "etc"), 0o755))
		borg(t, c.pass, empty, "create", c.repo+"::recover-empty", ".")
		virsh(t, "shutdown", "--mode", "agent", c.domain)
		require.Eventually(t, func() bool { return !c.running(t) }, 3*time.Minute, time.Second, "the client shuts down")
		require.Equal(t, marker+"\n", diskFile(t, disks.Data, "/marker"))
		code, _, errOut := hostctl(t, ctx, "recover", "--yes", "--archive", "recover-empty", "-c", c.config, c.name)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, `step "restore in the appliance" failed`)
		require.Contains(t, errOut, "backup recover-empty holds no file")
		require.Contains(t, errOut, "the appliance stopped before it changed a filesystem")
		require.Equal(t, marker+"\n", diskFile(t, disks.Data, "/marker"), "the client's data is still there")
		require.Equal(t, "recover-client\n", diskFile(t, disks.Root, "/etc/hostname"), "and its system")
		require.False(t, c.running(t))
		c.requireNoLeftovers(t)
		c.requireDisks(t, disks.Root, disks.Data)
	})

	// The backup's VM record, not the blank VM's fstab, says where each
	// filesystem goes. A data disk without its filesystem stops the
	// recovery before any disk is touched, naming the mount point (before,
	// the files of a mount point the blank fstab could not resolve went
	// onto the root filesystem); --mkfs makes the recorded filesystem
	// there, and the data lands on its own disk.
	t.Run("recorded-layout", func(t *testing.T) {
		code, out, errOut := hostctl(t, ctx, "list", "--json", "-c", c.config, c.name)
		require.Equal(t, 0, code, errOut)
		var listed []struct {
			Archive string `json:"archive"`
			VM      bool   `json:"vm_record"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
		first := c.archives(t)[0]
		vm := map[string]bool{}
		for _, l := range listed {
			vm[l.Archive] = l.VM
		}
		require.Equal(t, map[string]bool{first: true, "recover-empty": false}, vm, "hostctl's backups carry their record; stock borg's has none")

		// The record, read with stock borg on the host: the layout and
		// the domain's definition.
		var rec vmrecord.Record
		require.NoError(t, json.Unmarshal([]byte(borg(t, c.pass, dir, "extract", "--stdout", c.repo+"::vm+"+first, vmrecord.File)), &rec))
		require.Equal(t, []vmrecord.Filesystem{
			{Where: "/", Disk: "vda", Type: "ext4", UUID: orig.RootUUID, Label: fixture.BootRootLabel, Size: 256 << 20, Options: "defaults"},
			{Where: "/srv/data", Disk: "vdb", Type: "ext4", UUID: orig.DataUUID, Label: fixture.BootDataLabel, Size: 32 << 20, Options: "defaults"},
		}, rec.Filesystems)
		require.Equal(t, []vmrecord.Disk{{Dev: "vda", Size: 256 << 20}, {Dev: "vdb", Size: 32 << 20}}, rec.Disks)
		require.Contains(t, rec.Domain, "<name>"+c.domain+"</name>")
		require.Contains(t, rec.Domain, disks.Data, "the definition names the VM's own disks, not a run's overlays")
		require.NotContains(t, rec.Domain, ".appliance.qcow2")
		require.Equal(t, rec.Domain, borg(t, c.pass, dir, "extract", "--stdout", c.repo+"::vm+"+first, vmrecord.DomainFile))

		info, err := exec.Command("qemu-img", "info", "--output", "json", "-U", disks.Data).Output()
		require.NoError(t, err)
		var img struct {
			Size int64 `json:"virtual-size"`
		}
		require.NoError(t, json.Unmarshal(info, &img))
		// replaceData puts a new data disk of the same size in place:
		// empty, or holding a swap area (what an installer may leave).
		replaceData := func(swap bool) {
			raw := filepath.Join(t.TempDir(), "data.raw")
			require.NoError(t, os.WriteFile(raw, nil, 0o600))
			require.NoError(t, os.Truncate(raw, img.Size))
			if swap {
				out, err := exec.Command("mkswap", raw).CombinedOutput()
				require.NoError(t, err, "%s", out)
			}
			out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", raw, disks.Data).CombinedOutput()
			require.NoError(t, err, "%s", out)
		}

		// The data disk holds a swap area, not the recorded ext4: stop,
		// naming the mount point, before any disk is touched.
		replaceData(true)
		code, _, errOut = hostctl(t, ctx, "recover", "--yes", "--archive", first, "-c", c.config, c.name)
		require.Equal(t, 1, code, errOut)
		for _, want := range []string{
			`step "restore in the appliance" failed`,
			"the backup's filesystems have no counterpart in this VM: /srv/data (ext4 on vdb, LABEL=" + fixture.BootDataLabel + ", UUID=" + orig.DataUUID + "): vdb holds swap (--mkfs creates ext4 on it)",
			"the appliance stopped before it changed a filesystem",
		} {
			require.Contains(t, errOut, want)
		}
		require.Equal(t, "recover-client\n", diskFile(t, disks.Root, "/etc/hostname"), "the root filesystem is untouched")
		logPath := regexp.MustCompile(`appliance log: (\S+/job\.log)`).FindStringSubmatch(errOut)
		require.NotNil(t, logPath, errOut)
		jobLog, err := os.ReadFile(logPath[1])
		require.NoError(t, err)
		require.Contains(t, string(jobLog), "backup "+first+": 2 disk(s), 2 filesystem(s): / ext4 on vda, /srv/data ext4 on vdb")
		require.False(t, c.running(t))

		// --mkfs: the recorded filesystem is made there, and the data
		// lands on its own disk.
		off := consoleSize(t, console)
		code, _, errOut = hostctl(t, ctx, "recover", "--yes", "--mkfs", "--archive", first, "--agent-timeout", "3m", "-c", c.config, c.name)
		require.Equal(t, 0, code, errOut)
		requireConsole(t, console, off,
			"bootvm: root matches fstab UUID="+orig.RootUUID,
			"bootvm: mounted UUID="+orig.DataUUID+" on /srv/data",
			"bootvm: MARKER "+marker)
		require.Equal(t, marker+"\n", diskFile(t, disks.Data, "/marker"), "the data is on its own disk")

		// A blank data disk (a new one) needs no --mkfs: it is laid out
		// as the record says.
		virsh(t, "destroy", c.domain)
		replaceData(false)
		off = consoleSize(t, console)
		code, _, errOut = hostctl(t, ctx, "recover", "--yes", "--archive", first, "--agent-timeout", "3m", "-c", c.config, c.name)
		require.Equal(t, 0, code, errOut)
		requireOrder(t, errOut, c.name+": lay out blank disks done", c.name+": create filesystems done", c.name+": empty client filesystems done")
		requireConsole(t, console, off,
			"bootvm: mounted UUID="+orig.DataUUID+" on /srv/data",
			"bootvm: MARKER "+marker)
		require.Equal(t, marker+"\n", diskFile(t, disks.Data, "/marker"))
		c.requireNoLeftovers(t)
		c.requireDisks(t, disks.Root, disks.Data)
	})
}

// diskFile reads a file of the ext4 filesystem on a (whole-disk) qcow2
// image, on the host, without mounting it.
func diskFile(t testing.TB, img, path string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	out, err := exec.Command("qemu-img", "convert", "-U", "-O", "raw", img, raw).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("debugfs", "-R", "cat "+path, raw).Output()
	require.NoError(t, err, "debugfs cat %s", path)
	return string(out)
}

func readFrom(t testing.TB, path string, off int64) string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b[off:])
}

// consoleSize is the console log's current length: what a later check skips.
func consoleSize(t testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return fi.Size()
}

// requireConsole waits (bounded) until the console log past off holds
// every line start in wants, in this order.
func requireConsole(t testing.TB, path string, off int64, wants ...string) {
	t.Helper()
	var text string
	for deadline := time.Now().Add(time.Minute); ; {
		b, _ := os.ReadFile(path)
		if int64(len(b)) >= off {
			text = strings.ReplaceAll(string(b[off:]), "\r", "")
		}
		all := true
		for _, w := range wants {
			all = all && strings.Contains(text, w)
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	requireOrder(t, text, wants...)
}

// requireOrder checks that each of wants occurs in text after the one before.
func requireOrder(t testing.TB, text string, wants ...string) {
	t.Helper()
	rest := text
	for _, w := range wants {
		i := strings.Index(rest, w)
		require.GreaterOrEqual(t, i, 0, "%q missing (or out of order) in:\n%s", w, text)
		rest = rest[i+len(w):]
	}
}
