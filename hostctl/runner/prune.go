package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
)

// RunsDir is where the runs' job directories live in the state dir:
// runs/RUN_ID/JOB/ with the appliance's console log, job log, result and
// progress, and, while a job runs, its overlays.
func RunsDir(stateDir string) string { return filepath.Join(stateDir, "runs") }

// PruneRuns removes all but the keep newest run directories (run ids sort
// by time), as report.Save does with the reports. A run directory that
// holds a resource the ledger still lists (the overlay of a leftover that
// could not be merged: guest writes) is kept whatever its age.
func PruneRuns(stateDir string, keep int, l *ledger.Ledger) error {
	if keep <= 0 {
		return nil
	}
	entries, err := os.ReadDir(RunsDir(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune runs: %w", err)
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			runs = append(runs, e.Name())
		}
	}
	if len(runs) <= keep {
		return nil
	}
	// Without the ledger, nothing is known to be safe to remove.
	recorded, err := l.List()
	if err != nil {
		return fmt.Errorf("prune runs: %w", err)
	}
	sort.Strings(runs)
	var errs []error
	for _, run := range runs[:len(runs)-keep] {
		dir := filepath.Join(RunsDir(stateDir), run)
		if holdsLeftover(dir, recorded) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("prune run %s: %w", run, err))
		}
	}
	return errors.Join(errs...)
}

func holdsLeftover(dir string, recorded []*ledger.Entry) bool {
	for _, e := range recorded {
		if e.Path != "" && strings.HasPrefix(e.Path, dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
