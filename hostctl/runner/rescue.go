package runner

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// RescueOptions say what the rescue appliance gets.
type RescueOptions struct {
	// Client, when set, is the shut-off client whose disks are attached.
	Client *config.Client
	// Disks are disk image files attached instead (or as well).
	Disks []string
	// Mount selects the filesystem mounted at /mnt/target, like backup.mount
	// ("" = the client's backup.mount, else auto).
	Mount     string
	TimeLimit time.Duration
	// Attach connects the operator's terminal to the appliance console; it
	// returns when the console closes (the shell exited and the appliance
	// powered off) or with an error to force the appliance off.
	Attach func(ctx context.Context, domain string) error
}

// rescueScope is the ledger client of a rescue of disk images that belong
// to no client: its leftovers block only such rescues.
const rescueScope = "(rescue)"

// Rescue boots the appliance into its shell with the disks attached
// writable (no snapshot, no overlay: repairs must reach the disks), and
// cleans up once the appliance is gone.
func (r *Runner) Rescue(ctx context.Context, o RescueOptions) error {
	s := jobScope{client: rescueScope, logDir: r.jobDir("rescue-disks")}
	if o.Client != nil {
		s = jobScope{client: o.Client.Name, logDir: r.jobDir("rescue-" + o.Client.Name)}
	}
	return r.reverted(ctx, s, nil, func(rv *reverter) error { return r.rescue(ctx, o, rv) })
}

func (r *Runner) rescue(ctx context.Context, o RescueOptions, rv *reverter) error {
	name := "disks"
	var disks []virt.ClientDisk
	j := &job.Job{Version: job.Version, Mode: job.ModeShell, RunID: r.RunID,
		TimeLimit: job.Duration{Duration: o.TimeLimit}, Shell: &job.Shell{Rescue: true, Mount: o.Mount}}
	if c := o.Client; c != nil {
		name = c.Name
		x, running, err := r.Virt.DomainXML(ctx, c.Domain)
		if err != nil {
			return err
		}
		if running {
			return fmt.Errorf("domain %s is running: shut it down first (virsh shutdown %s); a rescue writes to its disks", c.Domain, c.Domain)
		}
		if disks, err = virt.ClientDisks(x); err != nil {
			return err
		}
		if j.Shell.Mount == "" {
			j.Shell.Mount = c.Backup.Mount
		}
	}
	for _, p := range o.Disks {
		info, err := qemuImgInfo(ctx, p)
		if err != nil {
			return err
		}
		disks = append(disks, virt.ClientDisk{Target: fmt.Sprintf("vd%c", 'a'+len(disks)), Path: p, Format: info.Format})
	}
	if len(disks) == 0 {
		return fmt.Errorf("rescue: no disk to attach")
	}
	j.Client = name
	var attached []virt.DiskSpec
	for i, d := range disks {
		serial := fmt.Sprintf("%s%d", job.DiskSerialPrefix, i)
		attached = append(attached, virt.DiskSpec{Path: d.Path, Format: d.Format, Block: d.Block, Serial: serial})
		j.Disks = append(j.Disks, job.Disk{Serial: serial, Dev: d.Target})
	}
	dir := r.jobDir("rescue-" + name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	aj := applianceJob{dir: dir, job: j, disks: attached, attach: o.Attach}
	if o.Client != nil {
		aj.cache = o.Client.Name // its own cache (a plain client's files live there); with --disk only none
	}
	_, err := r.runAppliance(ctx, rv, aj)
	return err
}
