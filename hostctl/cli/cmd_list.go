package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
	"github.com/snapshot-backup/snapshot-backup/internal/units"
)

type listOptions struct {
	progressOptions
	Profile string
	JSON    bool
}

func newListCmd(g *Globals) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list CLIENT",
		Short: "List a client's backups on its target (time, type, size, id), read by its backend",
		Long: `list boots the appliance with the client's repository and lets the client's
backend list it (borg info, restic snapshots + stats, duplicity collection-status).

Columns:
  TIME    when the backup was taken (UTC)
  TYPE    duplicity: "full" starts a chain, "incr" needs its chain back to the
          full one (a restore reads them all). borg and restic: "snapshot",
          each backup complete on its own (restorable and removable alone),
          its data deduplicated against all others in the repository.
  SIZE    the data the backup holds (borg, restic); "-" for duplicity
  STORED  what it takes on the target: borg the deduplicated bytes no other
          archive shares, duplicity its volumes (file targets only); "-" for
          restic, which does not tell per snapshot
  VM RECORD "yes": the backup carries its VM record, the disk layout (disks,
          partition tables, filesystems with type, UUID, label and mount
          point) by which "hostctl recover" puts each filesystem back on its
          disk. borg and restic store it beside every backup; duplicity
          backups, and those made before hostctl recorded it, have none.
  ID      what "hostctl restore --archive" and "hostctl verify --archive" take

A client with several destinations (profiles = [...]): its first, or the one
--profile names.

--json prints the same as a list of records (snapshot_time, kind, full,
original_size, deduplicated_size = stored, vm_record, archive = ID).

` + progressHelp + `

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runList(cmd.Context(), g, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *listOptions) AddFlags(f *pflag.FlagSet) {
	o.progressOptions.AddFlags(f)
	addProfileFlag(f, &o.Profile)
	f.BoolVar(&o.JSON, "json", false, "print the list as JSON")
}

func runList(ctx context.Context, g *Globals, o listOptions, name string) error {
	g, sink, err := o.streams(g, o.JSON)
	if err != nil {
		return err
	}
	return g.withSession(ctx, sessionSpec{clients: []string{name}, image: true, progress: sink, profile: o.Profile}, func(s *session, clients []*config.Resolved) error {
		snaps, err := s.runner.List(ctx, clients[0])
		if err != nil {
			return err
		}
		return printResult(g.Stdout, o.JSON, snaps, func(w io.Writer) error {
			printSnapshots(w, snaps)
			return nil
		})
	})
}

func printSnapshots(w io.Writer, snaps []job.Snapshot) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tTYPE\tSIZE\tSTORED\tVM RECORD\tID")
	size := func(n int64) string {
		if n <= 0 {
			return "-"
		}
		return units.Bytes(n)
	}
	for _, s := range snaps {
		kind := s.Kind
		if kind == "" { // an appliance older than the kinds
			kind = map[bool]string{true: job.KindFull, false: job.KindIncr}[s.Full]
		}
		vm := "-"
		if s.VM {
			vm = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Time.UTC().Format(time.DateTime), kind, size(s.OriginalSize), size(s.DedupSize), vm, textsafe.Line(s.Archive))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d backup(s)\n", len(snaps))
}
