package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

type restoreOptions struct {
	progressOptions
	GPGKeys []string
	ToDir   string
	ToDisk  string
	To      string // deprecated: --to-dir or --to-disk by what the path is
	Archive string
	Time    string
	Paths   []string
	Mount   string
	Profile string
	JSON    bool
	// recover's flags, refused here with where they belong: the ones
	// given on the command line.
	inPlace      recoverOptions
	inPlaceGiven []string
}

func newRestoreCmd(g *Globals) *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore CLIENT --to-dir DIR | --to-disk IMAGE [--path P…] [--time T | --archive ID]",
		Short: "Restore a client's backup (all or single paths) into a directory or a disk image",
		Long: `Restore a client's backup through the appliance, into one destination:

--to-dir DIR      an empty (or new) directory on this host receives the tree;
                  it is made mode 0700 (an existing empty one is chmod'ed,
                  one owned by another user refused): the appliance restores
                  as root through 9p, so the tree has the guest's owners,
                  setuid files and device nodes, which no other local user
                  may reach. Make it 0755 yourself once you have looked.
--to-disk IMAGE   a disk image file (raw or qcow2); its filesystem, chosen with
                  --mount (default: the only or largest one), receives the tree
--path P          restore only P and what is below it, P relative to the
                  backed-up root ("etc/nginx", "/etc/nginx" is the same);
                  repeatable. A path not in the backup is an error.
--archive ID      the backup to restore, as "hostctl list CLIENT" shows it
                  (default: the latest)
` + timeArgHelp + `

To bring a VM itself back, onto its own disks, use "hostctl recover CLIENT"
(in-place recovery; it asks first).

The repository is read with the client's profile (borg, restic or duplicity).
A client with several destinations (profiles = [...]) is restored from its
first unless --profile names another.
The backups are plain repositories of those tools: without hostctl, "borg
extract", "restic restore" and "duplicity restore" restore them too (README).

` + progressHelp + `

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range inPlaceFlags {
				if cmd.Flags().Changed(n) {
					o.inPlaceGiven = append(o.inPlaceGiven, n)
				}
			}
			return runRestore(cmd.Context(), g, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *restoreOptions) AddFlags(f *pflag.FlagSet) {
	addGPGKeyFlag(f, &o.GPGKeys)
	addProfileFlag(f, &o.Profile)
	o.progressOptions.AddFlags(f)
	f.StringVar(&o.ToDir, "to-dir", "", "restore into this empty (or new) host directory, made mode 0700")
	f.StringVar(&o.ToDisk, "to-disk", "", "restore into the filesystem of this disk image")
	f.StringVar(&o.To, "to", "", "a directory or disk image, told apart by what exists there")
	_ = f.MarkDeprecated("to", "use --to-dir DIR or --to-disk IMAGE")
	f.StringVar(&o.Archive, "archive", "", "backup to restore, an ID from hostctl list (default: the latest)")
	f.StringVar(&o.Time, "time", "", `restore the newest backup at or before this time ("2026-11-20 03:30", RFC 3339)`)
	f.StringArrayVar(&o.Paths, "path", nil, `restore only this path of the tree, e.g. "etc/nginx" (repeatable)`)
	f.BoolVar(&o.JSON, "json", false, "print the job's report (backup restored, timings) as JSON on stdout")
	f.StringVar(&o.Mount, "mount", "", `filesystem on --to-disk: "vda2", "LABEL=…", "UUID=…" (default: auto)`)
	// The in-place recovery's flags moved to recover with it: kept hidden
	// here so that they fail with where to find them.
	o.inPlace.addInPlaceFlags(f)
	for _, n := range inPlaceFlags {
		_ = f.MarkHidden(n)
	}
}

var inPlaceFlags = []string{"mkfs", "dry-run", "shutdown-timeout", "agent-timeout"}

func runRestore(ctx context.Context, g *Globals, o restoreOptions, name string) error {
	if len(o.inPlaceGiven) > 0 {
		n := o.inPlaceGiven[0]
		return &UsageError{fmt.Errorf("restore: --%s is for the in-place recovery: hostctl recover %s --%s", n, name, n)}
	}
	if o.To == "" && o.ToDir == "" && o.ToDisk == "" {
		// An in-place recovery empties the VM's filesystems: it is its own
		// verb, which asks, never what a forgotten flag falls back to.
		what := "restore needs a destination (--to-dir or --to-disk)"
		if len(o.Paths) > 0 || o.Mount != "" {
			what = "restore: --path and --mount need a destination (--to-dir or --to-disk)"
		}
		return &UsageError{fmt.Errorf("%s; to recover the VM itself in place (its filesystems emptied and restored) use: hostctl recover %s", what, name)}
	}
	ro, err := o.resolve()
	if err != nil {
		return err
	}
	g, sink, err := o.streams(g, o.JSON)
	if err != nil {
		return err
	}
	return g.withSession(ctx, sessionSpec{clients: []string{name}, image: true, progress: sink, profile: o.Profile}, func(s *session, clients []*config.Resolved) error {
		rep := s.runner.Restore(ctx, clients[0], ro)
		restored := rep.Status == job.StatusOK || rep.Status == job.StatusWarning
		err := printResult(g.Stdout, o.JSON, rep, func(w io.Writer) error {
			if restored {
				fmt.Fprintf(w, "restored %s backup %s to %s in %s\n", name, textsafe.Line(rep.Archive), ro.Dir+ro.Disk, rep.Elapsed.Round(time.Second))
			}
			return nil
		})
		if err != nil {
			return err
		}
		return restoreOutcome("restore of "+name, rep)
	})
}

// restoreOutcome is the error of a restore or recovery that did not end
// ok: with warnings (exit 5) what the tool could not restore, else the
// failure.
func restoreOutcome(what string, rep *report.Job) error {
	switch rep.Status {
	case job.StatusOK:
		return nil
	case job.StatusWarning:
		return &ExitError{Code: ExitWarning, Err: fmt.Errorf("%s ended with warnings, not everything is restored: %s", what, textsafe.Line(rep.Warning))}
	}
	return fmt.Errorf("%s: %s", what, rep.Error)
}

// resolve checks the flags (usage errors before anything boots) and turns
// them into runner options.
func (o restoreOptions) resolve() (runner.RestoreOptions, error) {
	ro := runner.RestoreOptions{Archive: o.Archive, Mount: o.Mount, Paths: o.Paths, Dir: o.ToDir, Disk: o.ToDisk, GPGKeys: o.GPGKeys}
	if o.To != "" {
		if o.ToDir != "" || o.ToDisk != "" {
			return ro, &UsageError{fmt.Errorf("restore: --to and --to-dir/--to-disk: give one destination")}
		}
		if fi, err := os.Stat(o.To); err == nil && fi.Mode().IsRegular() {
			ro.Disk = o.To
		} else if err == nil && !fi.IsDir() {
			return ro, &UsageError{fmt.Errorf("restore: %s is neither a directory nor a disk image file", o.To)}
		} else {
			ro.Dir = o.To
		}
	}
	switch {
	case ro.Dir != "" && ro.Disk != "":
		return ro, &UsageError{fmt.Errorf("restore: --to-dir and --to-disk: give one destination")}
	case ro.Disk != "":
		if fi, err := os.Stat(ro.Disk); err != nil || !fi.Mode().IsRegular() {
			return ro, &UsageError{fmt.Errorf("restore: --to-disk %s: not a disk image file", ro.Disk)}
		}
	case ro.Dir != "":
		if fi, err := os.Stat(ro.Dir); err == nil && !fi.IsDir() {
			return ro, &UsageError{fmt.Errorf("restore: --to-dir %s: exists and is not a directory", ro.Dir)}
		}
	}
	var err error
	ro.Time, err = backupSelector("restore", o.Archive, o.Time, o.Paths)
	return ro, err
}
