package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// shellTable is mode shell: the rescue shell, with no repository.
func shellTable(s *job.Shell) modeTable {
	return modeTable{job.ModeShell, repoNone, func(j *job.Job) { j.Shell = s }}
}

// RescueOptions say what the rescue appliance gets.
type RescueOptions struct {
	// Client, when set, is the shut-off client whose disks are attached.
	Client *config.Resolved
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
	shell := &job.Shell{Rescue: true, Mount: o.Mount}
	if c := o.Client; c != nil {
		name = c.Name
		x, running, err := r.virt.DomainXML(ctx, c.Domain)
		if err != nil {
			return err
		}
		if running {
			return fmt.Errorf("domain %s is running: shut it down first (virsh shutdown %s); a rescue writes to its disks", c.Domain, c.Domain)
		}
		if disks, err = virt.ClientDisks(x); err != nil {
			return err
		}
		if shell.Mount == "" {
			shell.Mount = c.Tree.Mount
		}
	}
	for _, p := range o.Disks {
		info, err := r.images.Info(ctx, p)
		if err != nil {
			return err
		}
		disks = append(disks, virt.ClientDisk{Target: fmt.Sprintf("vd%c", 'a'+len(disks)), Path: p, Format: info.Format})
	}
	if len(disks) == 0 {
		return fmt.Errorf("rescue: no disk to attach")
	}
	// With a client its own cache (a plain client's files live there);
	// with --disk only none.
	aj, err := r.newJob(o.Client, shellTable(shell), named("rescue-"+name), timeLimit(o.TimeLimit),
		withDisks(disks), withConsole(o.Attach))
	if err != nil {
		return err
	}
	_, err = r.runAppliance(ctx, rv, aj)
	return err
}
