package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
)

// timerUnit is the base name of the units install-timer writes;
// pruneUnit of hostctl prune's (for append-only profiles).
const (
	timerUnit = "hostctl-backup"
	pruneUnit = "hostctl-prune"
)

type installTimerOptions struct {
	OnCalendar      string
	PruneOnCalendar string
	Delay           string
	UnitDir         string
	Hostctl         string
	Print           bool
	// StopTimeout is TimeoutStopSec (stopTimeout computes it).
	StopTimeout time.Duration
}

func newInstallTimerCmd(g *Globals) *cobra.Command {
	var o installTimerOptions
	cmd := &cobra.Command{
		Use:   "install-timer",
		Short: "Install the systemd service and timer that run `hostctl run` nightly",
		Long: `install-timer writes ` + timerUnit + `.service (one "hostctl run" with this --config) and
` + timerUnit + `.timer into the unit directory, then enables the timer when systemd runs
this host. A missed run (host off at the time) is caught up at the next boot.
Runs never overlap: "hostctl run" holds a lock and the service is a oneshot.

Stopping the service (systemctl stop, shutdown) sends hostctl SIGTERM: it stops
the running job and cleans up (on_snapshot and post_snapshot still run, every
disk is merged back, the report is mailed). TimeoutStopSec, after which systemd
kills it outright, is computed to cover the longest such cleanup of any client:
  thaw + kill of the running hook + on_snapshot + post_snapshot (each up to the
  client's hooks.time_limit + 30s) + destroying the appliance (1m) + one
  cleanup per disk (10m each: merging an overlay back, removing an LVM
  snapshot) + the mail (3m) + 1m
with the disks counted in libvirt (4 assumed when the domain cannot be looked
up). Run install-timer again after giving a client more disks or longer hooks.

When a client's profile is append_only with a maintenance.identity_file,
` + pruneUnit + `.service ("hostctl prune") and its timer (--prune-on-calendar,
weekly by default) are written and enabled too; uninstall-timer removes both.

` + exitCodeHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstallTimer(cmd.Context(), g, o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *installTimerOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.OnCalendar, "on-calendar", "*-*-* 01:30:00", "when to run (systemd OnCalendar syntax)")
	f.StringVar(&o.PruneOnCalendar, "prune-on-calendar", "Sun *-*-* 05:00:00", "when hostctl prune runs, if any client's profile is append-only with a maintenance key")
	f.StringVar(&o.Delay, "randomized-delay", "15m", "random delay added to each start (RandomizedDelaySec)")
	f.StringVar(&o.UnitDir, "unit-dir", "/etc/systemd/system", "where the unit files go")
	f.StringVar(&o.Hostctl, "hostctl", "", "hostctl binary the service runs (default: this one)")
	f.BoolVar(&o.Print, "print", false, "print the units instead of installing them")
}

type uninstallTimerOptions struct {
	UnitDir string
}

func (o *uninstallTimerOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.UnitDir, "unit-dir", "/etc/systemd/system", "where the unit files are")
}

func newUninstallTimerCmd(g *Globals) *cobra.Command {
	var o uninstallTimerOptions
	cmd := &cobra.Command{
		Use:   "uninstall-timer",
		Short: "Stop, disable and remove the units install-timer wrote",
		Long: `uninstall-timer disables and stops ` + timerUnit + `.timer where systemd runs (a backup
in progress finishes), then removes ` + timerUnit + `.service and .timer from the unit directory.

` + exitCodeHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUninstallTimer(cmd.Context(), g, o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runUninstallTimer(ctx context.Context, g *Globals, o uninstallTimerOptions) error {
	if systemdRuns() {
		if _, err := execx.Output(ctx, "systemctl", "disable", "--now", timerUnit+".timer"); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(o.UnitDir, pruneUnit+".timer")); err == nil {
			if _, err := execx.Output(ctx, "systemctl", "disable", "--now", pruneUnit+".timer"); err != nil {
				return err
			}
		}
	}
	for _, name := range []string{timerUnit + ".timer", timerUnit + ".service", pruneUnit + ".timer", pruneUnit + ".service"} {
		p := filepath.Join(o.UnitDir, name)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		} else if err == nil {
			fmt.Fprintf(g.Stdout, "removed %s\n", p)
		}
	}
	if systemdRuns() {
		if _, err := execx.Output(ctx, "systemctl", "daemon-reload"); err != nil {
			return err
		}
	}
	return nil
}

// systemdRuns says whether systemd is PID 1 here (sd_booted's test).
func systemdRuns() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

// timerUnits renders the service and the timer; a pure function, checked
// against golden files and by systemd-analyze verify.
func timerUnits(hostctl, config string, o installTimerOptions) (service, timer string, err error) {
	return scheduledUnits(scheduled{
		what:     "back up libvirt VMs through the backup appliance",
		when:     "nightly hostctl run",
		exec:     fmt.Sprintf("%s run --progress text --config %s", hostctl, config),
		calendar: o.OnCalendar, unit: timerUnit,
	}, o)
}

// pruneUnits are the service and timer of hostctl prune, for clients of
// append-only profiles with a maintenance key.
func pruneUnits(hostctl, config string, o installTimerOptions) (service, timer string, err error) {
	return scheduledUnits(scheduled{
		what:     "prune append-only repositories with the maintenance key",
		when:     "hostctl prune",
		exec:     fmt.Sprintf("%s prune --progress text --config %s", hostctl, config),
		calendar: o.PruneOnCalendar, unit: pruneUnit,
	}, o)
}

// scheduled is one hostctl command on a timer.
type scheduled struct {
	what, when, exec, calendar, unit string
}

func scheduledUnits(sc scheduled, o installTimerOptions) (service, timer string, err error) {
	svc := []*unit.UnitSection{
		{Section: "Unit", Entries: []*unit.UnitEntry{
			{Name: "Description", Value: "snapshot-backup: " + sc.what},
			{Name: "After", Value: "libvirtd.service network-online.target"},
			{Name: "Wants", Value: "libvirtd.service network-online.target"},
		}},
		{Section: "Service", Entries: []*unit.UnitEntry{
			{Name: "Type", Value: "oneshot"},
			// The journal is no terminal: without --progress text it
			// would get no appliance steps.
			{Name: "ExecStart", Value: sc.exec},
			// Exit code 3 (some jobs skipped, none failed) is not a failure of the unit.
			{Name: "SuccessExitStatus", Value: "3"},
			// The jobs carry their own time limits; SIGTERM makes hostctl clean up.
			{Name: "TimeoutStartSec", Value: "infinity"},
			{Name: "KillMode", Value: "mixed"},
			// How long SIGTERM's cleanup may take (stopTimeout).
			{Name: "TimeoutStopSec", Value: fmt.Sprintf("%dmin", int((o.StopTimeout+time.Minute-1)/time.Minute))},
			// hostctl itself at low priority; the backends inside the
			// appliance get the configured nice/ionice from the supervisor.
			{Name: "Nice", Value: "19"},
			{Name: "IOSchedulingClass", Value: "idle"},
			{Name: "CPUSchedulingPolicy", Value: "batch"},
		}},
	}
	tim := []*unit.UnitSection{
		{Section: "Unit", Entries: []*unit.UnitEntry{
			{Name: "Description", Value: "snapshot-backup: " + sc.when},
		}},
		{Section: "Timer", Entries: []*unit.UnitEntry{
			{Name: "OnCalendar", Value: sc.calendar},
			{Name: "RandomizedDelaySec", Value: o.Delay},
			{Name: "Persistent", Value: "true"},
			{Name: "Unit", Value: sc.unit + ".service"},
		}},
		{Section: "Install", Entries: []*unit.UnitEntry{
			{Name: "WantedBy", Value: "timers.target"},
		}},
	}
	s, err := io.ReadAll(unit.SerializeSections(svc))
	if err != nil {
		return "", "", err
	}
	t, err := io.ReadAll(unit.SerializeSections(tim))
	if err != nil {
		return "", "", err
	}
	return string(s), string(t), nil
}

// assumedDisks is the disk count of a client whose domain cannot be looked
// up when the units are written.
const assumedDisks = 4

// stopTimeout is TimeoutStopSec: the longest cleanup of one job after
// SIGTERM (runner.StopBound) over all clients (one job runs at a time),
// then the report mail, and a minute to spare. It also says, per client,
// what it counted.
func stopTimeout(ctx context.Context, cfg *config.Config, disks DiskResolver) (time.Duration, []string) {
	var longest time.Duration
	var why []string
	names := make([]string, 0, len(cfg.Clients))
	for n := range cfg.Clients {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := cfg.Clients[n]
		var hookBound time.Duration
		if c.Hooks.Any() || c.Hooks.Freeze {
			limit := c.Hooks.TimeLimit.Duration
			if limit <= 0 {
				limit = config.DefaultHookTimeLimit
			}
			hookBound = hooks.StopBound(limit)
		}
		nd, note := 0, ""
		switch c.Type {
		case config.TypeLVMHost:
			nd = 1
		case config.TypeLVMLibvirt:
			nd, note = assumedDisks, fmt.Sprintf("domain %s: disks unknown, %d assumed", c.Domain, assumedDisks)
			if disks != nil {
				if d, err := disks.ClientDisks(ctx, c); err == nil {
					nd, note = len(d), ""
				}
			}
		}
		if note == "" {
			note = fmt.Sprintf("%d disk(s)", nd)
		}
		b := runner.StopBound(hookBound, nd)
		why = append(why, fmt.Sprintf("%s: %s, hooks %s: %s", n, note, hookBound.Round(time.Second), b.Round(time.Second)))
		longest = max(longest, b)
	}
	total := longest + mailTimeout + time.Minute
	why = append(why, fmt.Sprintf("longest job %s + mail %s + 1m = %s", longest.Round(time.Second), mailTimeout, total.Round(time.Second)))
	return total, why
}

func runInstallTimer(ctx context.Context, g *Globals, o installTimerOptions) error {
	cfg, err := g.LoadConfig()
	if err != nil {
		return err // never schedule a configuration that does not load
	}
	config, err := filepath.Abs(g.ConfigPath)
	if err != nil {
		return err
	}
	bin := o.Hostctl
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	var disks DiskResolver
	if lv, err := virt.NewLibvirt(cfg.Host.LibvirtURI); err == nil {
		defer lv.Close()
		disks = libvirtDisks{lv}
	}
	var why []string
	o.StopTimeout, why = stopTimeout(ctx, cfg, disks)
	fmt.Fprintf(g.Stdout, "# TimeoutStopSec covers the longest cleanup after SIGTERM:\n")
	for _, w := range why {
		fmt.Fprintf(g.Stdout, "#   %s\n", w)
	}
	type unitPair struct{ name, calendar, service, timer string }
	pairs := []unitPair{{name: timerUnit, calendar: o.OnCalendar}}
	if prunes(cfg) {
		pairs = append(pairs, unitPair{name: pruneUnit, calendar: o.PruneOnCalendar})
	}
	for i := range pairs {
		render := timerUnits
		if pairs[i].name == pruneUnit {
			render = pruneUnits
		}
		if pairs[i].service, pairs[i].timer, err = render(bin, config, o); err != nil {
			return err
		}
	}
	if o.Print {
		for _, u := range pairs {
			fmt.Fprintf(g.Stdout, "# %s\n%s\n# %s\n%s", u.name+".service", u.service, u.name+".timer", u.timer)
		}
		return nil
	}
	if err := os.MkdirAll(o.UnitDir, 0o755); err != nil {
		return err
	}
	for _, u := range pairs {
		for _, f := range [][2]string{{u.name + ".service", u.service}, {u.name + ".timer", u.timer}} {
			p := filepath.Join(o.UnitDir, f[0])
			if err := fsutil.WriteFileAtomic(p, []byte(f[1]), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
			fmt.Fprintf(g.Stdout, "wrote %s\n", p)
		}
	}
	if !systemdRuns() {
		for _, u := range pairs {
			fmt.Fprintf(g.Stdout, "systemd is not running here: enable later with\n  systemctl daemon-reload && systemctl enable --now %s.timer\n", u.name)
		}
		return nil
	}
	if _, err := execx.Output(ctx, "systemctl", "daemon-reload"); err != nil {
		return err
	}
	for _, u := range pairs {
		if _, err := execx.Output(ctx, "systemctl", "enable", "--now", u.name+".timer"); err != nil {
			return err
		}
		fmt.Fprintf(g.Stdout, "enabled %s.timer (%s); see: systemctl list-timers %s.timer\n", u.name, u.calendar, u.name)
	}
	return nil
}

// prunes says whether hostctl prune has a client to prune here.
func prunes(cfg *config.Config) bool {
	cls, err := cfg.SelectClients(nil)
	if err != nil {
		return false
	}
	for _, c := range cls {
		if runner.PruneReady(c) == "" {
			return true
		}
	}
	return false
}
