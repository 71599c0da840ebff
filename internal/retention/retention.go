// Package retention turns a client's retention policy into the backends'
// own commands: borg prune, restic forget, duplicity remove-*. The
// appliance runs them after an "ok" backup; `hostctl check` prints them
// from the same builders, so what check shows is what runs. Both binaries
// import it (supervisor/backend cannot be: it runs tools in the appliance).
//
// Every policy keeps the newest backup. A count rule (keep_last, _daily,
// _weekly, _monthly >= 1) keeps it by itself: it is the first of its
// period. A policy of max_age alone gets --keep-last 1, because borg counts
// --keep-within from now: a max_age shorter than the age of every archive
// (backups that stopped, a backup that took longer than max_age, backups
// dated in the past) kept none. duplicity never removes the chain of its
// newest backup (remove-older-than keeps the active chain, measured in the
// backend conformance suite; the n of remove-all-but-n-full is >= 1).
package retention

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Bounds of an interval (max_age, full_if_older_than): at least an hour
// (borg's --keep-within counts hours), at most 100 years.
const (
	MinInterval = time.Hour
	MaxInterval = 100 * 365 * 24 * time.Hour
)

// MaxCount bounds keep_* and max_full* counts: a backup a day for 270
// years; more is a typo.
const MaxCount = 100000

var (
	intervalSyntax = regexp.MustCompile(`^([0-9]+[smhDWMY])+$`)
	intervalTerm   = regexp.MustCompile(`([0-9]+)([smhDWMY])`)
	intervalUnits  = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "D": 24 * time.Hour,
		"W": 7 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "Y": 365 * 24 * time.Hour}
)

// Interval reads duplicity's interval syntax ("2M", "1Y6M", "36h"; units
// s m h D W M Y, a month 30 days, a year 365) as a duration. A value
// beyond time.Duration's range (about 292 years) is an error: wrapped
// around it would be negative, and a negative max_age once became
// --keep-within 1H, which pruned everything older than an hour.
func Interval(s string) (time.Duration, error) {
	if !intervalSyntax.MatchString(s) {
		return 0, fmt.Errorf("%q: want a count and unit, e.g. \"30D\", \"2M\", \"1Y\" (units s m h D W M Y)", s)
	}
	var d time.Duration
	for _, m := range intervalTerm.FindAllStringSubmatch(s, -1) {
		n, err := strconv.ParseInt(m[1], 10, 64)
		unit := intervalUnits[m[2]]
		if err != nil || n > int64(math.MaxInt64-d)/int64(unit) {
			return 0, fmt.Errorf("%q is out of range: at most %s", s, FormatInterval(MaxInterval))
		}
		d += time.Duration(n) * unit
	}
	return d, nil
}

// CheckInterval is Interval within [MinInterval, MaxInterval].
func CheckInterval(s string) (time.Duration, error) {
	d, err := Interval(s)
	if err != nil {
		return 0, err
	}
	if d < MinInterval || d > MaxInterval {
		return 0, fmt.Errorf("%q is out of range: want %s .. %s", s, FormatInterval(MinInterval), FormatInterval(MaxInterval))
	}
	return d, nil
}

// FormatInterval writes d in the interval syntax's largest unit that
// divides it ("100Y", "1h").
func FormatInterval(d time.Duration) string {
	for _, u := range []string{"Y", "M", "W", "D", "h", "m"} {
		if n := intervalUnits[u]; d >= n && d%n == 0 {
			return strconv.FormatInt(int64(d/n), 10) + u
		}
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// Check checks a policy's values: intervals and counts within bounds. The
// configuration does this with file and line; the builders do it again
// for a job made by hand.
func Check(r job.Retention) error {
	if r.MaxAge != "" {
		if _, err := CheckInterval(r.MaxAge); err != nil {
			return fmt.Errorf("max_age %w", err)
		}
	}
	for _, k := range []struct {
		key string
		n   int
	}{{"max_fullbackups", r.MaxFullBackups}, {"max_fulls_with_incrs", r.MaxFullsWithIncrs}, {"keep_last", r.KeepLast},
		{"keep_daily", r.KeepDaily}, {"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}} {
		if k.n < 0 || k.n > MaxCount {
			return fmt.Errorf("%s %d is out of range: want 0 .. %d", k.key, k.n, MaxCount)
		}
	}
	return nil
}

// keepFlags renders the policy in the flags borg prune and restic forget
// share, with --keep-last 1 for a policy of max_age alone so the newest
// backup always stays (and not with a count rule, which keeps it anyway:
// borg counts its rules one after another, skipping what an earlier rule
// kept, so an extra --keep-last 1 would keep one more backup than asked);
// hourUnit is how each spells hours in --keep-within ("H" for borg, "h"
// for restic).
func keepFlags(r job.Retention, hourUnit string) ([]string, error) {
	if err := Check(r); err != nil {
		return nil, err
	}
	last := r.KeepLast
	if last == 0 && r.KeepDaily == 0 && r.KeepWeekly == 0 && r.KeepMonthly == 0 {
		last = 1
	}
	var argv []string
	for _, k := range []struct {
		flag string
		n    int
	}{{"--keep-last", last}, {"--keep-daily", r.KeepDaily}, {"--keep-weekly", r.KeepWeekly}, {"--keep-monthly", r.KeepMonthly}} {
		if k.n > 0 {
			argv = append(argv, k.flag, strconv.Itoa(k.n))
		}
	}
	if r.MaxAge != "" {
		d, _ := Interval(r.MaxAge) // checked above: at least an hour
		argv = append(argv, "--keep-within", fmt.Sprintf("%d%s", (d+time.Hour-1)/time.Hour, hourUnit))
	}
	return argv, nil
}

// BorgPrune builds borg prune for a policy (nil when it keeps everything).
// Only this client's archives ("CLIENT-*") are considered.
func BorgPrune(repo, client string, r job.Retention) ([]string, error) {
	if r.Empty() {
		return nil, nil
	}
	if r.MaxFullBackups > 0 || r.MaxFullsWithIncrs > 0 {
		return nil, fmt.Errorf("borg: max_fullbackups and max_fulls_with_incrs are duplicity policies")
	}
	keep, err := keepFlags(r, "H")
	if err != nil {
		return nil, err
	}
	argv := []string{"borg", "prune", "--log-json", "--list", "--glob-archives", client + "-*"}
	return append(append(argv, keep...), "--", repo), nil
}

// ResticForget builds restic forget --prune for a policy after the global
// options (nil when it keeps everything). Only this client's snapshots
// (its host name and the tag every backup gets) are considered, as one
// series like borg's: restic's default grouping by paths as well would
// keep the newest of every source list the client ever had.
func ResticForget(global []string, client string, r job.Retention) ([]string, error) {
	return ResticForgetTagged(global, client, ResticTag, true, r)
}

// ResticForgetTagged is ResticForget for the snapshots tagged tag, with
// --prune when prune is set.
func ResticForgetTagged(global []string, client, tag string, prune bool, r job.Retention) ([]string, error) {
	if r.Empty() {
		return nil, nil
	}
	if r.MaxFullBackups > 0 || r.MaxFullsWithIncrs > 0 {
		return nil, fmt.Errorf("restic: max_fullbackups and max_fulls_with_incrs are duplicity policies")
	}
	keep, err := keepFlags(r, "h")
	if err != nil {
		return nil, err
	}
	argv := append(append([]string(nil), global...), "forget")
	if prune {
		argv = append(argv, "--prune")
	}
	argv = append(argv, "--host", client, "--tag", tag, "--group-by", "host")
	return append(argv, keep...), nil
}

// ResticTag is the tag of every snapshot the appliance makes.
const ResticTag = "snapshot-backup"

// Duplicity returns the duplicity commands for a policy, in order:
// remove-older-than, remove-all-but-n-full, remove-all-inc-of-but-n-full,
// each with common after the verb and --force to act.
func Duplicity(common []string, r job.Retention, url string) ([][]string, error) {
	if r.KeepLast > 0 || r.KeepDaily > 0 || r.KeepWeekly > 0 || r.KeepMonthly > 0 {
		return nil, fmt.Errorf("duplicity: keep_last/daily/weekly/monthly are borg and restic policies")
	}
	if err := Check(r); err != nil {
		return nil, err
	}
	var cmds [][]string
	add := func(verb string, arg string) {
		cmds = append(cmds, append(append([]string{"duplicity", verb, arg}, common...), "--force", url))
	}
	if r.MaxAge != "" {
		add("remove-older-than", r.MaxAge)
	}
	if r.MaxFullBackups > 0 {
		add("remove-all-but-n-full", strconv.Itoa(r.MaxFullBackups))
	}
	if r.MaxFullsWithIncrs > 0 {
		add("remove-all-inc-of-but-n-full", strconv.Itoa(r.MaxFullsWithIncrs))
	}
	return cmds, nil
}
