package qemutests

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirtxml"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// loopLVM stands in for the host's LVM, which these hosts cannot run (no
// device-mapper): the "LV" is a loop device that a running client domain
// uses as its block disk, a "snapshot" is a file copy of it, and the
// snapshot's fill level rises by step at every look, as under a guest
// that writes a lot. Everything else is real: libvirtd, the running
// client, the appliance, the ledger.
type loopLVM struct {
	mu    sync.Mutex
	dev   string // the origin's loop device
	dir   string // where snapshot files go
	size  int64
	step  float64
	snaps map[string]*lvm.LV
	looks int
}

var _ lvm.Manager = (*loopLVM)(nil)

func (f *loopLVM) origin() *lvm.LV {
	return &lvm.LV{VG: "sbvg", Name: "web", Path: f.dev, Size: f.size, Attr: "-wi-ao----"}
}

func (f *loopLVM) Lookup(ctx context.Context, dev string) (*lvm.LV, error) {
	if dev != f.dev {
		return nil, fmt.Errorf("%s: %w", dev, lvm.ErrNotLV)
	}
	return f.origin(), nil
}

func (f *loopLVM) Get(_ context.Context, vg, name string) (*lvm.LV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if vg == "sbvg" && name == "web" {
		return f.origin(), nil
	}
	s, ok := f.snaps[vg+"/"+name]
	if !ok {
		return nil, fmt.Errorf("%s/%s: %w", vg, name, lvm.ErrNoLV)
	}
	f.looks++
	s.DataPercent += f.step
	c := *s
	return &c, nil
}

func (f *loopLVM) Snapshot(_ context.Context, origin *lvm.LV, name string, size int64) (*lvm.LV, error) {
	p := filepath.Join(f.dir, name+".img")
	src, err := os.Open(origin.Path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return nil, err
	}
	if err := dst.Close(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &lvm.LV{VG: origin.VG, Name: name, Path: p, Size: size, Attr: "swi-a-s---", Origin: origin.Name}
	f.snaps[s.ID()] = s
	return s, nil
}

func (f *loopLVM) Remove(_ context.Context, vg, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.snaps[vg+"/"+name]; ok {
		if err := os.Remove(s.Path); err != nil {
			return err
		}
		delete(f.snaps, vg+"/"+name)
	}
	return nil
}

// Create: the test's cache is a file (cache.type "file"), never an LV.
func (f *loopLVM) Create(_ context.Context, vg, name string, _ int64) (*lvm.LV, error) {
	return nil, fmt.Errorf("loopLVM: no LV %s/%s here: the test's caches are files", vg, name)
}

// TestLVMSnapshotOverflow backs up a running client whose disk is a block
// device taken for an LV. Its snapshot fills up while the appliance runs:
// the guard aborts the job, the report says why, and nothing is left: no
// appliance domain, overlay, job disk, ledger entry or snapshot. The
// client keeps running on its disk.
func TestLVMSnapshotOverflow(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	if _, err := exec.LookPath("losetup"); err != nil {
		testutil.SkipOrFail(t, "losetup is not installed")
	}
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	require.NoError(t, os.MkdirAll(tree, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "hello.txt"), []byte("hello from an LV\n"), 0o644))
	img := filepath.Join(dir, "web.raw")
	require.NoError(t, fixture.MakeClientDisk(ctx, tree, img, "raw", 64))
	out, err := execx.Output(ctx, "losetup", "--find", "--show", img)
	if err != nil {
		testutil.SkipOrFail(t, fmt.Sprintf("no loop device: %v", err))
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { execx.Output(context.Background(), "losetup", "-d", loop) })

	name, domain := "lvguard", testDomain("lvguard")
	x, err := fixture.ClientDomain{Name: domain, Kernel: e.kernel, Initrd: e.idle, Disk: img, DiskFormat: "raw",
		ConsoleLog: filepath.Join(dir, "client-console.log")}.XML()
	require.NoError(t, err)
	var dom libvirtxml.Domain
	require.NoError(t, dom.Unmarshal(x))
	dom.Devices.Disks[0].Source = &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: loop}}
	x, err = dom.Marshal()
	require.NoError(t, err)
	xf := filepath.Join(dir, "client.xml")
	require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
	exec.Command("virsh", "-c", "qemu:///system", "destroy", domain).Run()
	exec.Command("virsh", "-c", "qemu:///system", "undefine", domain).Run()
	virsh(t, "define", xf)
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "destroy", domain).Run()
		exec.Command("virsh", "-c", "qemu:///system", "undefine", domain).Run()
	})
	virsh(t, "start", domain)

	stateDir := filepath.Join(dir, "state")
	cfgPath, err := fixture.Config{Accel: e.accel, StateDir: stateDir, ImageDir: e.imageDir, TargetRoot: filepath.Join(dir, "backup"),
		Client: name, Domain: domain, Passphrase: "lvguard passphrase"}.Write(filepath.Join(dir, "etc"))
	require.NoError(t, err)
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	cfg.Host.LVM.PollInterval.Duration = time.Second

	lv, l, image, accel := applianceDeps(t, ctx, e, cfg.Host.LibvirtURI, stateDir)
	// 20 % more at every look (one a second): the guard's limit of 80 %
	// is reached about 4 s after the snapshot, while the appliance boots
	// or reads.
	fake := &loopLVM{dev: loop, dir: dir, size: 64 << 20, step: 20, snaps: map[string]*lvm.LV{}}
	var lines strings.Builder
	r := runner.New(cfg, runner.Deps{Virt: lv, LVM: fake, Ledger: l}, runner.WithImage(image, accel),
		runner.WithOutput(&lines), runner.WithProgress(progress.NewText(&lines, false)))

	start := time.Now()
	cls, err := cfg.SelectClients([]string{name})
	require.NoError(t, err)
	rep := r.Backup(ctx, cls[0])
	t.Logf("job in %s: %s: %s\n%s", time.Since(start).Round(time.Millisecond), rep.Status, rep.Error, lines.String())
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "LVM snapshot sbvg/web-hostctl-"+r.RunID()+" is 80.0% full (limit 80%)")
	require.Contains(t, lines.String(), "appliance hostctl-backup-"+name, "the guard fired once the appliance ran")
	require.Empty(t, rep.Cleanups)

	// Nothing left.
	require.Empty(t, fake.snaps, "snapshot left")
	snapFiles, _ := filepath.Glob(filepath.Join(dir, "*-hostctl-*.img"))
	require.Empty(t, snapFiles, "snapshot device left")
	entries, err := os.ReadDir(filepath.Join(stateDir, "ledger"))
	require.NoError(t, err)
	require.Empty(t, entries, "ledger entries left")
	require.Empty(t, appliances(t, stateDir, false), "appliance domain left")
	filepath.WalkDir(filepath.Join(stateDir, "runs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			require.False(t, strings.HasSuffix(p, ".qcow2") || strings.HasSuffix(p, ".img"), "file left: %s", p)
		}
		return nil
	})
	require.Contains(t, virsh(t, "domstate", domain), "running", "the client keeps running")
	disks, err := virt.ClientDisks(virsh(t, "dumpxml", domain))
	require.NoError(t, err)
	require.Equal(t, loop, disks[0].Path)
	require.Less(t, time.Since(start), 90*time.Second)
}
