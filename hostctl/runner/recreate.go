package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/units"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
)

// Recreate is the third starting point of a recovery: the domain does not
// exist. Its disks are made empty at the recorded sizes and the domain is
// defined from the backup's VM record (virt.RebuildDomain), and then the
// recovery runs as for a VM with blank disks.
type Recreate struct {
	Archive string // the backup whose record this is (the one restored)
	Record  *vmrecord.Record
	Disks   []NewDisk
	Domain  *virt.Rebuilt
}

// NewDisk is a disk Recreate makes: a sparse qcow2 file, or an LV.
type NewDisk struct {
	virt.NewDisk
	Size   int64
	VG, LV string // set for an LV
}

// missingDomain is the error for a domain that does not exist, nil when
// the options say where to make it (--disk-dir, --vg).
func missingDomain(c *config.Resolved, o RecoverOptions, err error) error {
	if o.DiskDir != "" || o.VG != "" {
		return nil
	}
	return fmt.Errorf("client %s: domain %s does not exist (%w). To make it again from the backup's VM record, pass --disk-dir DIR (qcow2 files) or --vg VG (logical volumes); --dry-run shows the plan first", c.Name, c.Domain, err)
}

// PlanRecreate reads the VM record of the backup p restores through an
// appliance and plans the disks and the definition that recreate the
// client's domain. It changes nothing on the host.
func (r *Runner) PlanRecreate(ctx context.Context, c *config.Resolved, p *RecoverPlan) error {
	o := p.opts
	rd, err := r.ReadRecord(ctx, c, o.Archive, o.Time)
	if err != nil {
		return err
	}
	rec := rd.Record
	if rec.Domain == "" {
		return fmt.Errorf("backup %s has no domain XML in its VM record: define the domain by hand (with empty disks of the recorded sizes) and rerun without --disk-dir", rd.Archive)
	}
	var disks []NewDisk
	var vdisks []virt.NewDisk
	for _, d := range rec.Disks {
		nd := NewDisk{NewDisk: virt.NewDisk{Target: d.Dev, Format: "qcow2"}, Size: d.Size}
		if o.VG != "" {
			nd.VG, nd.LV, nd.Format, nd.Block = o.VG, c.Domain+"-"+d.Dev, "raw", true
			nd.Path = "/dev/" + o.VG + "/" + nd.LV
		} else {
			nd.Path = filepath.Join(o.DiskDir, c.Domain+"-"+d.Dev+".qcow2")
		}
		if _, err := os.Lstat(nd.Path); err == nil || !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disk %s of the recreated domain: %s exists already; nothing is overwritten (remove it or choose another --disk-dir/--vg)", d.Dev, nd.Path)
		}
		disks = append(disks, nd)
		vdisks = append(vdisks, nd.NewDisk)
	}
	log := ""
	if o.DiskDir != "" {
		log = filepath.Join(o.DiskDir, c.Domain+".console.log")
	}
	rb, err := virt.RebuildDomain(rec.Domain, c.Domain, vdisks, log)
	if err != nil {
		return fmt.Errorf("backup %s: %w", rd.Archive, err)
	}
	p.Recreate = &Recreate{Archive: rd.Archive, Record: rec, Disks: disks, Domain: rb}
	// The recovery restores the backup whose record made the VM, even
	// when a newer one arrives meanwhile.
	p.Archive, p.restore.Archive = rd.Archive, rd.Archive
	p.Disks = nil
	for _, d := range disks {
		p.Disks = append(p.Disks, virt.ClientDisk{Target: d.Target, Path: d.Path, Format: d.Format, Block: d.Block})
	}
	return nil
}

// PlanRecord reads the VM record of the backup p restores into an
// existing domain, for a dry run's plan: what the recovery will lay out
// and mount where. A record that cannot be read is said in the plan (the
// recovery itself would stop there, or map by the blank VM's fstab).
func (r *Runner) PlanRecord(ctx context.Context, c *config.Resolved, p *RecoverPlan) {
	rd, err := r.ReadRecord(ctx, c, p.opts.Archive, p.opts.Time)
	if err != nil {
		p.RecordNote = "the VM record was not read: " + err.Error()
		return
	}
	p.Recorded = rd
}

// recordLines describe a VM record for the plan.
func recordLines(rd *Recorded) []string {
	rec := rd.Record
	out := []string{"VM record of backup " + rd.Archive + ":"}
	for _, d := range rec.Disks {
		table := "no partition table"
		if d.PartitionTable != "" {
			table = "partitioned"
			if strings.Contains(d.PartitionTable, "label: gpt") {
				table = "GPT"
			} else if strings.Contains(d.PartitionTable, "label: dos") {
				table = "MBR"
			}
		}
		out = append(out, fmt.Sprintf("  disk %s: %s, %s", d.Dev, units.Bytes(d.Size), table))
	}
	for _, vg := range rec.VolumeGroups {
		out = append(out, fmt.Sprintf("  guest volume group %s on %d PV(s)", vg.Name, len(vg.PVs)))
	}
	for _, f := range rec.Filesystems {
		out = append(out, "  filesystem "+f.String())
	}
	for _, sw := range rec.Swap {
		out = append(out, "  swap on "+sw.Device())
	}
	if b := rec.BootLoader; b != nil {
		out = append(out, "  boot loader "+b.String())
	}
	return out
}

// lines are the plan's lines for a domain to be made.
func (rc *Recreate) lines() []string {
	out := []string{fmt.Sprintf("the domain does not exist: it is made from the VM record of backup %s", rc.Archive)}
	out = append(out, recordLines(&Recorded{Archive: rc.Archive, Record: rc.Record})...)
	for _, d := range rc.Disks {
		what := "sparse qcow2 file"
		if d.LV != "" {
			what = "logical volume " + d.VG + "/" + d.LV
		}
		out = append(out, fmt.Sprintf("  new disk %s: %s, %s (%s)", d.Target, d.Path, units.Bytes(d.Size), what))
	}
	for _, k := range rc.Domain.Kept {
		out = append(out, "  definition: "+k)
	}
	for _, l := range rc.Domain.Left {
		out = append(out, "  left out: "+l)
	}
	if rc.Record.BootLoader == nil {
		out = append(out, "  the record has no boot loader: the VM boots only if its disk has one (direct kernel boot is not carried over)")
	}
	return out
}

// makeDomain makes rc's disks and defines domain name; on an error what
// it made is removed again. undo removes it all (after a failed recovery).
func (r *Runner) makeDomain(ctx context.Context, name string, rc *Recreate) (undo func(), err error) {
	ctx = context.WithoutCancel(ctx) // what is made is also removed after a signal
	var made []func() error
	removeAll := func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := made[i](); err != nil {
				r.logf("remove what the recovery made: %v", err)
			}
		}
	}
	defer func() {
		if err != nil {
			removeAll()
		}
	}()
	// The plan checked that nothing is there; the operator may have read
	// it for a while.
	exists, err := r.virt.Exists(ctx, name)
	if err != nil {
		return nil, err
	}
	if exists {
		return nil, fmt.Errorf("domain %s was defined since the plan was made: nothing is made (rerun hostctl recover)", name)
	}
	for _, d := range rc.Disks {
		if _, err := os.Lstat(d.Path); !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("disk %s: %s appeared since the plan was made: nothing is overwritten", d.Target, d.Path)
		}
		if d.LV != "" {
			if _, err := r.lvm.Create(ctx, d.VG, d.LV, d.Size); err != nil {
				return nil, fmt.Errorf("create disk %s: %w", d.Target, err)
			}
			made = append(made, func() error { return r.lvm.Remove(ctx, d.VG, d.LV) })
		} else {
			if err := os.MkdirAll(filepath.Dir(d.Path), 0o750); err != nil {
				return nil, err
			}
			if err := r.images.Create(ctx, d.Path, d.Size); err != nil {
				return nil, fmt.Errorf("create disk %s: %w", d.Target, err)
			}
			made = append(made, func() error { return os.Remove(d.Path) })
		}
		r.logf("%s: made disk %s: %s (%s)", name, d.Target, d.Path, units.Bytes(d.Size))
	}
	if err := r.virt.Define(ctx, rc.Domain.XML); err != nil {
		return nil, err
	}
	made = append(made, func() error { return r.virt.Undefine(ctx, name) })
	r.logf("%s: defined the domain from the backup's VM record", name)
	return removeAll, nil
}
