package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

func newCleanupCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cleanup",
		Short: "Remove what a crashed or killed run left behind (appliances, snapshots, overlays, job disks)",
		Long: `Every resource a run creates is recorded in the state dir's ledger before it is
created. cleanup undoes whatever is still recorded: destroys leftover appliance
domains, merges external snapshots back (blockcommit while the domain runs,
qemu-img commit when it is shut off; a commit a killed hostctl left running is
taken over: waited for and pivoted), resumes domains it suspended, thaws
filesystems it froze, and deletes overlays and job disks. "hostctl run" does
the same before it starts; there a leftover that cannot be removed fails the
jobs of its client only (the report says why), and the other clients run.
cleanup exits 1 while anything stays recorded.

` + exitCodeHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCleanup(cmd.Context(), g)
		},
	}
}

// runCleanup has no options: cleanup takes no flags (the lock is never
// waited for, the ledger is all there is to undo).
func runCleanup(ctx context.Context, g *Globals) error {
	return g.withSession(ctx, sessionSpec{noClients: true, log: g.Stdout}, func(s *session, _ []*config.Client) error {
		if err := s.runner.Leftovers.Err(); err != nil {
			return fmt.Errorf("leftovers could not be removed; they stay recorded in %s: %w", s.runner.Ledger.Dir(), err)
		}
		fmt.Fprintln(g.Stdout, "nothing left behind")
		return nil
	})
}
