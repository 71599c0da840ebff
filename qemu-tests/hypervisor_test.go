//go:build hypervisor

package qemutests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirtxml"

	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// The hypervisor VM: a Debian 12 host under TCG with systemd, lvm2,
// libvirtd and QEMU, set up by the README's own "Setting up a hypervisor"
// steps, in which hostctl backs up LV-backed clients with real LVM and
// boots its appliance as a nested VM (TCG inside TCG). It gets what a
// nested appliance (appliance.memory_mib, 1024) and a running client
// (384 MiB) need besides its own systemd and libvirtd, and both cores.
const (
	hvMemoryMiB = 4096
	hvVCPUs     = 2
	// hvCPU is QEMU's qemu64: SVM without nested paging, which TCG
	// emulates well enough for the VM's KVM to run the client and the
	// appliance. "max" (NPT, 5-level paging) crashed the VM's kernel at
	// the nested appliance's start (a kernel stack fault in error_entry).
	hvCPU = "qemu64"
	// hvShare is where the VM mounts what the test brings from the host:
	// the build machine's files, as the README's step 1 copies them.
	hvShare = "/root/snapshot-backup"
	// hvClient is the client VM inside: the README's commands name it.
	hvClient = "myvm"
	hvVG     = "vg0"
)

// hypervisor is a booted, set-up hypervisor VM.
type hypervisor struct {
	*fixture.HypervisorVM
	dir   string // host side: the VM's files
	share string // host side of hvShare
	// disks is what the client's LVs were made from; blank a fresh
	// install of the same layout (new UUIDs, no data).
	disks, blank fixture.BootDisks
	marker       string
	dataTree     string // the host copy of the client's /srv/data
	filesTree    string // the host copy of the lvm_host LV's files
	clientAccel  string // the client's domain type: kvm or qemu
	backedUp     bool   // myvm has an archive
}

// hvLV names the client's LVs: root is thin (in vg0/pool), data classic,
// so that the overflow guard watches data.
var hvLV = struct{ root, data, files, pool string }{"myvm-root", "myvm-data", "files", "pool"}

// newHypervisor builds (cached) and boots the hypervisor VM, makes its
// volume group and the running client myvm on LVs, and then runs the
// README's steps 0 to 2 in it, verbatim (steps 3 to 7 are the subtest
// readme-offsite). Everything it started is
// stopped by t.Cleanup.
func newHypervisor(t testing.TB, e *env) *hypervisor {
	t.Helper()
	needTools(t, "ssh", "ssh-keygen", "unsquashfs", "qemu-img")
	ctx := context.Background()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	h := &hypervisor{dir: t.TempDir()}
	h.share = filepath.Join(h.dir, "share")
	logf := func(f string, a ...any) { fmt.Printf("hypervisor VM: "+f+"\n", a...) }

	start := time.Now()
	img, err := fixture.BuildHypervisor(ctx, root, filepath.Join(filepath.Dir(e.imageDir), "hypervisor-cache"), h.dir, logf)
	require.NoError(t, err)
	logf("image ready in %s (kernel %s, userland %s)", time.Since(start).Round(time.Millisecond), img.KernelVersion, img.Root)
	h.prepareShare(t, e)

	start = time.Now()
	vm, err := fixture.StartHypervisor(ctx, img, fixture.HypervisorSpec{Dir: h.dir, MemoryMiB: hvMemoryMiB, VCPUs: hvVCPUs,
		ScratchGiB: 24, PVGiB: []int{8, 8}, Share: h.share, CPU: hvCPU})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(vm.Console); err == nil {
				t.Logf("hypervisor VM console (tail):\n%s", tail(string(b), 6000))
			}
		}
		vm.Close()
	})
	h.HypervisorVM = vm
	require.NoError(t, vm.WaitReady(ctx, 10*time.Minute))
	logf("booted to systemd's multi-user target in %s", time.Since(start).Round(time.Second))
	// A heartbeat on its console: when ssh stops answering, the console
	// says whether the kernel still runs, and under what load.
	h.run(t, `nohup sh -c 'while sleep 20; do echo "hv-alive load $(cut -d" " -f1-3 /proc/loadavg) $(grep MemAvailable /proc/meminfo | tr -s " ")" > /dev/kmsg; done' </dev/null >/dev/null 2>&1 &`)
	h.run(t, fmt.Sprintf("mkdir -p %[1]s && mount -t 9p -o trans=virtio,version=9p2000.L,ro %s %[1]s", hvShare, fixture.ShareTag))

	h.makeStorage(t)
	h.startClient(t)
	for _, step := range readmeSetup(t) {
		if step.n > 2 {
			break
		}
		start := time.Now()
		out := h.run(t, "cd "+hvShare+"\n"+step.script)
		t.Logf("README step %d:\n%s\n%s", step.n, step.script, out)
		logf("README step %d (%s) in %s", step.n, step.title, time.Since(start).Round(100*time.Millisecond))
	}
	return h
}

// prepareShare fills the directory the VM mounts at hvShare: the
// binaries and the appliance userland's cache entry from this build
// machine (README step 1), the client's kernel, initramfs and disks.
func (h *hypervisor) prepareShare(t testing.TB, e *env) {
	t.Helper()
	ctx := context.Background()
	for _, d := range []string{"bin", "profiles", "cache", "client"} {
		require.NoError(t, os.MkdirAll(filepath.Join(h.share, d), 0o755))
	}
	for _, b := range []string{"hostctl", "supervisor"} {
		linkOrCopy(t, filepath.Join(e.bin, b), filepath.Join(h.share, "bin", b))
	}
	// The source's example profiles, which README step 3 copies from.
	profiles, err := filepath.Glob(filepath.Join("..", "profiles", "*.toml"))
	require.NoError(t, err)
	require.NotEmpty(t, profiles)
	for _, p := range profiles {
		linkOrCopy(t, p, filepath.Join(h.share, "profiles", filepath.Base(p)))
	}
	// The build machine's userland cache: what build-image made for the
	// test appliance here (rootfs-<key>.sqfs and .json).
	entries, err := filepath.Glob(filepath.Join(filepath.Dir(e.imageDir), "rootfs-cache", "rootfs-*"))
	require.NoError(t, err)
	require.NotEmpty(t, entries, "no rootfs cache entry beside %s", e.imageDir)
	for _, p := range entries {
		linkOrCopy(t, p, filepath.Join(h.share, "cache", filepath.Base(p)))
	}

	vm := needBootVM(t, e)
	linkOrCopy(t, vm.Kernel, filepath.Join(h.share, "client", "vmlinuz"))
	linkOrCopy(t, vm.Initramfs, filepath.Join(h.share, "client", "bootvm.cpio"))
	h.dataTree = filepath.Join(h.dir, "data-tree")
	require.NoError(t, os.MkdirAll(h.dataTree, 0o755))
	require.NoError(t, fixture.MakeSizedTree(h.dataTree, fixture.Small))
	h.marker = "hypervisor-" + fixture.NewUUID()[:8]
	client := filepath.Join(h.share, "client")
	h.disks = fixture.BootDisks{Root: filepath.Join(client, "root.qcow2"), Data: filepath.Join(client, "data.qcow2"),
		DataTree: h.dataTree, DataMiB: 512}
	require.NoError(t, vm.MakeDisks(ctx, &h.disks, h.marker))
	h.blank = fixture.BootDisks{Root: filepath.Join(client, "blank-root.qcow2"), Data: filepath.Join(client, "blank-data.qcow2"), DataMiB: 512}
	require.NoError(t, vm.MakeDisks(ctx, &h.blank, ""))

	// The hypervisor's own LV (lvm_host): a filesystem with the Small tree.
	h.filesTree = filepath.Join(h.dir, "files-tree")
	require.NoError(t, os.MkdirAll(h.filesTree, 0o755))
	require.NoError(t, fixture.MakeSizedTree(h.filesTree, fixture.Small))
	require.NoError(t, fixture.MakeClientDisk(ctx, h.filesTree, filepath.Join(client, "files.qcow2"), "qcow2", 96))

	x, err := fixture.ClientDomain{Name: hvClient, Kernel: "/var/lib/libvirt/boot/myvm-vmlinuz",
		Initrd: "/var/lib/libvirt/boot/myvm-bootvm.cpio", Disk: "/dev/" + hvVG + "/" + hvLV.root, DiskFormat: "raw",
		ExtraDisks: []string{"/dev/" + hvVG + "/" + hvLV.data}, Agent: true, MemoryMiB: 384,
		ConsoleLog: "/var/log/libvirt/myvm-console.log", Cmdline: "root=LABEL=" + fixture.BootRootLabel}.XML()
	require.NoError(t, err)
	var dom libvirtxml.Domain
	require.NoError(t, dom.Unmarshal(x))
	for i := range dom.Devices.Disks {
		d := &dom.Devices.Disks[i]
		d.Source = &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: d.Source.File.File}}
	}
	x, err = dom.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(client, "myvm.xml"), []byte(x), 0o644))
}

// linkOrCopy hard-links src to dst (the share is read-only to the VM, so
// sharing the inode is safe), or copies it across filesystems.
func linkOrCopy(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.Link(src, dst); err == nil {
		return
	}
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	fi, err := in.Stat()
	require.NoError(t, err)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// makeStorage makes what the hypervisor had before hostctl came: the
// volume group on its two disks, a thin pool, the client's LVs with their
// filesystems, and the hypervisor's own LV vg0/files, mounted.
func (h *hypervisor) makeStorage(t testing.TB) {
	t.Helper()
	c := hvShare + "/client"
	lv := func(name string) string { return "/dev/" + hvVG + "/" + name }
	h.run(t, fmt.Sprintf(`pvcreate -q %[1]s
vgcreate -q %[2]s %[1]s
lvcreate -q --type thin-pool -L 2G -n %[3]s %[2]s
lvcreate -q --thin -V 256M -n %[4]s %[2]s/%[3]s
lvcreate -q -L 512M -n %[5]s %[2]s
lvcreate -q -L 96M -n %[6]s %[2]s
qemu-img convert -n -O raw %[7]s/root.qcow2 %[8]s
qemu-img convert -n -O raw %[7]s/data.qcow2 %[9]s
qemu-img convert -n -O raw %[7]s/files.qcow2 %[10]s
mkdir -p /srv/files && mount %[10]s /srv/files
lvs %[2]s`, strings.Join(h.PVs, " "), hvVG, hvLV.pool, hvLV.root, hvLV.data, hvLV.files, c,
		lv(hvLV.root), lv(hvLV.data), lv(hvLV.files)))
}

// startClient defines and starts the client myvm on its LVs and waits
// for its guest agent.
func (h *hypervisor) startClient(t testing.TB) {
	t.Helper()
	// KVM where it works in the VM (QEMU's TCG emulates SVM, so the
	// VM's kvm_amd may run guests), probed as hostctl probes it: the
	// kernel must reach its panic for want of a root, and halts there
	// (panic=0) until it is killed: a guest reset through the emulated
	// SVM crashed or hung the VM (virt.kvmBoots).
	out := h.run(t, fmt.Sprintf(`mkdir -p /var/lib/libvirt/boot
cp %[1]s/vmlinuz /var/lib/libvirt/boot/myvm-vmlinuz
cp %[1]s/bootvm.cpio /var/lib/libvirt/boot/myvm-bootvm.cpio
accel=qemu
timeout 90 qemu-system-x86_64 -accel kvm -m 128 -nodefaults -nographic -no-reboot -serial stdio \
  -kernel /var/lib/libvirt/boot/myvm-vmlinuz -append 'console=ttyS0 panic=0 root=/dev/sb-probe-none' >/root/kvm-probe.log 2>&1 &
probe=$!
for i in $(seq 180); do
  grep -q "Kernel panic" /root/kvm-probe.log && { accel=kvm; break; }
  kill -0 $probe 2>/dev/null || break
  sleep 0.5
done
kill $probe 2>/dev/null; wait $probe || true
sed "s/<domain type=\"qemu\">/<domain type=\"$accel\">/" %[1]s/myvm.xml > /root/myvm.xml
virsh -q define /root/myvm.xml
virsh -q start %[2]s
echo "accel $accel"`, hvShare+"/client", hvClient))
	h.clientAccel = strings.TrimSpace(out[strings.LastIndex(out, "accel ")+len("accel "):])
	h.waitAgent(t, 5*time.Minute)
}

// waitAgent waits until the client's guest agent answers.
func (h *hypervisor) waitAgent(t testing.TB, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	_, err := h.Run(context.Background(), fmt.Sprintf(`for i in $(seq %d); do
  virsh -q qemu-agent-command %s '{"execute":"guest-ping"}' >/dev/null 2>&1 && exit 0
  sleep 2
done
exit 1`, int(timeout/(2*time.Second)), hvClient))
	require.NoError(t, err, "the client's guest agent does not answer; its console:\n%s", h.clientConsole(t))
	fmt.Printf("hypervisor VM: client %s (%s) answers its agent after %s\n", hvClient, h.clientAccel, time.Since(start).Round(time.Second))
}

func (h *hypervisor) clientConsole(t testing.TB) string {
	out, _ := h.Run(context.Background(), "cat /var/log/libvirt/myvm-console.log")
	return out
}

// run runs script in the VM and fails the test when it fails.
func (h *hypervisor) run(t testing.TB, script string) string {
	t.Helper()
	out, err := h.Run(context.Background(), script)
	require.NoError(t, err)
	return out
}

// hostctl runs hostctl in the VM with args; exit code, stdout, stderr.
func (h *hypervisor) hostctl(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fixture.ShellQuote(a)
	}
	cmd := h.Command(context.Background(), "hostctl "+strings.Join(q, " "))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() != 255:
		code = ee.ExitCode()
	case err != nil:
		require.NoError(t, err, "ssh: %s", errb.String())
	}
	t.Logf("(hypervisor VM) hostctl %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// hvReport is what the tests read of `hostctl run --json`: the CLI's
// report fields, not hostctl's Go types.
type hvReport struct {
	Client           string        `json:"client"`
	Status           string        `json:"status"`
	Error            string        `json:"error"`
	Mode             string        `json:"mode"`
	Archive          string        `json:"archive"`
	Elapsed          time.Duration `json:"elapsed_ns"`
	ApplianceElapsed time.Duration `json:"appliance_ns"`
	Backend          time.Duration `json:"backend_ns"`
	ReadyIn          time.Duration `json:"ready_ns"`
	Pause            time.Duration `json:"pause_ns"`
	LogDir           string        `json:"log_dir"`
}

func hvReports(t testing.TB, out string) map[string]hvReport {
	t.Helper()
	var reps []hvReport
	require.NoError(t, json.Unmarshal([]byte(out), &reps), "run --json output: %s", out)
	m := map[string]hvReport{}
	for _, r := range reps {
		m[r.Client] = r
	}
	return m
}

var applianceAccel = regexp.MustCompile(`appliance hostctl-\S+ started \((\w+)\)`)

// printJob prints a nested job's figures; stderr is hostctl's, which
// names the appliance's accelerator (kvm: the VM's KVM on QEMU's emulated
// SVM; tcg: TCG inside TCG).
func printJob(what string, r hvReport, stderr string) {
	accel := "accelerator not logged"
	if m := applianceAccel.FindStringSubmatch(stderr); m != nil {
		accel = m[1] + " in the TCG VM"
	}
	fmt.Printf("hypervisor VM: %s (%s, nested appliance, %s): kernel start to supervisor ready %s; domain start to power-off %s; job %s, of it %s in the backend, pause window %s\n",
		what, r.Client, accel, r.ReadyIn.Round(100*time.Millisecond), r.ApplianceElapsed.Round(100*time.Millisecond), r.Elapsed.Round(100*time.Millisecond),
		r.Backend.Round(100*time.Millisecond), r.Pause.Round(time.Millisecond))
}

// leftovers lists what a hostctl run may leave in the VM: snapshot LVs,
// appliance domains (build-image's rescue domain hostctl-appliance is not one),
// ledger entries, files in the run dir, overlays and job disks in runs/.
func (h *hypervisor) leftovers(t testing.TB) []string {
	t.Helper()
	out := h.run(t, `lvs --noheadings -o lv_name,origin `+hvVG+` | awk '$1 ~ /-hostctl-/ {print "snapshot LV " $1 " of " $2}'
virsh list --all --name | awk '/^hostctl-/ && $0 != "hostctl-appliance" {print "domain " $0}'
find /var/lib/hostctl/ledger -mindepth 1 -printf 'ledger %P\n' 2>/dev/null || true
find /run/hostctl -mindepth 1 -printf 'run dir %P\n' 2>/dev/null || true
find /var/lib/hostctl/runs \( -name '*.qcow2' -o -name '*.img' \) -printf 'file %p\n' 2>/dev/null || true`)
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(out), " ", "_"))
}

// requireClientOnItsLVs checks that the client runs on its two LVs in
// its live and persistent definitions, and is not paused.
func (h *hypervisor) requireClientOnItsLVs(t testing.TB) {
	t.Helper()
	out := h.run(t, fmt.Sprintf(`virsh domstate %[1]s
virsh domblklist %[1]s | awk 'NR>2 && NF {print $1 "=" $2}'
virsh domblklist --inactive %[1]s | awk 'NR>2 && NF {print "inactive:" $1 "=" $2}'`, hvClient))
	for _, want := range []string{"running", "vda=/dev/vg0/" + hvLV.root, "vdb=/dev/vg0/" + hvLV.data,
		"inactive:vda=/dev/vg0/" + hvLV.root, "inactive:vdb=/dev/vg0/" + hvLV.data} {
		require.Contains(t, strings.Fields(out), want, "client state:\n%s", out)
	}
}

// fetchTree copies dir of the VM into a new host directory (tar over
// ssh keeps modes, times, symlinks and hard links) and returns it.
func (h *hypervisor) fetchTree(t testing.TB, dir string) string {
	t.Helper()
	dst := t.TempDir()
	cmd := h.Command(context.Background(), "tar -C "+fixture.ShellQuote(dir)+" --format=pax --numeric-owner -cf - .")
	untar := exec.Command("tar", "-C", dst, "--numeric-owner", "-xpf", "-")
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	untar.Stdin = pipe
	var errb, uerr bytes.Buffer
	cmd.Stderr, untar.Stderr = &errb, &uerr
	require.NoError(t, untar.Start())
	require.NoError(t, cmd.Run(), "tar in the VM: %s", errb.String())
	require.NoError(t, untar.Wait(), "tar on the host: %s", uerr.String())
	return dst
}

// readmeStep is one numbered step of the README's "Setting up a
// hypervisor" block: its title (the comment) and its commands.
type readmeStep struct {
	n      int
	title  string
	script string
}

var stepHeading = regexp.MustCompile(`^# (\d+)\. (.*)$`)

// readmeSetup reads the steps of the first sh block of the README's
// "Setting up a hypervisor" section: what the hypervisor VM runs.
func readmeSetup(t testing.TB) []readmeStep {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	defer f.Close()
	var steps []readmeStep
	section, block := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			if block {
				break
			}
			section = strings.HasPrefix(line, "## Setting up a hypervisor")
		case section && !block && line == "```sh":
			block = true
			continue
		case block && line == "```":
			section, block = false, false
		}
		if !block {
			continue
		}
		if m := stepHeading.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			steps = append(steps, readmeStep{n: n, title: m[2]})
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "" || len(steps) == 0 {
			continue
		}
		steps[len(steps)-1].script += line + "\n"
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, steps, "README.md: no numbered steps in the sh block of \"Setting up a hypervisor\"")
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].n < steps[j].n })
	return steps
}
