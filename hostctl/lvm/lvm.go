// Package lvm is hostctl's view of the hypervisor's LVM: which client disks
// are logical volumes, their snapshots (classic copy-on-write with a size,
// or thin for thin volumes), the fill level of classic snapshots, and their
// removal. Every command goes through the one exec helper and only LVM's
// JSON reports (--reportformat json --units b) are parsed. The Manager
// interface is what the runner uses, so its tests can fake it.
package lvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/lvmjson"
	"golang.org/x/sys/unix"
)

// ErrNotLV means a block device is not an LVM logical volume.
var ErrNotLV = errors.New("not an LVM logical volume")

// ErrNoLV means the named logical volume does not exist.
var ErrNoLV = errors.New("no such logical volume")

// LV is one logical volume as lvs reports it.
type LV struct {
	VG, Name string
	Path     string // /dev/VG/NAME
	Size     int64
	Attr     string // lv_attr: [0] 'V' thin volume, 's' snapshot, 't' thin pool, 'o' origin …
	Origin   string // for a snapshot
	Pool     string // for a thin volume
	// DataPercent is the fill level of a classic snapshot's copy-on-write
	// store (or of a thin volume's share of its pool).
	DataPercent float64
}

// ID is "vg/name".
func (l *LV) ID() string { return l.VG + "/" + l.Name }

// Thin reports whether the volume is a thin volume (its snapshots are thin).
func (l *LV) Thin() bool { return len(l.Attr) > 0 && l.Attr[0] == 'V' }

// Active reports whether the volume is active (has a device).
func (l *LV) Active() bool { return len(l.Attr) > 4 && l.Attr[4] == 'a' }

// Invalid reports whether a classic snapshot overflowed and is unusable.
func (l *LV) Invalid() bool { return len(l.Attr) > 4 && (l.Attr[4] == 'I' || l.Attr[4] == 'S') }

// Manager is what hostctl does with LVM.
type Manager interface {
	// Lookup finds the LV behind a block device path (/dev/vg/lv,
	// /dev/mapper/vg-lv, /dev/dm-3: by device number) or a "vg/lv" name; ErrNotLV when
	// the device is something else.
	Lookup(ctx context.Context, dev string) (*LV, error)
	// Get reports vg/name; ErrNoLV when it does not exist.
	Get(ctx context.Context, vg, name string) (*LV, error)
	// Snapshot creates snapshot name of origin: classic with size bytes of
	// copy-on-write store, or thin (size ignored) for a thin origin. It is
	// activated (thin snapshots are created with the skip-activation flag
	// set and need -K).
	Snapshot(ctx context.Context, origin *LV, name string, size int64) (*LV, error)
	// Remove removes vg/name; a missing volume is not an error.
	Remove(ctx context.Context, vg, name string) error
	// Create creates the linear volume vg/name of size bytes (a client's
	// cache volume), active, with no old signature and its first MiB
	// zeroed: the appliance formats only a volume whose head is empty.
	Create(ctx context.Context, vg, name string, size int64) (*LV, error)
}

// CLI is the Manager on the lvm2 command-line tools.
type CLI struct {
	// Run runs a command and returns its stdout; default execx.Output.
	Run func(ctx context.Context, argv ...string) ([]byte, error)
	// Config is passed as --config to every command ("" none); the tests
	// confine LVM to their own devices with a filter.
	Config string
	// SysDev is /sys/dev/block (device numbers to device-mapper names).
	SysDev string
	// Zero zeroes the first n bytes of a new volume's device; default
	// writing zeros to it (the tests, without device-mapper, record it).
	Zero func(path string, n int64) error
}

var _ Manager = (*CLI)(nil)

func (c *CLI) lvm(ctx context.Context, args ...string) ([]byte, error) {
	argv := []string{"lvm", args[0]}
	if c.Config != "" {
		argv = append(argv, "--config", c.Config)
	}
	argv = append(argv, args[1:]...)
	if c.Run != nil {
		return c.Run(ctx, argv...)
	}
	return execx.Output(ctx, argv...)
}

// lvFields are the lvs columns LV is made of.
const lvFields = "vg_name,lv_name,lv_path,lv_size,lv_attr,origin,pool_lv,data_percent"

// ParseLVs parses `lvs --reportformat json --units b -o lvFields`.
func ParseLVs(out []byte) ([]LV, error) {
	rows, err := lvmjson.Rows(out, "lv")
	if err != nil {
		return nil, err
	}
	var lvs []LV
	for _, r := range rows {
		size, err := lvmjson.Bytes(r["lv_size"])
		if err != nil {
			return nil, err
		}
		pct, err := lvmjson.Percent(r["data_percent"])
		if err != nil {
			return nil, err
		}
		lvs = append(lvs, LV{VG: r["vg_name"], Name: r["lv_name"], Path: r["lv_path"], Size: size,
			Attr: r["lv_attr"], Origin: r["origin"], Pool: r["pool_lv"], DataPercent: pct})
	}
	return lvs, nil
}

// Get implements Manager.
func (c *CLI) Get(ctx context.Context, vg, name string) (*LV, error) {
	out, err := c.lvm(ctx, "lvs", "--reportformat", "json", "--units", "b", "-o", lvFields, vg+"/"+name)
	if err != nil {
		var ee *execx.Error
		if errors.As(err, &ee) && (strings.Contains(ee.Stderr, "not found") || strings.Contains(ee.Stderr, "Failed to find")) {
			return nil, fmt.Errorf("%s/%s: %w", vg, name, ErrNoLV)
		}
		return nil, fmt.Errorf("lvs %s/%s: %w", vg, name, err)
	}
	lvs, err := ParseLVs(out)
	if err != nil {
		return nil, err
	}
	if len(lvs) != 1 {
		return nil, fmt.Errorf("%s/%s: %w", vg, name, ErrNoLV)
	}
	return &lvs[0], nil
}

// Lookup implements Manager.
func (c *CLI) Lookup(ctx context.Context, dev string) (*LV, error) {
	if !strings.HasPrefix(dev, "/") {
		vg, name, ok := strings.Cut(dev, "/")
		if !ok {
			return nil, fmt.Errorf("%q: want vg/lv", dev)
		}
		return c.Get(ctx, vg, name)
	}
	// By device number: without udev /dev/VG/LV and /dev/mapper/… may
	// be nodes of their own rather than links to dm-N.
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", dev, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, fmt.Errorf("%s: not a block device: %w", dev, ErrNotLV)
	}
	sysDev := c.SysDev
	if sysDev == "" {
		sysDev = "/sys/dev/block"
	}
	dmDir := filepath.Join(sysDev, fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))), "dm")
	uuid, _ := os.ReadFile(filepath.Join(dmDir, "uuid"))
	name, err := os.ReadFile(filepath.Join(dmDir, "name"))
	if err != nil || !strings.HasPrefix(string(uuid), "LVM-") {
		return nil, fmt.Errorf("%s: %w", dev, ErrNotLV)
	}
	vg, lv, ok := lvmjson.SplitDMName(strings.TrimSpace(string(name)))
	if !ok {
		return nil, fmt.Errorf("%s: device-mapper name %q: %w", dev, name, ErrNotLV)
	}
	return c.Get(ctx, vg, lv)
}

// Snapshot implements Manager.
func (c *CLI) Snapshot(ctx context.Context, origin *LV, name string, size int64) (*LV, error) {
	args := []string{"lvcreate", "--yes", "--snapshot", "-n", name}
	if origin.Thin() {
		args = append(args, "-ay", "-K") // thin snapshots skip activation by default
	} else {
		if size <= 0 {
			return nil, fmt.Errorf("lvcreate snapshot of %s: a classic snapshot needs a size", origin.ID())
		}
		// LVM rounds up to whole extents.
		args = append(args, "-L", fmt.Sprintf("%db", size))
	}
	args = append(args, origin.ID())
	if _, err := c.lvm(ctx, args...); err != nil {
		return nil, fmt.Errorf("lvcreate snapshot %s/%s of %s: %w", origin.VG, name, origin.ID(), err)
	}
	return c.Get(ctx, origin.VG, name)
}

// Create implements Manager.
func (c *CLI) Create(ctx context.Context, vg, name string, size int64) (*LV, error) {
	if size <= 0 {
		return nil, fmt.Errorf("lvcreate %s/%s: size %d", vg, name, size)
	}
	// --zero covers 4 KiB only, and the extents may have held another
	// volume's data: the rest of the head is zeroed below.
	if _, err := c.lvm(ctx, "lvcreate", "--yes", "--wipesignatures", "y", "--zero", "y", "-n", name, "-L", fmt.Sprintf("%db", size), vg); err != nil {
		return nil, fmt.Errorf("lvcreate %s/%s: %w", vg, name, err)
	}
	lv, err := c.Get(ctx, vg, name)
	if err != nil {
		return nil, err
	}
	if c.Zero != nil {
		err = c.Zero(lv.Path, 1<<20)
	} else {
		err = zeroHead(lv.Path, 1<<20)
	}
	if err != nil {
		return nil, fmt.Errorf("zero the head of %s: %w", lv.ID(), err)
	}
	return lv, nil
}

// zeroHead writes n zero bytes at the start of the device at path.
func zeroHead(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(make([]byte, n)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Remove implements Manager.
func (c *CLI) Remove(ctx context.Context, vg, name string) error {
	if _, err := c.Get(ctx, vg, name); errors.Is(err, ErrNoLV) {
		return nil
	}
	if _, err := c.lvm(ctx, "lvremove", "--yes", vg+"/"+name); err != nil {
		return fmt.Errorf("lvremove %s/%s: %w", vg, name, err)
	}
	return nil
}

// RemoveSnapshot removes snapshot vg/name of origin, as the ledger's undo
// does: a volume that is gone is fine (removed before), a volume that is
// not a snapshot of origin is refused, because a record must never make
// hostctl remove an operator's data.
func RemoveSnapshot(ctx context.Context, m Manager, vg, name, origin string) error {
	lv, err := m.Get(ctx, vg, name)
	if errors.Is(err, ErrNoLV) {
		return nil
	}
	if err != nil {
		return err
	}
	if lv.Origin != origin {
		return fmt.Errorf("%s is not a snapshot of %s/%s (origin %q): not removing it", lv.ID(), vg, origin, lv.Origin)
	}
	return m.Remove(ctx, vg, name)
}
