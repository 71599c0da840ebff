//go:build hypervisor

package qemutests

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hvBenchRuns is how many backups of the two-LV client the pause window
// is the median of (each one a nested appliance job).
const hvBenchRuns = 3

// BenchmarkHypervisor measures in the hypervisor VM (TCG), with the
// non-nested figures beside them:
//   - the nested appliance (the VM's KVM on QEMU's emulated SVM where that
//     works, else TCG inside TCG; the figure says): kernel start to supervisor
//     ready and domain start to power-off of a backup job, next to the
//     same figures of a job on this host;
//   - LVM snapshot create and remove (classic 256 MiB and thin, median of
//     5 each), next to an external disk-only snapshot of a running file
//     disk and its blockcommit in the same VM (there is no
//     device-mapper on this host);
//   - the pause window of the client suspended for the snapshots of its
//     two LVs (median of hvBenchRuns backups), next to a two-file-disk
//     client's pause (one atomic external snapshot, no suspend) on this
//     host.
//
// Run with -benchtime 1x.
func BenchmarkHypervisor(b *testing.B) {
	e := needEnv(b)
	for i := 0; i < b.N; i++ {
		h := newHypervisor(b, e)
		h.configure(b)

		var reps []hvReport
		accel := "accelerator not logged"
		for run := 0; run < hvBenchRuns; run++ {
			code, out, errOut := h.hostctl(b, "run", "--json", hvClient)
			require.Equal(b, 0, code)
			reps = append(reps, hvReports(b, out)[hvClient])
			if m := applianceAccel.FindStringSubmatch(errOut); m != nil {
				accel = m[1] + " in the TCG VM"
			}
		}
		first := reps[0]
		pause := medianOf(reps, func(r hvReport) time.Duration { return r.Pause })

		host := newClient(b, e, fmt.Sprintf("hvbench%d", i), "qcow2", smallTree)
		host.start(b)
		code, out, _ := hostctl(b, context.Background(), "run", "--json", "-c", host.config)
		require.Equal(b, 0, code)
		hr := parseReports(b, out)[0]

		lvm := h.lvmTimes(b)

		b.ReportMetric(first.ReadyIn.Seconds(), "nested-ready-s")
		b.ReportMetric(first.ApplianceElapsed.Seconds(), "nested-appliance-s")
		b.ReportMetric(hr.ReadyIn.Seconds(), "host-ready-s")
		b.ReportMetric(hr.ApplianceElapsed.Seconds(), "host-appliance-s")
		b.ReportMetric(float64(pause.Milliseconds()), "lv-pause-ms")
		b.ReportMetric(float64(hr.Pause.Milliseconds()), "host-file-pause-ms")
		for _, k := range []string{"classic-create", "classic-remove", "thin-create", "thin-remove"} {
			b.ReportMetric(float64(lvm[k].Milliseconds()), k+"-ms")
		}
		fmt.Printf("nested appliance (%s), backup of %s (thin + classic LV): kernel start to supervisor ready %s, domain start to power-off %s, job %s; on this host, a %s client: %s, %s, job %s\n",
			accel, hvClient, first.ReadyIn.Round(100*time.Millisecond), first.ApplianceElapsed.Round(100*time.Millisecond), first.Elapsed.Round(100*time.Millisecond),
			accelUsed(host), hr.ReadyIn.Round(100*time.Millisecond), hr.ApplianceElapsed.Round(100*time.Millisecond), hr.Elapsed.Round(100*time.Millisecond))
		fmt.Printf("LVM snapshots in the hypervisor VM (median of 5): classic 256 MiB create %s, remove %s; thin create %s, remove %s; an external snapshot of a running qcow2 disk in the same VM: create %s, blockcommit %s (no device-mapper on this host)\n",
			lvm["classic-create"].Round(time.Millisecond), lvm["classic-remove"].Round(time.Millisecond),
			lvm["thin-create"].Round(time.Millisecond), lvm["thin-remove"].Round(time.Millisecond),
			lvm["file-create"].Round(time.Millisecond), lvm["file-commit"].Round(time.Millisecond))
		fmt.Printf("pause window, %s suspended for its 2 LV snapshots, in the hypervisor VM: median %s over %d runs (%v); on this host, a 2-disk qcow2 client (one atomic external snapshot): %s\n",
			hvClient, pause.Round(time.Millisecond), len(reps), pauses(reps), hr.Pause.Round(time.Millisecond))
	}
}

func medianOf(reps []hvReport, f func(hvReport) time.Duration) time.Duration {
	var d []time.Duration
	for _, r := range reps {
		d = append(d, f(r))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func pauses(reps []hvReport) []time.Duration {
	var d []time.Duration
	for _, r := range reps {
		d = append(d, r.Pause.Round(time.Millisecond))
	}
	return d
}

// lvmTimes times, in the VM, what hostctl's snapshots cost there: lvcreate
// and lvremove of a classic snapshot of the client's data LV and a thin
// snapshot of its root LV (median of 5 each, with the client running),
// and for comparison an external disk-only snapshot of a running qcow2
// disk and its blockcommit (one each, on a second disk of a scratch
// domain would need another guest: the client's own LVs stay as they are,
// so a transient qcow2 domain is used).
func (h *hypervisor) lvmTimes(t testing.TB) map[string]time.Duration {
	t.Helper()
	out := h.run(t, `ms() { echo $(( $(date +%s%N) / 1000000 )); }
for i in 1 2 3 4 5; do
  a=$(ms); lvcreate -q -s -L 256M -n sbbench vg0/myvm-data >/dev/null; b=$(ms)
  lvremove -q -y vg0/sbbench >/dev/null; c=$(ms)
  echo "classic-create $((b-a))"; echo "classic-remove $((c-b))"
  a=$(ms); lvcreate -q -s -n sbbench vg0/myvm-root -ay -K >/dev/null; b=$(ms)
  lvremove -q -y vg0/sbbench >/dev/null; c=$(ms)
  echo "thin-create $((b-a))"; echo "thin-remove $((c-b))"
done
d=$(mktemp -d /var/lib/libvirt/images/sbbench.XXXX); chmod 755 $d # QEMU runs as libvirt-qemu here
qemu-img create -q -f qcow2 $d/disk.qcow2 64M
cat > $d/dom.xml <<EOF
<domain type='qemu'><name>sbbench</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type><kernel>/var/lib/libvirt/boot/myvm-vmlinuz</kernel><initrd>/var/lib/libvirt/boot/myvm-bootvm.cpio</initrd><cmdline>console=ttyS0 root=LABEL=none</cmdline></os>
<on_poweroff>destroy</on_poweroff><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$d/disk.qcow2'/><target dev='vda' bus='virtio'/></disk></devices></domain>
EOF
virsh -q create $d/dom.xml
a=$(ms); virsh -q snapshot-create-as sbbench --disk-only --atomic --no-metadata --diskspec vda,file=$d/overlay.qcow2 >/dev/null; b=$(ms)
virsh -q blockcommit sbbench vda --active --pivot --wait >/dev/null; c=$(ms)
echo "file-create $((b-a))"; echo "file-commit $((c-b))"
virsh -q destroy sbbench; rm -rf $d`)
	samples := map[string][]time.Duration{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		ms, err := strconv.Atoi(f[1])
		require.NoError(t, err, "line %q", line)
		samples[f[0]] = append(samples[f[0]], time.Duration(ms)*time.Millisecond)
	}
	med := map[string]time.Duration{}
	for k, d := range samples {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		med[k] = d[len(d)/2]
	}
	for _, k := range []string{"classic-create", "classic-remove", "thin-create", "thin-remove", "file-create", "file-commit"} {
		require.Contains(t, med, k, "lvm timings:\n%s", out)
	}
	return med
}
