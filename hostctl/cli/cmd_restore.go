package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
)

type restoreOptions struct {
	To      string
	Archive string
	Mount   string
	recoverOptions
}

func newRestoreCmd(g *Globals) *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore CLIENT [--to PATH|DISK]",
		Short: "Recover a client VM in place, or restore its backup into a directory or a disk image",
		Long: `Restore a client's backup through the appliance.

(no --to)   in-place recovery of the client VM: see "In-place recovery" below
--to PATH   an empty (or new) directory on this host; the tree is extracted into it
--to DISK   a disk image file; its filesystem (chosen with --mount, default: the only
            or largest one) receives the tree
` + recoverHelp + `
The backup repository is read with the client's profile; --archive picks an
archive (default: the latest). The backups are plain borg repositories: without
hostctl, "borg extract" restores them too (see the README).

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd, g, o, args[0])
		},
	}
	cmd.Flags().StringVar(&o.To, "to", "", "destination: a directory or a disk image (required)")
	cmd.Flags().StringVar(&o.Archive, "archive", "", "archive to restore (default: the latest)")
	cmd.Flags().StringVar(&o.Mount, "mount", "", `filesystem on a destination disk: "vda2", "LABEL=…", "UUID=…" (default: auto)`)
	o.recoverOptions.addFlags(cmd)
	return cmd
}

func runRestore(cmd *cobra.Command, g *Globals, o restoreOptions, name string) error {
	ctx := cmd.Context()
	if o.To == "" {
		return runRecover(cmd, g, o.recoverOptions, o.Archive, name)
	}
	if err := o.recoverOptions.onlyInPlace(cmd); err != nil {
		return err
	}
	cfg, clients, err := g.LoadClients([]string{name})
	if err != nil {
		return err
	}
	ro := runner.RestoreOptions{Archive: o.Archive, Mount: o.Mount}
	if fi, err := os.Stat(o.To); err == nil && fi.Mode().IsRegular() {
		ro.Disk = o.To
	} else if err == nil && !fi.IsDir() {
		return &UsageError{fmt.Errorf("restore: %s is neither a directory nor a disk image file", o.To)}
	} else {
		ro.Dir = o.To
	}
	s, err := openSession(ctx, cfg, g.Stderr, true)
	if err != nil {
		return err
	}
	defer s.close()
	rep := s.runner.Restore(ctx, clients[0], ro)
	if rep.Status != runner.StatusOK {
		return fmt.Errorf("restore of %s: %s", name, rep.Error)
	}
	fmt.Fprintf(g.Stdout, "restored %s archive %s to %s in %s\n", name, rep.Archive, o.To, rep.Elapsed.Round(time.Second))
	return nil
}
