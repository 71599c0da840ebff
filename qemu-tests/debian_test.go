package qemutests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

var debianGuest fixtureOnce[*fixture.DebianGuest]

// needDebianGuest builds (once; its userland cached by content hash) the
// Debian 12 guest.
func needDebianGuest(t testing.TB, e *env) *fixture.DebianGuest {
	t.Helper()
	needTools(t, "grub-mkimage", "sfdisk", "mkfs.ext4", "depmod")
	return debianGuest.get(t, buildVM("debguest", "Debian guest userland", func(ctx context.Context, root string, logf func(string, ...any)) (*fixture.DebianGuest, error) {
		return fixture.BuildDebianGuest(ctx, root, filepath.Join(filepath.Dir(e.imageDir), "debguest-cache"), logf)
	}))
}

// TestDebianGuest backs up and recovers a real distribution guest: Debian
// 12 booted by GRUB from its own disk, systemd, Debian's
// qemu-guest-agent (started by udev), an fstab naming / by UUID and
// /srv/data by LABEL on a second disk, as the installer writes them.
//   - backup: hooks run through Debian's agent, the filesystems are
//     frozen around the snapshot (pause window and freeze in the
//     report), the archive has the guest's files;
//   - recover: the VM is reinstalled blank (new filesystems and UUIDs, no
//     data); `hostctl recover --yes` restores in place and the restored
//     system boots from its disk to multi-user.target, its agent answers,
//     its filesystems are mounted as its fstab names them (plain: by
//     their original UUID and LABEL; lvm: / and /var by LV, /boot and
//     /srv/data by their original UUIDs), and /srv/data holds what was
//     backed up.
func TestDebianGuest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		layout fixture.DebianLayout
	}{{"plain", fixture.DebianPlain}, {"lvm", fixture.DebianLVM}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testDebianGuest(t, tc.name, tc.layout)
		})
	}
}

func testDebianGuest(t *testing.T, name string, layout fixture.DebianLayout) {
	e := needEnv(t)
	g := needDebianGuest(t, e)
	ctx := context.Background()
	dir := t.TempDir()
	c := &client{name: "debian-" + name, domain: testDomain("debian-" + name), dir: dir, format: "qcow2",
		stateDir: filepath.Join(dir, "state"), pass: "correct horse battery staple"}
	c.repo = filepath.Join(dir, "backup", c.name)
	tree := filepath.Join(dir, "data-tree")
	require.NoError(t, os.MkdirAll(tree, 0o755))
	require.NoError(t, fixture.MakeSizedTree(tree, fixture.Small))
	disks := &fixture.DebianDisks{Layout: layout, Root: filepath.Join(dir, "root.qcow2"), Data: filepath.Join(dir, "data.qcow2"), DataTree: tree}
	marker := "restored-" + fixture.NewUUID()[:8]
	start := time.Now()
	require.NoError(t, g.MakeDisks(ctx, disks, marker))
	fmt.Printf("Debian guest (%s): disks made in %s (kernel %s)\n", name, time.Since(start).Round(100*time.Millisecond), g.KernelVersion)
	orig := *disks
	console := filepath.Join(dir, "client-console.log")
	x, err := fixture.ClientDomain{Name: c.domain, Disk: disks.Root, DiskFormat: "qcow2", ConsoleLog: console,
		ExtraDisks: []string{disks.Data}, Agent: true, MemoryMiB: 512}.XML()
	require.NoError(t, err)
	xf := filepath.Join(dir, "client.xml")
	require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
	virsh(t, "define", xf)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(console); err == nil {
				t.Logf("Debian guest console (tail):\n%s", tail(string(b), 4000))
			}
		}
		exec.Command("virsh", "-c", "qemu:///system", "destroy", c.domain).Run()
		exec.Command("virsh", "-c", "qemu:///system", "undefine", c.domain).Run()
	})
	c.config, err = fixture.Config{Accel: e.accel, StateDir: c.stateDir, ImageDir: e.imageDir, TargetRoot: filepath.Join(dir, "backup"),
		Client: c.name, Domain: c.domain, Passphrase: c.pass}.Write(filepath.Join(dir, "etc"))
	require.NoError(t, err)
	rec := `echo $SB_HOOK $SB_OUTCOME >> /run/sb-hooks.log`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc", "clients", c.name+".toml"), []byte(fmt.Sprintf(`domain = %q

[backup]
mount = "fstab"
source = ["/"]

[hooks]
time_limit = "2m"
freeze = true
pre_snapshot = %q
on_snapshot = %q
post_snapshot = %q
end_recovery = 'echo "END_RECOVERY $(cat /etc/hostname)" > /root/end-recovery'
`, c.domain, rec+"; systemctl is-active multi-user.target > /var/tmp/pre-marker", rec, rec)), 0o600))

	boot := func(what string) {
		t.Helper()
		start := time.Now()
		c.startAgent(t)
		d := time.Since(start)
		// Booted as Debian boots: systemd reached multi-user.target.
		st := debianSystemState(t, c)
		fmt.Printf("Debian guest (%s): %s: agent answers %s after the domain started; systemd: %s\n", name, what, d.Round(100*time.Millisecond), st)
	}
	boot("first boot")
	require.Equal(t, "active", strings.TrimSpace(c.guest(t, "systemctl is-active multi-user.target qemu-guest-agent | sort -u").Stdout))
	require.Equal(t, marker, strings.TrimSpace(c.guest(t, "cat /srv/data/marker").Stdout))
	requireGuestMounts(t, c, orig)

	code, out, _ := hostctl(t, ctx, "run", "--json", "-c", c.config)
	require.Equal(t, 0, code)
	r := parseReports(t, out)[0]
	require.Equal(t, "ok", r.Status, r.Error)
	var names []string
	for _, h := range r.Hooks {
		names = append(names, h.Name)
		require.True(t, h.OK(), "%s: %+v", h.Name, h)
	}
	require.Equal(t, []string{hooks.PreSnapshot, hooks.OnSnapshot, hooks.PostSnapshot}, names)
	require.Positive(t, r.Frozen, "Debian's agent froze and thawed the filesystems")
	require.Less(t, r.Frozen, r.Pause+time.Millisecond)
	require.Equal(t, `{"return":"thawed"}`, strings.TrimSpace(virsh(t, "qemu-agent-command", c.domain, `{"execute":"guest-fsfreeze-status"}`)))
	require.Equal(t, "pre_snapshot\non_snapshot\npost_snapshot ok\n", c.guest(t, "cat /run/sb-hooks.log").Stdout)
	fmt.Printf("Debian guest (%s): backup ok in %s: pause window %s, of it frozen %s; appliance ready %s, backend %s\n", name,
		r.Elapsed.Round(100*time.Millisecond), r.Pause.Round(time.Millisecond), r.Frozen.Round(time.Millisecond),
		r.ReadyIn.Round(100*time.Millisecond), r.Backend.Round(100*time.Millisecond))
	arch := c.archives(t)
	require.Len(t, arch, 1)
	list := borg(t, c.pass, c.dir, "list", "--format", "{path}{NL}", c.repo+"::"+arch[0])
	for _, p := range []string{"etc/fstab", "boot/grub/grub.cfg", "boot/vmlinuz-" + g.KernelVersion, "srv/data/marker", "var/tmp/pre-marker"} {
		require.Contains(t, list, p+"\n")
	}
	c.requireNoLeftovers(t)

	// The VM is lost; a blank install of the same layout takes its place.
	virsh(t, "destroy", c.domain)
	disks.DataTree = ""
	require.NoError(t, g.MakeDisks(ctx, disks, ""))
	require.NotEqual(t, orig.RootUUID, disks.RootUUID)
	boot("blank reinstall")
	require.Equal(t, "absent", strings.TrimSpace(c.guest(t, "cat /srv/data/marker 2>/dev/null || echo absent").Stdout))

	start = time.Now()
	code, out, errOut := hostctl(t, ctx, "recover", "--yes", "--shutdown-timeout", "3m", "--agent-timeout", "6m", "-c", c.config, c.name)
	require.Equal(t, 0, code)
	fmt.Printf("Debian guest (%s): in-place recovery (shutdown through the agent, restore, start) in %s\n", name, time.Since(start).Round(time.Second))
	require.Contains(t, out, "recovered "+c.name+" from archive "+arch[0])
	require.NotContains(t, errOut, "forcing it off", "Debian's agent shut the blank VM down gracefully")
	requireOrder(t, errOut, c.name+": shut down the client…", c.name+": restore in the appliance…",
		c.name+": set filesystem UUIDs and labels done", c.name+": hook end_recovery: ok", c.name+": start the client…")
	start = time.Now()
	c.waitAgent(t) // hostctl waits for it only to run post_recovery
	st := debianSystemState(t, c)
	fmt.Printf("Debian guest (%s): the recovered guest booted: agent answers %s after hostctl returned; systemd: %s\n", name, time.Since(start).Round(100*time.Millisecond), st)
	require.Equal(t, "active", strings.TrimSpace(c.guest(t, "systemctl is-active multi-user.target qemu-guest-agent | sort -u").Stdout))
	require.Equal(t, marker, strings.TrimSpace(c.guest(t, "cat /srv/data/marker").Stdout))
	require.Equal(t, "END_RECOVERY "+fixture.DebianHostname, strings.TrimSpace(c.guest(t, "cat /root/end-recovery").Stdout))
	requireGuestMounts(t, c, orig)
	requireDataRestored(t, c, tree)
	c.requireNoLeftovers(t)
	c.requireDisks(t, disks.Root, disks.Data)
	if layout == fixture.DebianLVM {
		testDebianRecreate(t, c, orig, tree, marker, arch[0])
	}
}

// testDebianRecreate loses the whole VM, its definition and its disks,
// and makes it again from nothing: hostctl recover --disk-dir creates the
// disks at the recorded sizes, defines the domain from the backup's VM
// record, lays the disks out (GPT, guest LVM, filesystems with their
// UUIDs), restores, and reinstalls GRUB, so the guest boots from its own
// disk as before.
func testDebianRecreate(t *testing.T, c *client, orig fixture.DebianDisks, tree, marker, archive string) {
	ctx := context.Background()
	uuid := strings.TrimSpace(virsh(t, "domuuid", c.domain))
	virsh(t, "destroy", c.domain)
	virsh(t, "undefine", c.domain)
	require.NoError(t, os.Remove(orig.Root))
	require.NoError(t, os.Remove(orig.Data))
	diskDir := filepath.Join(c.dir, "recreated")

	code, out, errOut := hostctl(t, ctx, "recover", "--dry-run", "--disk-dir", diskDir, "-c", c.config, c.name)
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"domain " + c.domain + ", to be made", "the domain does not exist: it is made from the VM record of backup " + archive,
		"new disk vda: " + filepath.Join(diskDir, c.domain+"-vda.qcow2"), "new disk vdb: " + filepath.Join(diskDir, c.domain+"-vdb.qcow2"),
		"definition: guest agent channel", "left out: serial console's file, socket or log", "dry run: nothing was changed"} {
		require.Contains(t, out, want)
	}
	_, err := os.Stat(diskDir)
	require.ErrorIs(t, err, os.ErrNotExist, "a dry run makes no disk")
	require.Equal(t, 1, exec.Command("virsh", "-c", "qemu:///system", "dominfo", c.domain).Run().(*exec.ExitError).ExitCode(), "nor a domain")

	start := time.Now()
	code, out, errOut = hostctl(t, ctx, "recover", "--yes", "--disk-dir", diskDir, "--agent-timeout", "6m", "-c", c.config, c.name)
	require.Equal(t, 0, code, errOut)
	fmt.Printf("Debian guest (lvm): recovery from nothing (disks made, domain defined, laid out, restored, GRUB reinstalled, started) in %s\n", time.Since(start).Round(time.Second))
	require.Contains(t, out, "recovered "+c.name+" from archive "+archive)
	requireOrder(t, errOut, c.name+": make the domain…", c.name+": lay out blank disks done", c.name+": restore done",
		c.name+": reinstall the boot loader done", c.name+": start the client…")
	require.NotContains(t, errOut, "warning: boot loader")
	require.Equal(t, uuid, strings.TrimSpace(virsh(t, "domuuid", c.domain)), "the recorded domain UUID")
	c.requireDisks(t, filepath.Join(diskDir, c.domain+"-vda.qcow2"), filepath.Join(diskDir, c.domain+"-vdb.qcow2"))
	x := virsh(t, "dumpxml", "--inactive", c.domain)
	require.NotContains(t, x, "<kernel>", "it boots from its disk")

	start = time.Now()
	c.waitAgent(t)
	st := debianSystemState(t, c)
	fmt.Printf("Debian guest (lvm): the VM made from nothing booted through GRUB: agent answers %s after hostctl returned; systemd: %s\n", time.Since(start).Round(100*time.Millisecond), st)
	require.Equal(t, "active", strings.TrimSpace(c.guest(t, "systemctl is-active multi-user.target qemu-guest-agent | sort -u").Stdout))
	require.Equal(t, marker, strings.TrimSpace(c.guest(t, "cat /srv/data/marker").Stdout))
	requireGuestMounts(t, c, orig)
	requireDataRestored(t, c, tree)
	c.requireNoLeftovers(t)
}

// requireDataRestored: the guest's /srv/data holds tree (but the marker):
// each file's content, and each entry's type, mode, owner, group,
// modification time and link target.
func requireDataRestored(t testing.TB, c *client, tree string) {
	t.Helper()
	for _, script := range []string{
		"find . -type f ! -name marker -exec md5sum {} + | sort -k2",
		`find . -mindepth 1 ! -name marker ! -path ./lost+found -printf '%p %y %m %U %G %Ts %l\n' | sort`,
	} {
		got := c.guest(t, "cd /srv/data && "+script).Stdout
		want, err := exec.Command("sh", "-c", "cd "+tree+" && "+script).Output()
		require.NoError(t, err)
		require.NotEmpty(t, want)
		require.Equal(t, string(want), got, "the restored /srv/data: %s", script)
	}
}

// debianSystemState waits (bounded) for systemd in the guest to finish
// booting and returns its state and the failed units, if any.
func debianSystemState(t testing.TB, c *client) string {
	t.Helper()
	r := c.guest(t, "timeout 50 systemctl is-system-running --wait; systemctl --failed --no-legend --plain | cut -d' ' -f1 | tr '\\n' ' '")
	return strings.Join(strings.Fields(r.Stdout), " ")
}

// spaces are findmnt's column padding.
var spaces = regexp.MustCompile(`[ \t]+`)

// requireGuestMounts: the guest's filesystems are mounted where its fstab
// says, found as it names them (by d's UUIDs, its label, its LVs).
func requireGuestMounts(t testing.TB, c *client, d fixture.DebianDisks) {
	t.Helper()
	script, want := "findmnt -n -o UUID /; findmnt -n -o LABEL /srv/data", d.RootUUID+"\n"+fixture.DebianDataLabel
	if d.Layout == fixture.DebianLVM {
		// / and /var by their LVs: their filesystems' UUIDs are named
		// nowhere, and a recovery keeps the blank install's.
		script = "findmnt -n -o SOURCE /; findmnt -n -o UUID /boot; findmnt -n -o SOURCE /var; findmnt -n -o UUID,FSTYPE /srv/data"
		want = fmt.Sprintf("/dev/mapper/deb-root\n%s\n/dev/mapper/deb-var\n%s xfs", d.BootUUID, d.DataUUID)
	}
	out := c.guest(t, script).Stdout
	require.Equal(t, want, spaces.ReplaceAllString(strings.TrimSpace(out), " "), "the guest's mounts")
}
