package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// recoverOptions are the flags of `hostctl restore CLIENT` without a
// destination: the in-place recovery.
type recoverOptions struct {
	MkFS            bool
	DryRun          bool
	ShutdownTimeout time.Duration
	AgentTimeout    time.Duration
}

const recoverHelp = `
In-place recovery (hostctl restore CLIENT, no --to)
  Brings a lost VM back from its backup. The client domain must exist as a
  freshly installed ("blank") VM with the backed-up disk layout: the same
  disks, partitions and LVM volumes, each with a filesystem of the backed-up
  type (their UUIDs do not matter). Steps, each reported:
    1. pre_recovery runs in the running blank VM (guest agent or ssh); if it
       fails, nothing is changed and the VM keeps running
    2. the VM is shut down (guest agent or ACPI power button), and forced
       off after --shutdown-timeout
    3. the appliance boots with the VM's disks attached writable, mounts its
       filesystems as backup.mount says (e.g. "fstab": by the blank system's
       /etc/fstab), EMPTIES them (everything but lost+found; --mkfs: creates
       them afresh with the same type, label and UUID instead, for damaged
       ones), and restores the archive (--archive, default the latest) with
       the client's backend (restic stages the whole tree on the root
       filesystem first: it needs room there)
    4. every filesystem gets the UUID and label that the restored /etc/fstab
       names for its mount point (tune2fs, xfs_admin, btrfstune, fatlabel):
       the restored fstab and boot configuration find their disks although
       the blank install made new filesystems; the tree is then mounted
       again by the restored fstab's names, which proves it
    5. end_recovery runs chrooted into the restored tree (/dev, /proc, /sys
       bound), e.g. to reinstall a boot loader; then everything is unmounted,
       the appliance powers off and the disks are detached
    6. the VM is started; post_recovery runs in it once its guest agent
       answers (at most --agent-timeout)
  A failed step leaves the VM shut off with its disks detached (the
  appliance gone) and says how to continue: rerun (with --mkfs when the
  filesystems are missing or damaged) or inspect with "hostctl rescue CLIENT".
  A shut-off VM skips steps 1 and 2. --dry-run prints the plan and changes
  nothing. Hooks are set in the client's [hooks] table: pre_recovery,
  end_recovery, post_recovery (time_limit applies to each).
`

func (o *recoverOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.MkFS, "mkfs", false, "in-place recovery: create the client's filesystems afresh instead of emptying them")
	f.BoolVar(&o.DryRun, "dry-run", false, "in-place recovery: print the plan (steps, disks, filesystems, archive, hooks) and change nothing")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", runner.DefaultShutdownTimeout, "in-place recovery: graceful shutdown time before the client is forced off")
	f.DurationVar(&o.AgentTimeout, "agent-timeout", runner.DefaultAgentTimeout, "in-place recovery: how long to wait for the restored client's guest agent before post_recovery")
}

// onlyInPlace refuses the recovery flags with a destination.
func (o *recoverOptions) onlyInPlace(cmd *cobra.Command) error {
	for _, n := range []string{"mkfs", "dry-run", "shutdown-timeout", "agent-timeout"} {
		if cmd.Flags().Changed(n) {
			return &UsageError{fmt.Errorf("restore: --%s is for the in-place recovery (without a destination)", n)}
		}
	}
	return nil
}

func runRecover(cmd *cobra.Command, g *Globals, o recoverOptions, archive string, at time.Time, name string) error {
	ctx := cmd.Context()
	if o.ShutdownTimeout <= 0 || o.AgentTimeout <= 0 {
		return &UsageError{fmt.Errorf("restore: --shutdown-timeout and --agent-timeout must be > 0")}
	}
	cfg, clients, err := g.LoadClients([]string{name})
	if err != nil {
		return err
	}
	ro := runner.RecoverOptions{Archive: archive, Time: at, MkFS: o.MkFS, ShutdownTimeout: o.ShutdownTimeout, AgentTimeout: o.AgentTimeout}
	if o.DryRun {
		// No lock, no ledger, no cleanup of old leftovers: a dry run only
		// reads the domain's definition.
		lv, err := virt.NewLibvirt(cfg.Host.LibvirtURI)
		if err != nil {
			return err
		}
		defer lv.Close()
		r := &runner.Runner{Cfg: cfg, Virt: lv, Out: g.Stderr, RunID: runner.NewRunID(time.Now())}
		p, err := r.PlanRecovery(ctx, clients[0], ro)
		if err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
		for _, l := range p.Lines() {
			fmt.Fprintln(g.Stdout, l)
		}
		fmt.Fprintln(g.Stdout, "dry run: nothing was changed")
		return nil
	}
	s, err := openSession(ctx, cfg, g.Stderr, true)
	if err != nil {
		return err
	}
	defer s.close()
	rep := s.runner.Recover(ctx, clients[0], ro)
	if rep.Status != runner.StatusOK {
		return fmt.Errorf("in-place recovery of %s: %s", name, rep.Error)
	}
	fmt.Fprintf(g.Stdout, "recovered %s from archive %s in %s; domain %s is running\n", name, textsafe.Line(rep.Archive), rep.Elapsed.Round(time.Second), clients[0].Domain)
	return nil
}
