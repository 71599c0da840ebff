package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// fakeLVM is an lvm.Manager over a map; a snapshot's "device" is a small
// file, and its fill level rises by step at every look.
type fakeLVM struct {
	mu     sync.Mutex
	dir    string
	lvs    map[string]*lvm.LV // by vg/name
	byDev  map[string]string  // device path → vg/name
	step   float64
	l      *ledger.Ledger // to check that a snapshot is recorded before it is made
	calls  []string
	unseen []string // snapshots created without a ledger record
}

var _ lvm.Manager = (*fakeLVM)(nil)

func newFakeLVM(t *testing.T, l *ledger.Ledger) *fakeLVM {
	return &fakeLVM{dir: t.TempDir(), lvs: map[string]*lvm.LV{}, byDev: map[string]string{}, l: l}
}

func (f *fakeLVM) addLV(dev, vg, name, attr string, size int64) {
	f.lvs[vg+"/"+name] = &lvm.LV{VG: vg, Name: name, Path: dev, Size: size, Attr: attr}
	f.byDev[dev] = vg + "/" + name
}

func (f *fakeLVM) Lookup(ctx context.Context, dev string) (*lvm.LV, error) {
	f.mu.Lock()
	id, ok := f.byDev[dev]
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", dev, lvm.ErrNotLV)
	}
	vg, name, _ := strings.Cut(id, "/")
	return f.Get(ctx, vg, name)
}

func (f *fakeLVM) Get(_ context.Context, vg, name string) (*lvm.LV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lv, ok := f.lvs[vg+"/"+name]
	if !ok {
		return nil, fmt.Errorf("%s/%s: %w", vg, name, lvm.ErrNoLV)
	}
	if lv.Origin != "" && !lv.Thin() {
		lv.DataPercent += f.step
	}
	c := *lv
	return &c, nil
}

func (f *fakeLVM) Snapshot(_ context.Context, origin *lvm.LV, name string, size int64) (*lvm.LV, error) {
	entries, err := f.l.List()
	if err != nil {
		return nil, err
	}
	recorded := false
	for _, e := range entries {
		recorded = recorded || (e.Kind == ledger.KindLVMSnapshot && e.VG == origin.VG && e.Name == name && e.Origin == origin.Name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !recorded {
		f.unseen = append(f.unseen, name)
	}
	dev := filepath.Join(f.dir, name)
	if err := os.WriteFile(dev, make([]byte, 1<<20), 0o600); err != nil {
		return nil, err
	}
	attr := "swi-a-s---"
	if origin.Thin() {
		attr, size = "Vwi-a-tz-k", 0
	}
	f.lvs[origin.VG+"/"+name] = &lvm.LV{VG: origin.VG, Name: name, Path: dev, Size: size, Attr: attr, Origin: origin.Name}
	f.calls = append(f.calls, fmt.Sprintf("snapshot %s/%s of %s size %d", origin.VG, name, origin.Name, size))
	return f.lvs[origin.VG+"/"+name], nil
}

// Create makes a cache volume: its "device" is a sparse file of size bytes.
func (f *fakeLVM) Create(_ context.Context, vg, name string, size int64) (*lvm.LV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dev := filepath.Join(f.dir, vg+"-"+name)
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(dev, size); err != nil {
		return nil, err
	}
	f.lvs[vg+"/"+name] = &lvm.LV{VG: vg, Name: name, Path: dev, Size: size, Attr: "-wi-a-----"}
	f.calls = append(f.calls, fmt.Sprintf("create %s/%s size %d", vg, name, size))
	return f.lvs[vg+"/"+name], nil
}

func (f *fakeLVM) Remove(_ context.Context, vg, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if lv, ok := f.lvs[vg+"/"+name]; ok {
		os.Remove(lv.Path)
		delete(f.lvs, vg+"/"+name)
	}
	f.calls = append(f.calls, "remove "+vg+"/"+name)
	return nil
}

// snapshots lists the snapshots that exist.
func (f *fakeLVM) snapshots() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, lv := range f.lvs {
		if lv.Origin != "" {
			out = append(out, id)
		}
	}
	return out
}

// lvmJob is a runner with a fake hypervisor and a fake LVM, and a running
// domain "web" with disks.
type lvmJob struct {
	r   *Runner
	hv  *fakeHV
	lm  *fakeLVM
	img *fakeImages
	l   *ledger.Ledger
	c   *config.Resolved
	dir string
}

// resolve resolves client c of cfg (config.Load's part for a Config built
// in code).
func resolve(t *testing.T, cfg *config.Config, c *config.Client) *config.Resolved {
	t.Helper()
	rc, err := cfg.Resolve(c)
	require.NoError(t, err)
	return rc
}

func newLVMJob(t *testing.T, disksXML string) *lvmJob {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "state", "ledger"))
	require.NoError(t, err)
	cfg := &config.Config{
		Host: config.Host{StateDir: filepath.Join(dir, "state"), RunDir: filepath.Join(dir, "run"), TimeLimit: job.Duration{Duration: time.Hour},
			Cache: config.Cache{Type: "file", Dir: filepath.Join(dir, "caches"), Size: 64 << 20},
			LVM:   config.LVM{AbortPercent: 80, PollInterval: job.Duration{Duration: 5 * time.Millisecond}}},
		Profiles: map[string]*config.Profile{"p": {Name: "p", Backend: "borg", Target: "file://" + dir + "/backup/{client}",
			Encryption: config.Encryption{Mode: "none"}}},
		Clients: map[string]*config.Client{},
	}
	c := &config.Client{Name: "web", Domain: "web", Type: config.TypeLVMLibvirt, Profile: "p",
		TimeLimit: job.Duration{Duration: time.Hour}, SnapshotSize: config.SnapshotSize{Percent: 50}}
	cfg.Clients["web"] = c
	rc := resolve(t, cfg, c)
	hv := newFakeHV()
	x := `<domain type="qemu"><name>web</name><devices>` + disksXML + `</devices></domain>`
	hv.live["web"], hv.inactive["web"] = x, x
	lm := newFakeLVM(t, l)
	lm.addLV("/dev/vg0/web-root", "vg0", "web-root", "-wi-ao----", 4<<30)
	lm.addLV("/dev/vg0/web-thin", "vg0", "web-thin", "Vwi-aotz--", 4<<30)
	img := newFakeImages()
	r := New(cfg, Deps{Virt: hv, LVM: lm, Images: img, Ledger: l}, WithRunID("20261125T000000Z"), WithOutput(io.Discard))
	return &lvmJob{r: r, hv: hv, lm: lm, img: img, l: l, c: rc, dir: dir}
}

// rebuild replaces j's runner by one with the same configuration, fakes
// and run id, and opts.
func (j *lvmJob) rebuild(opts ...Option) {
	j.r = New(j.r.cfg, j.r.deps(), append([]Option{WithRunID(j.r.runID), WithOutput(io.Discard)}, opts...)...)
}

const (
	lvDisk   = `<disk type="block" device="disk"><driver name="qemu" type="raw"/><source dev="/dev/vg0/web-root"/><target dev="vda" bus="virtio"/></disk>`
	thinDisk = `<disk type="block" device="disk"><driver name="qemu" type="raw"/><source dev="/dev/vg0/web-thin"/><target dev="vdc" bus="virtio"/></disk>`
)

func fileDisk(t *testing.T, dir string) string {
	p := filepath.Join(dir, "data.raw")
	require.NoError(t, os.WriteFile(p, make([]byte, 1<<20), 0o600))
	return `<disk type="file" device="disk"><driver name="qemu" type="raw"/><source file="` + p + `"/><target dev="vdb" bus="virtio"/></disk>`
}

// requireNothingLeft: no ledger entry, no snapshot, no appliance.
func (j *lvmJob) requireNothingLeft(t *testing.T) {
	t.Helper()
	left, err := j.l.List()
	require.NoError(t, err)
	require.Empty(t, left, "ledger entries left")
	require.Empty(t, j.lm.snapshots(), "LVM snapshots left")
	require.Empty(t, j.lm.unseen, "snapshots made before they were recorded")
	for name := range j.hv.live {
		require.False(t, strings.HasPrefix(name, "hostctl-"), "appliance left: %s", name)
	}
}

func TestLVMSnapshotRemovedAfterFailure(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	rep := j.r.Backup(context.Background(), j.c)
	// The fake appliance powers off at once without a result.
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "done record")
	require.Equal(t, []string{
		"snapshot vg0/web-root-hostctl-20261125T000000Z of web-root size 2147483648", // 50% of 4 GiB
		"remove vg0/web-root-hostctl-20261125T000000Z",
	}, j.lm.calls)
	require.NotContains(t, j.hv.calls, "suspend web", "one LV alone needs no suspend")
	j.requireNothingLeft(t)
}

func TestLVMSnapshotRemovedAfterSuccess(t *testing.T) {
	j := newLVMJob(t, lvDisk+thinDisk)
	j.hv.onStart = func(x string) error {
		// The appliance reads the snapshots: each overlay's base is one.
		for _, tgt := range []string{"vda", "vdc"} {
			base := j.img.base(t, filepath.Join(j.r.jobDir("web"), tgt+".appliance.qcow2"))
			require.Contains(t, base, "-hostctl-20261125T000000Z")
		}
		require.NoError(t, writeResult(applianceDisk(t, x), okStats, job.Done{Status: job.StatusOK}.Record()))
		delete(j.hv.live, x[strings.Index(x, "<name>")+6:strings.Index(x, "</name>")]) // powered off
		return nil
	}
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusOK, rep.Status, rep.Error)
	require.Contains(t, j.lm.calls, "snapshot vg0/web-thin-hostctl-20261125T000000Z of web-thin size 0", "thin: no size")
	require.Contains(t, j.hv.calls, "suspend web", "two LVs are snapshotted while the domain is suspended")
	j.requireNothingLeft(t)
}

func TestLVMMixedDomainSuspendedAroundSnapshots(t *testing.T) {
	j := newLVMJob(t, "")
	x := `<domain type="qemu"><name>web</name><devices>` + lvDisk + fileDisk(t, j.dir) + `</devices></domain>`
	j.hv.live["web"], j.hv.inactive["web"] = x, x
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusFailed, rep.Status) // no result from the fake appliance
	var seq []string
	for _, c := range j.hv.calls {
		if strings.HasSuffix(c, " web") {
			seq = append(seq, c)
		}
	}
	require.Equal(t, []string{"suspend web", "snapshot web", "resume web"}, seq)
	require.Len(t, j.lm.calls, 2, "LV snapshot taken and removed")
	j.requireNothingLeft(t)
}

func TestLVMResumedWhenSnapshotFails(t *testing.T) {
	j := newLVMJob(t, "")
	x := `<domain type="qemu"><name>web</name><devices>` + lvDisk + fileDisk(t, j.dir) + `</devices></domain>`
	j.hv.live["web"], j.hv.inactive["web"] = x, x
	j.lm.dir = filepath.Join(j.dir, "missing") // the snapshot "device" cannot be made
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, j.hv.calls, "resume web")
	left, _ := j.l.List()
	require.Empty(t, left)
}

func TestLVMGuardAbortsJob(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	j.hv.onStart = func(string) error {
		// The appliance runs until destroyed; meanwhile the snapshot fills
		// up: 30, 60, 90 %, the third look is over the limit.
		j.lm.mu.Lock()
		j.lm.step = 30
		j.lm.mu.Unlock()
		return nil
	}
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "LVM snapshot vg0/web-root-hostctl-20261125T000000Z is 90.0% full (limit 80%)")
	require.Contains(t, j.hv.calls, "destroy hostctl-backup-web-20261125T000000Z")
	j.requireNothingLeft(t)
}

func TestLVMSnapshotRemovedOnCancel(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	ctx, cancel := context.WithCancel(context.Background())
	j.hv.onStart = func(string) error { cancel(); return nil }
	rep := j.r.Backup(ctx, j.c)
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "context canceled")
	j.requireNothingLeft(t)
}

func TestLVMBlockDeviceNotLV(t *testing.T) {
	j := newLVMJob(t, strings.ReplaceAll(lvDisk, "/dev/vg0/web-root", "/dev/sdz"))
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "/dev/sdz is a block device but not an LVM logical volume")
	require.Empty(t, j.lm.calls)
}

func TestReconcileRemovesLeftoverLVMSnapshot(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	origin := j.lm.lvs["vg0/web-root"]
	_, err := j.lm.Snapshot(context.Background(), origin, "web-root-hostctl-old", 1<<30)
	require.NoError(t, err)
	_, err = j.l.Record(ledger.Entry{RunID: "old", Kind: ledger.KindLVMSnapshot, VG: "vg0", Name: "web-root-hostctl-old", Origin: "web-root"})
	require.NoError(t, err)
	// A record naming an LV that is not a snapshot of its origin is refused.
	_, err = j.l.Record(ledger.Entry{RunID: "old", Kind: ledger.KindLVMSnapshot, VG: "vg0", Name: "web-thin", Origin: "web-root"})
	require.NoError(t, err)
	n, err := Reconcile(context.Background(), Deps{Virt: j.hv, LVM: j.lm, Ledger: j.l}, io.Discard)
	require.ErrorContains(t, err, "not removing it")
	require.Equal(t, 1, n)
	require.Empty(t, j.lm.snapshots())
	require.Contains(t, j.lm.lvs, "vg0/web-thin", "an operator's LV is never removed")
	left, _ := j.l.List()
	require.Len(t, left, 1)
}

func TestOfflineNotOKSkips(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	delete(j.hv.live, "web") // shut off
	no := false
	j.c.OfflineOK = &no
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, report.StatusSkipped, rep.Status)
	require.Contains(t, rep.Error, "shut off and offline_ok = false")
	require.Empty(t, j.lm.calls)
	j.requireNothingLeft(t)
}

// writeResult puts result.jsonl on a job disk, as the supervisor does.
// okStats is the stats record of a backup that holds files: without it
// hostctl does not count a backup the appliance says it made.
var okStats = job.Stats{Files: 3, OriginalSize: 300}.Record()

func writeResult(img string, recs ...job.Record) error {
	var b []byte
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	return writeJobFile(img, job.FileResult, b)
}

// writeJobFile writes one more file onto a job disk, as the appliance does.
func writeJobFile(img, name string, data []byte) error {
	d, err := diskfs.Open(img)
	if err != nil {
		return err
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		return err
	}
	f, err := fsys.OpenFile("/"+name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Close()
}
