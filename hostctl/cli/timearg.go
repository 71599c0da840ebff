package cli

import (
	"github.com/spf13/pflag"

	"fmt"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// timeLayouts are the forms --time accepts: RFC 3339 with a zone, or a
// date and time of day in the host's local time zone.
var timeLayouts = []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"}

// parseTimeArg reads a --time value ("" = unset).
func parseTimeArg(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for i, l := range timeLayouts {
		loc := time.Local
		if i == 0 {
			loc = time.UTC // RFC 3339 carries its own zone
		}
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &UsageError{fmt.Errorf(`%s %q: want RFC 3339 ("2026-11-20T03:30:00Z") or local "2026-11-20 03:30[:00]"`, flag, s)}
}

// timeArgHelp documents --time for restore and verify.
const timeArgHelp = `--time T selects the newest backup taken at or before T: RFC 3339
("2026-11-20T03:30:00Z", "2026-11-20T04:30:00+01:00") or the host's local time
("2026-11-20 03:30", "2026-11-20 03:30:15"). "hostctl list CLIENT" shows the times.`

// checkPathArg checks a --path value as the appliance will.
func checkPathArg(p string) error {
	if _, err := job.CleanPaths([]string{p}); err != nil {
		return &UsageError{fmt.Errorf("--path: %w", err)}
	}
	return nil
}

// backupSelector checks --archive/--time/--path of restore and verify and
// returns the time.
func backupSelector(cmd, archive, at string, paths []string) (time.Time, error) {
	if archive != "" && at != "" {
		return time.Time{}, &UsageError{fmt.Errorf("%s: --archive and --time both select a backup: give one", cmd)}
	}
	for _, p := range paths {
		if err := checkPathArg(p); err != nil {
			return time.Time{}, err
		}
	}
	return parseTimeArg("--time", at)
}

// addGPGKeyFlag is --gpg-key of the commands that read a backup's content
// (restore, recover, verify).
func addGPGKeyFlag(f *pflag.FlagSet, keys *[]string) {
	f.StringArrayVar(keys, "gpg-key", nil, "a gpg key file for this job only, e.g. the recipient's secret key a duplicity profile keeps off this host (repeatable)")
}

// addProfileFlag is --profile of the commands that read one destination.
func addProfileFlag(f *pflag.FlagSet, profile *string) {
	f.StringVar(profile, "profile", "", "for a client with several destinations (profiles = [...]): the one to read, by profile name (default: its first)")
}
