package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
)

type statusOptions struct {
	N    int
	JSON bool
}

func newStatusCmd(g *Globals) *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the last runs: one line each, then the latest run's full report",
		Long: `Show the reports of the last runs, read from <state_dir>/reports/ (one JSON file
per run, written by every hostctl run). Exit code 0 when the latest run
succeeded, 1 when a job of it failed or no run is recorded, 5 when a backup
of it ended with warnings, 3 when it only skipped jobs.

` + exitCodeHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(g, o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *statusOptions) AddFlags(f *pflag.FlagSet) {
	f.IntVarP(&o.N, "last", "n", 10, "how many runs to list")
	f.BoolVar(&o.JSON, "json", false, "print the reports as JSON")
}

// runStatus reads files only: it takes no context.
func runStatus(g *Globals, o statusOptions) error {
	cfg, err := g.LoadConfig()
	if err != nil {
		return err
	}
	runs, err := report.Last(cfg.Host.StateDir, o.N)
	if err != nil {
		return err
	}
	// With --json the exit code is 0: the reports say the rest.
	return printResult(g.Stdout, o.JSON, runs, func(w io.Writer) error {
		if len(runs) == 0 {
			fmt.Fprintf(w, "no runs recorded in %s\n", report.Dir(cfg.Host.StateDir))
			return &ExitError{Code: ExitFailed}
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSTATUS\tEXIT\tTIME\tOK\tWARNING\tFAILED\tSKIPPED")
		for _, r := range runs {
			c := r.Tally()
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\n", r.ID, r.Status(), r.ExitCode, r.Elapsed.Round(time.Second), c.OK, c.Warning, c.Failed, c.Skipped)
		}
		tw.Flush()
		fmt.Fprintln(w)
		fmt.Fprint(w, report.Text(runs[0]))
		return statusExit(runs[0])
	})
}

// statusExit is hostctl status's exit for the latest run: its status in
// the run's own exit code order.
func statusExit(r *report.Run) error {
	switch r.Status() {
	case "failed":
		return &ExitError{Code: ExitFailed}
	case "warning":
		return &ExitError{Code: ExitWarning}
	case "partial":
		return &ExitError{Code: ExitPartial}
	}
	return nil
}
