package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
)

// Dir is where run reports live in the state dir, one JSON file per run.
func Dir(stateDir string) string { return filepath.Join(stateDir, "reports") }

// Save writes r as <state_dir>/reports/<id>.json (atomically) and removes
// the oldest reports beyond keep.
func Save(stateDir string, r *Run, keep int) (string, error) {
	dir := Dir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, r.ID+".json")
	if err := fsutil.WriteFileAtomic(p, append(data, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("save report: %w", err)
	}
	names, err := list(dir)
	if err != nil {
		return p, err
	}
	if keep > 0 && len(names) > keep {
		for _, n := range names[:len(names)-keep] {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
	return p, nil
}

// Last returns up to n reports, newest first. Unreadable files are skipped.
func Last(stateDir string, n int) ([]*Run, error) {
	dir := Dir(stateDir)
	names, err := list(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var runs []*Run
	for i := len(names) - 1; i >= 0 && (n <= 0 || len(runs) < n); i-- {
		data, err := os.ReadFile(filepath.Join(dir, names[i]))
		if err != nil {
			continue
		}
		var r Run
		if json.Unmarshal(data, &r) == nil {
			runs = append(runs, &r)
		}
	}
	return runs, nil
}

// list returns the report file names, oldest first (run ids sort by time).
func list(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
