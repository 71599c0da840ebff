package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCleanupCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cleanup",
		Short: "Remove what a crashed or killed run left behind (appliances, snapshots, overlays, job disks)",
		Long: `Every resource a run creates is recorded in the state dir's ledger before it is
created. cleanup undoes whatever is still recorded: destroys leftover appliance
domains, merges external snapshots back (blockcommit while the domain runs,
qemu-img commit when it is shut off) and deletes overlays and job disks.
"hostctl run" does the same before it starts.

` + exitCodeHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.LoadConfig()
			if err != nil {
				return err
			}
			s, err := openSession(cmd.Context(), cfg, g.Stdout, false)
			if err != nil {
				return err
			}
			s.close()
			fmt.Fprintln(g.Stdout, "nothing left behind")
			return nil
		},
	}
}
