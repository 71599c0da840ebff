package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

type listOptions struct {
	JSON bool
}

func newListCmd(g *Globals) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list CLIENT",
		Short: "List a client's backups on its target (time, type, id), read by its backend",
		Long: `list boots the appliance with the client's repository and lets the client's
backend list it (borg list, restic snapshots, duplicity collection-status).
The ids it prints are what "hostctl restore --archive" takes.

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, clients, err := g.LoadClients(args)
			if err != nil {
				return err
			}
			s, err := openSession(cmd.Context(), cfg, g.Stderr, true)
			if err != nil {
				return err
			}
			defer s.close()
			snaps, err := s.runner.List(cmd.Context(), clients[0])
			if err != nil {
				return err
			}
			if o.JSON {
				enc := json.NewEncoder(g.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(snaps)
			}
			printSnapshots(g.Stdout, snaps)
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the list as JSON")
	return cmd
}

func printSnapshots(w io.Writer, snaps []job.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tTYPE\tID")
	for _, s := range snaps {
		kind := "incr"
		if s.Full {
			kind = "full"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.SnapshotTime.UTC().Format(time.DateTime), kind, s.Archive)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d backup(s)\n", len(snaps))
}
