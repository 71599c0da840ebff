package config

import (
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/retention"
)

// Bounds of the values that durations and sizes are parsed into. Beyond
// them a value is a typo (a unit too large, a digit too many) and taken as
// written it would do harm: a max_age that wrapped around once pruned
// everything older than an hour. Each bound is in the message.
const (
	// MaxTimeLimit bounds time_limit, run_time_limit and hooks.time_limit.
	MaxTimeLimit = 30 * 24 * time.Hour
	// MaxPollInterval bounds lvm.poll_interval: a snapshot must not fill
	// up between two looks.
	MaxPollInterval = 10 * time.Minute
	// Cache and snapshot sizes: at least what the tools need (lvm rounds
	// a smaller snapshot up to this), at most what a volume can be.
	MinVolumeSize Size = 256 << 20
	MaxVolumeSize Size = 64 << 40
	// bandwidth_limit: the tools count KiB/s; above 100G/s it limits
	// nothing.
	MinBandwidth Size = 1 << 10
	MaxBandwidth Size = 100 << 30
)

// bounds checks every duration, size and count against its range, each
// error at the key's line. Keys that are not set keep their defaults,
// which are in range.
func (v *validator) bounds() {
	h, f := &v.c.Host, v.c.Path
	v.timeLimit(f, "time_limit", h.TimeLimit)
	v.timeLimit(f, "run_time_limit", h.RunTimeLimit)
	if d := h.LVM.PollInterval.Duration; d > MaxPollInterval {
		v.at(f, "lvm.poll_interval", "%s is out of range: want at most %s", d, MaxPollInterval)
	}
	v.size(f, "cache.size", h.Cache.Size, MinVolumeSize, MaxVolumeSize)
	v.snapshotSize(f, "lvm.snapshot_size", h.LVM.SnapshotSize)
	for _, name := range sortedKeys(v.c.Profiles) {
		p := v.c.Profiles[name]
		v.interval(p.File, "retention.max_age", p.Retention.MaxAge)
		v.interval(p.File, "duplicity.full_if_older_than", p.Duplicity.FullIfOlderThan)
		r := p.Retention
		for _, k := range []struct {
			key string
			n   int
		}{{"retention.max_fullbackups", r.MaxFullBackups}, {"retention.max_fulls_with_incrs", r.MaxFullsWithIncrs},
			{"retention.keep_last", r.KeepLast}, {"retention.keep_daily", r.KeepDaily}, {"retention.keep_weekly", r.KeepWeekly},
			{"retention.keep_monthly", r.KeepMonthly}, {"check_every", p.CheckEvery}} {
			if k.n > retention.MaxCount { // negative: the key's own check
				v.at(p.File, k.key, "%d is out of range: want 0 .. %d", k.n, retention.MaxCount)
			}
		}
		if p.BandwidthLimit != 0 {
			v.size(p.File, "bandwidth_limit", p.BandwidthLimit, MinBandwidth, MaxBandwidth)
		}
	}
	for _, name := range sortedKeys(v.c.Clients) {
		cl := v.c.Clients[name]
		if v.set(cl.File, "time_limit") {
			v.timeLimit(cl.File, "time_limit", cl.TimeLimit)
		}
		v.timeLimit(cl.File, "hooks.time_limit", cl.Hooks.TimeLimit)
		v.snapshotSize(cl.File, "snapshot_size", cl.SnapshotSize)
	}
}

// timeLimit checks a time limit: at most MaxTimeLimit; zero and negative
// values have their keys' own checks (host, client, hooks, report).
func (v *validator) timeLimit(f, key string, d job.Duration) {
	if d.Duration > MaxTimeLimit {
		v.at(f, key, "%s is out of range: want at most %s (30 days)", d.Duration, MaxTimeLimit)
	}
}

// interval checks a duplicity-style interval ("2M", "1Y") when set.
func (v *validator) interval(f, key, s string) {
	if s == "" {
		return
	}
	if _, err := retention.CheckInterval(s); err != nil {
		v.at(f, key, "%v", err)
	}
}

// size checks a size against [lo, hi]; zero and negative sizes have
// their keys' own checks.
func (v *validator) size(f, key string, s, lo, hi Size) {
	if s > 0 && (s < lo || s > hi) {
		v.at(f, key, "%s is out of range: want %s .. %s", s, lo, hi)
	}
}

// snapshotSize checks an absolute snapshot size (a percentage is checked
// when it is parsed).
func (v *validator) snapshotSize(f, key string, s SnapshotSize) {
	if s.Bytes != 0 {
		v.size(f, key, Size(s.Bytes), MinVolumeSize, MaxVolumeSize)
	}
}
