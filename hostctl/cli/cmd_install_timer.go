package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/spf13/cobra"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
)

// timerUnit is the base name of the units install-timer writes.
const timerUnit = "hostctl-backup"

type installTimerOptions struct {
	OnCalendar string
	Delay      string
	UnitDir    string
	Hostctl    string
	Print      bool
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

` + exitCodeHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstallTimer(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.OnCalendar, "on-calendar", "*-*-* 01:30:00", "when to run (systemd OnCalendar syntax)")
	f.StringVar(&o.Delay, "randomized-delay", "15m", "random delay added to each start (RandomizedDelaySec)")
	f.StringVar(&o.UnitDir, "unit-dir", "/etc/systemd/system", "where the unit files go")
	f.StringVar(&o.Hostctl, "hostctl", "", "hostctl binary the service runs (default: this one)")
	f.BoolVar(&o.Print, "print", false, "print the units instead of installing them")
	return cmd
}

func newUninstallTimerCmd(g *Globals) *cobra.Command {
	var unitDir string
	cmd := &cobra.Command{
		Use:   "uninstall-timer",
		Short: "Stop, disable and remove the units install-timer wrote",
		Long: `uninstall-timer disables and stops ` + timerUnit + `.timer where systemd runs (a backup
in progress finishes), then removes ` + timerUnit + `.service and .timer from the unit directory.

` + exitCodeHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if systemdRuns() {
				if _, err := execx.Output(ctx, "systemctl", "disable", "--now", timerUnit+".timer"); err != nil {
					return err
				}
			}
			for _, name := range []string{timerUnit + ".timer", timerUnit + ".service"} {
				p := filepath.Join(unitDir, name)
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
		},
	}
	cmd.Flags().StringVar(&unitDir, "unit-dir", "/etc/systemd/system", "where the unit files are")
	return cmd
}

// systemdRuns says whether systemd is PID 1 here (sd_booted's test).
func systemdRuns() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

// timerUnits renders the service and the timer; a pure function, checked
// against golden files and by systemd-analyze verify.
func timerUnits(hostctl, config string, o installTimerOptions) (service, timer string, err error) {
	svc := []*unit.UnitSection{
		{Section: "Unit", Entries: []*unit.UnitEntry{
			{Name: "Description", Value: "snapshot-backup: back up libvirt VMs through the backup appliance"},
			{Name: "After", Value: "libvirtd.service network-online.target"},
			{Name: "Wants", Value: "libvirtd.service network-online.target"},
		}},
		{Section: "Service", Entries: []*unit.UnitEntry{
			{Name: "Type", Value: "oneshot"},
			{Name: "ExecStart", Value: fmt.Sprintf("%s run --config %s", hostctl, config)},
			// Exit code 3 (some jobs skipped, none failed) is not a failure of the unit.
			{Name: "SuccessExitStatus", Value: "3"},
			// The jobs carry their own time limits; SIGTERM makes hostctl clean up.
			{Name: "TimeoutStartSec", Value: "infinity"},
			{Name: "KillMode", Value: "mixed"},
			{Name: "TimeoutStopSec", Value: "10min"},
			// hostctl itself at low priority; the backends inside the
			// appliance get the configured nice/ionice from the supervisor.
			{Name: "Nice", Value: "19"},
			{Name: "IOSchedulingClass", Value: "idle"},
			{Name: "CPUSchedulingPolicy", Value: "batch"},
		}},
	}
	tim := []*unit.UnitSection{
		{Section: "Unit", Entries: []*unit.UnitEntry{
			{Name: "Description", Value: "snapshot-backup: nightly hostctl run"},
		}},
		{Section: "Timer", Entries: []*unit.UnitEntry{
			{Name: "OnCalendar", Value: o.OnCalendar},
			{Name: "RandomizedDelaySec", Value: o.Delay},
			{Name: "Persistent", Value: "true"},
			{Name: "Unit", Value: timerUnit + ".service"},
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

func runInstallTimer(ctx context.Context, g *Globals, o installTimerOptions) error {
	if _, err := g.LoadConfig(); err != nil {
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
	service, timer, err := timerUnits(bin, config, o)
	if err != nil {
		return err
	}
	if o.Print {
		fmt.Fprintf(g.Stdout, "# %s\n%s\n# %s\n%s", timerUnit+".service", service, timerUnit+".timer", timer)
		return nil
	}
	if err := os.MkdirAll(o.UnitDir, 0o755); err != nil {
		return err
	}
	for name, content := range map[string]string{timerUnit + ".service": service, timerUnit + ".timer": timer} {
		p := filepath.Join(o.UnitDir, name)
		if err := fsutil.WriteFileAtomic(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		fmt.Fprintf(g.Stdout, "wrote %s\n", p)
	}
	if !systemdRuns() {
		fmt.Fprintf(g.Stdout, "systemd is not running here: enable later with\n  systemctl daemon-reload && systemctl enable --now %s.timer\n", timerUnit)
		return nil
	}
	for _, argv := range [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "--now", timerUnit + ".timer"}} {
		if _, err := execx.Output(ctx, argv...); err != nil {
			return err
		}
	}
	fmt.Fprintf(g.Stdout, "enabled %s.timer (%s); see: systemctl list-timers %s.timer\n", timerUnit, o.OnCalendar, timerUnit)
	return nil
}
