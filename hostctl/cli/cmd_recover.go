package cli

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// recoverOptions are the flags of `hostctl recover CLIENT`, the in-place
// recovery.
type recoverOptions struct {
	progressOptions
	GPGKeys         []string
	Archive         string
	Time            string
	MkFS            bool
	DryRun          bool
	Yes             bool
	ShutdownTimeout time.Duration
	AgentTimeout    time.Duration
	DiskDir, VG     string
}

const recoverHelp = `Brings a lost VM back from its backup: its own disks receive the backup.
Every backup carries a VM record (the domain's definition,
each disk's size and partition table, the guest LVM, the filesystems with
their UUIDs, labels and mount points, swap, the boot loader), and recover
starts from what it finds:
  1. the domain exists and its disks have filesystems (a blank install):
     the backup's mount points are matched to them by the record (same
     disk, partition or LV, same type); one without its counterpart stops
     the recovery before any disk is touched (--mkfs makes it)
  2. the domain exists and its disks are empty (no partition, no
     signature, zeros at the start): the recorded partition tables, guest
     LVM, filesystems and swap are made on them, with the recorded UUIDs
     and labels
  3. the domain does not exist: pass --disk-dir DIR (its disks become
     sparse qcow2 files DIR/DOMAIN-vda.qcow2, …) or --vg VG (logical
     volumes VG/DOMAIN-vda, …), at the recorded sizes; nothing existing is
     overwritten. The domain is defined from the recorded XML, rebuilt
     from an allow-list (memory, vCPUs, machine, firmware kind, disks,
     interfaces on a libvirt network or bridge, console, guest agent,
     graphics on 127.0.0.1): host devices, host directories, other disk
     sources, direct kernel boot, loader and emulator paths and QEMU
     command lines are left out, and the plan names each. Then 2. runs. A
     failed recovery removes the disks and the domain it made.
GRUB for BIOS is reinstalled on the recorded disk (the appliance's own
grub-install, with the restored /boot), so the VM boots from its disk.
A backup without a record (made before backups had one) needs the domain with the
backed-up layout and maps mount points by the blank VM's /etc/fstab.
--dry-run prints the plan with the backup's VM record, which an appliance
reads first (as hostctl list does, its log in the state directory's runs);
it changes nothing.

It EMPTIES the VM's filesystems (or makes them). So it asks first: type the domain name at
the prompt, or pass --yes (needed when stdin is not a terminal: without a
terminal and without --yes it refuses and changes nothing). --dry-run never
asks and changes nothing.

Steps, each reported:
  1. pre_recovery runs in the running blank VM (guest agent or ssh); if it
     fails, nothing is changed and the VM keeps running
  2. the VM is shut down (guest agent or ACPI power button), and forced
     off after --shutdown-timeout
  3. the appliance boots with the VM's disks attached writable, lists the
     repository and finds the backup (--archive, --time, default the
     latest): a backup that is missing or holds no file is refused here,
     before a disk is touched; it then lays out blank disks and mounts the
     filesystems by the record (see above), EMPTIES them (everything but
     lost+found; --mkfs: creates them afresh with the same type, label and
     UUID instead, for damaged ones), and restores the backup with the
     client's backend (restic stages the whole tree on the root filesystem
     first: it needs room there)
  4. every filesystem gets the UUID and label that the restored /etc/fstab
     names for its mount point (tune2fs, xfs_admin, btrfstune, fatlabel):
     the restored fstab and boot configuration find their disks although
     the blank install made new filesystems; the tree is then mounted
     again by the restored fstab's names, which proves it
  5. GRUB for BIOS is reinstalled when the record names it (a failure is
     a warning: the data is restored); end_recovery runs chrooted into the
     restored tree (/dev, /proc, /sys bound); then everything is unmounted,
     the appliance powers off and the disks are detached
  6. the VM is started; post_recovery runs in it once its guest agent
     answers (at most --agent-timeout)
A failed step leaves the VM shut off with its disks detached (the
appliance gone) and says how to continue: rerun (with --mkfs when the
filesystems are missing or damaged) or inspect with "hostctl rescue CLIENT".
A shut-off VM skips steps 1 and 2. Hooks are set in the client's [hooks]
table: pre_recovery, end_recovery, post_recovery (time_limit applies to
each). Only lvm_libvirt clients are recovered in place; "hostctl restore
CLIENT --to-dir DIR" restores any client into a directory.
`

// addInPlaceFlags adds the flags of the recovery itself (restore has them
// hidden, to say where they belong).
func (o *recoverOptions) addInPlaceFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.MkFS, "mkfs", false, "create the client's filesystems afresh instead of emptying them")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the plan (steps, disks, filesystems, archive, hooks) and change nothing")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", runner.DefaultShutdownTimeout, "graceful shutdown time before the client is forced off")
	f.DurationVar(&o.AgentTimeout, "agent-timeout", runner.DefaultAgentTimeout, "how long to wait for the restored client's guest agent before post_recovery")
	f.StringVar(&o.DiskDir, "disk-dir", "", "the domain does not exist: make its disks as qcow2 files in this directory and define it from the backup's VM record")
	f.StringVar(&o.VG, "vg", "", "the domain does not exist: make its disks as logical volumes in this host volume group and define it from the backup's VM record")
}

func newRecoverCmd(g *Globals) *cobra.Command {
	var o recoverOptions
	cmd := &cobra.Command{
		Use:   "recover CLIENT [--archive ID | --time T] [--mkfs] [--disk-dir DIR | --vg VG] [--dry-run] [--yes]",
		Short: "Recover a lost client VM from its backup, onto its disks or onto disks and a domain made from its VM record (asks first)",
		Long:  recoverHelp + "\n" + timeArgHelp + "\n\n" + progressHelp + "\n\n" + exitCodeHelp,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecover(cmd.Context(), g, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *recoverOptions) AddFlags(f *pflag.FlagSet) {
	addGPGKeyFlag(f, &o.GPGKeys)
	o.progressOptions.AddFlags(f)
	f.StringVar(&o.Archive, "archive", "", "backup to restore, an ID from hostctl list (default: the latest)")
	f.StringVar(&o.Time, "time", "", `restore the newest backup at or before this time ("2026-11-20 03:30", RFC 3339)`)
	f.BoolVarP(&o.Yes, "yes", "y", false, "do not ask: the VM's filesystems are emptied without confirmation")
	o.addInPlaceFlags(f)
}

func runRecover(ctx context.Context, g *Globals, o recoverOptions, name string) error {
	if o.ShutdownTimeout <= 0 || o.AgentTimeout <= 0 {
		return &UsageError{fmt.Errorf("recover: --shutdown-timeout and --agent-timeout must be > 0")}
	}
	at, err := backupSelector("recover", o.Archive, o.Time, nil)
	if err != nil {
		return err
	}
	g, sink, err := o.streams(g, false)
	if err != nil {
		return err
	}
	if !o.Yes && !o.DryRun && !isTerminal(g.Stdin) {
		return &UsageError{fmt.Errorf("recover %s empties the filesystems of the client's domain and cannot ask (stdin is not a terminal): pass --yes to go on, or --dry-run to see the plan; nothing was changed", name)}
	}
	if o.DiskDir != "" && o.VG != "" {
		return &UsageError{fmt.Errorf("recover: --disk-dir and --vg exclude each other")}
	}
	if o.DiskDir != "" && !filepath.IsAbs(o.DiskDir) {
		return &UsageError{fmt.Errorf("recover: --disk-dir %q: an absolute path, please (libvirt resolves it, not this shell)", o.DiskDir)}
	}
	sp := sessionSpec{clients: []string{name}, image: true, progress: sink}
	cfg, clients, err := g.sessionClients(sp)
	if err != nil {
		return err
	}
	ro := runner.RecoverOptions{Archive: o.Archive, Time: at, MkFS: o.MkFS, GPGKeys: o.GPGKeys, ShutdownTimeout: o.ShutdownTimeout, AgentTimeout: o.AgentTimeout,
		DiskDir: o.DiskDir, VG: o.VG}
	// The plan (and the confirmation) take no lock, touch no ledger and
	// clean up no old leftovers: they only read the domain's definition.
	lv, err := virt.NewLibvirt(cfg.Host.LibvirtURI)
	if err != nil {
		return err
	}
	r := runner.New(cfg, runner.Deps{Virt: lv}, runner.WithOutput(g.Stderr))
	p, err := r.PlanRecovery(ctx, clients[0], ro)
	lv.Close()
	if err != nil {
		return fmt.Errorf("recover %s: %w", name, err)
	}
	// present shows the plan: printed for a dry run (goOn false), else
	// confirmed at the terminal unless --yes.
	present := func() (goOn bool, err error) {
		if o.DryRun {
			printRecoverPlan(g, p)
			return false, nil
		}
		if !o.Yes {
			if err := confirmRecover(g, p); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	// The plan of a domain to be made, and a dry run's, show the
	// backup's VM record: an appliance reads it (as hostctl list does),
	// which changes nothing but needs the session.
	withRecord := p.Missing || o.DryRun
	if !withRecord {
		if goOn, err := present(); !goOn || err != nil {
			return err
		}
	}
	return g.inSession(ctx, cfg, clients, sp, func(s *session, clients []*config.Resolved) error {
		if withRecord {
			if p.Missing {
				if err := s.runner.PlanRecreate(ctx, clients[0], p); err != nil {
					return fmt.Errorf("recover %s: %w", name, err)
				}
			} else {
				s.runner.PlanRecord(ctx, clients[0], p)
			}
			if goOn, err := present(); !goOn || err != nil {
				return err
			}
		}
		rep := s.runner.RecoverPlanned(ctx, clients[0], p)
		if rep.Status == job.StatusOK || rep.Status == job.StatusWarning {
			fmt.Fprintf(g.Stdout, "recovered %s from archive %s in %s; domain %s is running\n", name, textsafe.Line(rep.Archive), rep.Elapsed.Round(time.Second), clients[0].Domain)
		}
		return restoreOutcome("in-place recovery of "+name, rep)
	})
}

// printRecoverPlan prints a dry run's plan.
func printRecoverPlan(g *Globals, p *runner.RecoverPlan) {
	for _, l := range p.Lines() {
		fmt.Fprintln(g.Stdout, textsafe.Line(l))
	}
	fmt.Fprintln(g.Stdout, "dry run: nothing was changed")
}

// confirmRecover shows what the recovery destroys and wants the domain's
// name typed back on the terminal (runRecover refused already without one).
func confirmRecover(g *Globals, p *runner.RecoverPlan) error {
	for _, l := range p.Lines() {
		fmt.Fprintln(g.Stderr, textsafe.Line(l))
	}
	what := "EMPTIES"
	switch {
	case p.Missing:
		what = "MAKES the disks and the definition of a new VM, lays out and MAKES"
	case p.MkFS:
		what = "MAKES ANEW (--mkfs)"
	}
	fmt.Fprintf(g.Stderr, "\nThis %s the filesystems of domain %s (%s) and restores the backup into them.\nType the domain name to go on: ", what, p.Domain, strings.Join(p.DiskPaths(), ", "))
	line, _ := bufio.NewReader(g.Stdin).ReadString('\n')
	if strings.TrimSpace(line) != p.Domain {
		return &UsageError{fmt.Errorf("recover %s: not confirmed (%q is not %q): nothing was changed", p.Client, strings.TrimSpace(line), p.Domain)}
	}
	return nil
}
