package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Defaults of [lvm] (hostctl/lvm holds the same numbers for code that
// builds its settings by hand).
const (
	DefaultSnapshotPercent = 20
	DefaultAbortPercent    = 80
	DefaultLVMPoll         = 5 * time.Second
)

// LVM is [lvm] of hostctl.toml: how logical volumes are snapshotted.
type LVM struct {
	// SnapshotSize of a classic (copy-on-write) snapshot: "20%" of the
	// origin (default) or an absolute size ("10G", 256M .. 64T); at least
	// 256 MiB, at most the origin's size. Thin volumes get thin snapshots (no size).
	SnapshotSize SnapshotSize `toml:"snapshot_size"`
	// AbortPercent is the fill level at which the job is aborted before the
	// snapshot overflows (default 80).
	AbortPercent int `toml:"abort_percent"`
	// PollInterval is how often the fill level is looked at (default 5s,
	// at most 10m).
	PollInterval job.Duration `toml:"poll_interval"`
}

// SnapshotSize is an absolute size or a percentage of the origin; the zero
// value means "not set".
type SnapshotSize struct {
	Bytes   int64
	Percent float64
}

// IsZero reports whether the size is unset.
func (s SnapshotSize) IsZero() bool { return s.Bytes == 0 && s.Percent == 0 }

// UnmarshalText reads "25%" or a size ("10G", "512M").
func (s *SnapshotSize) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(f > 0 && f <= 100) { // NaN compares false with everything
			return fmt.Errorf("invalid snapshot size %q: want a percentage of the origin in (0, 100], e.g. \"20%%\", or a size like \"10G\"", string(b))
		}
		*s = SnapshotSize{Percent: f}
		return nil
	}
	n, err := ParseSize(t)
	if err != nil {
		return fmt.Errorf("invalid snapshot size %q: want a size like \"10G\" or a percentage of the origin like \"20%%\"", string(b))
	}
	if n <= 0 {
		return fmt.Errorf("invalid snapshot size %q: want a size > 0", string(b))
	}
	*s = SnapshotSize{Bytes: int64(n)}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s SnapshotSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s SnapshotSize) String() string {
	switch {
	case s.Percent > 0:
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	case s.Bytes > 0:
		return Size(s.Bytes).String()
	}
	return ""
}

// SnapshotSizeFor is the snapshot size setting of a client: its own
// snapshot_size, else the host's.
func (c *Config) SnapshotSizeFor(cl *Client) SnapshotSize {
	if !cl.SnapshotSize.IsZero() {
		return cl.SnapshotSize
	}
	return c.Host.LVM.SnapshotSize
}

func (c *Config) lvmDefaults() {
	l, set := &c.Host.LVM, c.lines[c.Path].has
	if l.SnapshotSize.IsZero() {
		l.SnapshotSize = SnapshotSize{Percent: DefaultSnapshotPercent}
	}
	if !set("lvm.abort_percent") {
		l.AbortPercent = DefaultAbortPercent
	}
	if !set("lvm.poll_interval") {
		l.PollInterval = job.Duration{Duration: DefaultLVMPoll}
	}
}

func (v *validator) lvm() {
	l, f := &v.c.Host.LVM, v.c.Path
	// Zero in a hand-built Config means the default.
	if l.AbortPercent != 0 && (l.AbortPercent < 1 || l.AbortPercent > 99) || v.c.lines[f].has("lvm.abort_percent") && l.AbortPercent == 0 {
		v.at(f, "lvm.abort_percent", "%d: want a fill level in percent, 1 .. 99", l.AbortPercent)
	}
	if l.PollInterval.Duration < 0 || v.c.lines[f].has("lvm.poll_interval") && l.PollInterval.Duration == 0 {
		v.at(f, "lvm.poll_interval", "%s: want a duration > 0", l.PollInterval.Duration)
	}
}
