package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

type pruneOptions struct {
	progressOptions
	Trust bool
	JSON  bool
}

func newPruneCmd(g *Globals) *cobra.Command {
	var o pruneOptions
	cmd := &cobra.Command{
		Use:   "prune [CLIENT…] [--trust]",
		Short: "Apply the retention of append-only clients with the profile's maintenance credential",
		Long: `prune applies the retention of clients whose profile is append_only (their
backup jobs never prune) with the profile's maintenance.identity_file, the key
that may delete and that backup appliances never receive. Without CLIENT it
prunes every such client. Run it from its own timer (e.g. weekly), or prune on
the backup server instead (README: Append-only targets).

Each client's appliance first checks the repository (borg check: backups
written through an append-only key are trusted only after it) and compares its
backups with the ones this host recorded (<state_dir>/archives/CLIENT: each ok
backup, and what the last prune kept). It prunes nothing when they differ:
  - a recorded backup is gone: something deleted it with the append-only key,
    which borg turns into a transaction the server can roll back, until a
    prune compacts the repository; roll back first (README);
  - a backup this host did not record is there: retention would count it
    (planted backups newer than the real ones would make it drop those).
The first prune of a client (no record yet) takes the repository as it is, and
so does --trust (after you checked "hostctl list CLIENT"): e.g. for backups
from before the profile was append-only. The newest backup always stays
(keep_last is at least 1). The report names every backup removed.

` + progressHelp + `

` + exitCodeHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPrune(cmd.Context(), g, o, args)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *pruneOptions) AddFlags(f *pflag.FlagSet) {
	o.progressOptions.AddFlags(f)
	f.BoolVar(&o.Trust, "trust", false, "take the backups in the repository as they are, not only those this host recorded")
	f.BoolVar(&o.JSON, "json", false, "print the per-client reports as JSON on stdout")
}

func runPrune(ctx context.Context, g *Globals, o pruneOptions, names []string) error {
	_, selected, err := g.LoadClients(names)
	if err != nil {
		return err
	}
	var prunable []string
	for _, c := range selected {
		_, why := prunableDestinations(c)
		switch {
		case why == "":
			prunable = append(prunable, c.Name)
		case len(names) > 0:
			return &UsageError{fmt.Errorf("prune %s: %s", c.Name, why)}
		}
	}
	if len(prunable) == 0 {
		fmt.Fprintf(g.Stdout, "no client to prune: no profile is append_only with a maintenance.identity_file and a retention\n")
		return nil
	}
	g, sink, err := o.streams(g, o.JSON)
	if err != nil {
		return err
	}
	sp := sessionSpec{clients: prunable, image: true, progress: sink, reported: true, mode: report.ModePrune, asJSON: o.JSON}
	return g.withSession(ctx, sp, func(s *session, clients []*config.Resolved) error {
		started := time.Now()
		var dests []*config.Resolved
		for _, c := range clients {
			ds, _ := prunableDestinations(c)
			dests = append(dests, ds...)
		}
		reports := eachClient(ctx, dests, report.ModePrune, func(d *config.Resolved) *report.Job {
			name := destName(d)
			fmt.Fprintf(g.Stderr, "%s: prune with %s\n", name, runner.MaintenanceCredential(d))
			rep := s.runner.Prune(ctx, d, runner.PruneOptions{Trust: o.Trust})
			if rep.Status == job.StatusOK {
				removed := "nothing"
				if len(rep.Pruned) > 0 {
					removed = strings.Join(rep.Pruned, ", ")
				}
				fmt.Fprintf(g.Stderr, "%s: pruned %s; %d backup(s) kept\n", name, removed, rep.Kept)
			}
			return rep
		})
		return reportRun(ctx, g, s.cfg, s.runner.RunID(), started, reports, o.JSON)
	})
}

// prunableDestinations are the destinations of c that hostctl prune
// prunes (append-only, a maintenance credential, a retention); when there
// are none, why says why for each of its profiles.
func prunableDestinations(c *config.Resolved) (ds []*config.Resolved, why string) {
	var whys []string
	for _, d := range c.Destinations() {
		w := runner.PruneReady(d)
		if w == "" {
			ds = append(ds, d)
			continue
		}
		whys = append(whys, w) // each names its profile
	}
	if len(ds) == 0 {
		return nil, strings.Join(whys, "; ")
	}
	return ds, ""
}

// destName names a destination in hostctl's lines as its report row
// does: CLIENT, or CLIENT (PROFILE) for a client with several.
func destName(d *config.Resolved) string { return report.RowName(d.Name, d.RowProfile()) }
