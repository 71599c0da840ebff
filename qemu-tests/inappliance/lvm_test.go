//go:build inappliance

package inappliance

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
)

// hostVG makes volume group vg on test disk i, as a hypervisor's VG.
func hostVG(t *testing.T, i int, vg string) (*lvm.CLI, string) {
	d := disk(t, i)
	conf := lvmConf(d)
	lvmRun(t, conf, "pvcreate", "-q", "-ff", "--yes", "/dev/"+d)
	lvmRun(t, conf, "vgcreate", "-q", vg, "/dev/"+d)
	t.Cleanup(func() { lvmRun(t, conf, "vgremove", "-q", "-ff", "--yes", vg) })
	return &lvm.CLI{Config: conf}, conf
}

// TestLVMClassicSnapshot: a snapshot taken while the origin is being
// written holds the origin's content as of one instant and keeps it while
// the writes go on; its fill level rises; lvremove takes it away.
func TestLVMClassicSnapshot(t *testing.T) {
	ctx := context.Background()
	m, conf := hostVG(t, 0, "hostvg")
	lvmRun(t, conf, "lvcreate", "-q", "--yes", "-n", "web", "-L", "64m", "hostvg")
	origin, err := m.Lookup(ctx, "/dev/hostvg/web")
	if err != nil {
		t.Fatal(err)
	}
	if origin.Size != 64<<20 || origin.Thin() {
		t.Fatalf("origin %+v", origin)
	}
	fill(t, origin.Path, 0, 64<<20, 1)

	// A writer keeps rewriting the first 16 MiB while the snapshot is taken.
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seed := byte(2); !stop.Load(); seed++ {
			fill(t, origin.Path, 0, 16<<20, seed)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	snap, err := m.Snapshot(ctx, origin, "web-sb", lvm.SnapshotSize(origin.Size, 32<<20, 0))
	if err != nil {
		t.Fatal(err)
	}
	first := sum(t, snap.Path, 64<<20)
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	fill(t, origin.Path, 32<<20, 8<<20, 99) // and a write elsewhere
	if again := sum(t, snap.Path, 64<<20); again != first {
		t.Fatal("the snapshot's content changed while the origin was written")
	}
	if sum(t, origin.Path, 64<<20) == first {
		t.Fatal("the origin did not change: the test proves nothing")
	}
	got, err := m.Get(ctx, "hostvg", "web-sb")
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != "web" || got.DataPercent <= 0 || got.Invalid() {
		t.Fatalf("snapshot %+v: want origin web, a fill level > 0, valid", got)
	}
	t.Logf("snapshot %s: %d bytes, %.1f%% full after the writes", got.ID(), got.Size, got.DataPercent)
	if err := m.Remove(ctx, "hostvg", "web-sb"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "hostvg", "web-sb"); !errors.Is(err, lvm.ErrNoLV) {
		t.Fatalf("after remove: %v", err)
	}
	if err := m.Remove(ctx, "hostvg", "web-sb"); err != nil {
		t.Fatalf("removing again (a cleanup retried): %v", err)
	}
}

// TestLVMThinSnapshot: a thin volume gets a thin snapshot (no size, no
// overflow of its own), active, with the origin's content.
func TestLVMThinSnapshot(t *testing.T) {
	ctx := context.Background()
	m, conf := hostVG(t, 1, "thinvg")
	lvmRun(t, conf, "lvcreate", "-q", "--yes", "--type", "thin-pool", "-n", "pool", "-L", "128m", "thinvg")
	lvmRun(t, conf, "lvcreate", "-q", "--yes", "--type", "thin", "-n", "db", "-V", "256m", "--thinpool", "pool", "thinvg")
	origin, err := m.Lookup(ctx, "thinvg/db")
	if err != nil {
		t.Fatal(err)
	}
	if !origin.Thin() || origin.Pool != "pool" {
		t.Fatalf("origin %+v: want a thin volume in pool", origin)
	}
	fill(t, origin.Path, 0, 32<<20, 5)
	want := sum(t, origin.Path, 32<<20)
	snap, err := m.Snapshot(ctx, origin, "db-sb", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Thin() || !snap.Active() {
		t.Fatalf("snapshot %+v: want an active thin volume", snap)
	}
	fill(t, origin.Path, 0, 32<<20, 6)
	if got := sum(t, snap.Path, 32<<20); got != want {
		t.Fatal("thin snapshot content differs from the origin at snapshot time")
	}
	if err := m.Remove(ctx, "thinvg", "db-sb"); err != nil {
		t.Fatal(err)
	}
}

// TestLVMOverflowGuard: a classic snapshot too small for the writes to its
// origin is caught by the guard above its limit, before LVM invalidates it,
// and can then be removed.
func TestLVMOverflowGuard(t *testing.T) {
	ctx := context.Background()
	m, conf := hostVG(t, 2, "fullvg")
	lvmRun(t, conf, "lvcreate", "-q", "--yes", "-n", "busy", "-L", "128m", "fullvg")
	origin, err := m.Lookup(ctx, "/dev/fullvg/busy")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := m.Snapshot(ctx, origin, "busy-sb", 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	verdict := make(chan error, 1)
	g := &lvm.Guard{M: m, Snaps: []*lvm.LV{snap}, Limit: 50, Interval: 100 * time.Millisecond, Logf: t.Logf}
	go func() { verdict <- g.Run(gctx) }()
	// Write the origin 1 MiB at a time until the guard speaks: the
	// snapshot's 16 MiB would be gone after ~16 MiB of writes.
	var err2 error
	for off := int64(0); off < 128<<20; off += 1 << 20 {
		select {
		case err2 = <-verdict:
		default:
			fill(t, origin.Path, off, 1<<20, byte(off>>20))
			time.Sleep(40 * time.Millisecond)
			continue
		}
		break
	}
	var oe *lvm.OverflowError
	if !errors.As(err2, &oe) {
		t.Fatalf("guard verdict %v, want an OverflowError", err2)
	}
	t.Logf("guard: %v", oe)
	got, err := m.Get(ctx, "fullvg", "busy-sb")
	if err != nil {
		t.Fatal(err)
	}
	if got.Invalid() || oe.Invalid {
		t.Fatalf("the snapshot overflowed before the guard fired: %+v", got)
	}
	if err := lvm.RemoveSnapshot(ctx, m, "fullvg", "busy-sb", "busy"); err != nil {
		t.Fatal(err)
	}
}

// TestLVMLeftoverCleanup: a snapshot a crashed run left is removed the
// way the ledger's undo does it (and again without error); an LV that is
// not a snapshot of the recorded origin is refused, never removed.
func TestLVMLeftoverCleanup(t *testing.T) {
	ctx := context.Background()
	m, conf := hostVG(t, 3, "leftvg")
	lvmRun(t, conf, "lvcreate", "-q", "--yes", "-n", "app", "-L", "32m", "leftvg")
	lvmRun(t, conf, "lvcreate", "-q", "--yes", "-n", "other", "-L", "32m", "leftvg")
	origin, err := m.Get(ctx, "leftvg", "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Snapshot(ctx, origin, "app-sb-run1", 8<<20); err != nil {
		t.Fatal(err)
	}
	// The crashed run is gone; a new process cleans up from the record.
	m2 := &lvm.CLI{Config: conf}
	if err := lvm.RemoveSnapshot(ctx, m2, "leftvg", "other", "app"); err == nil {
		t.Fatal("RemoveSnapshot removed an LV that is not a snapshot")
	}
	if err := lvm.RemoveSnapshot(ctx, m2, "leftvg", "app-sb-run1", "app"); err != nil {
		t.Fatal(err)
	}
	if err := lvm.RemoveSnapshot(ctx, m2, "leftvg", "app-sb-run1", "app"); err != nil {
		t.Fatalf("second cleanup: %v", err)
	}
	if _, err := m2.Get(ctx, "leftvg", "other"); err != nil {
		t.Fatalf("the other LV: %v", err)
	}
}
