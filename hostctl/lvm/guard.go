package lvm

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults of the snapshot size and the overflow guard.
const (
	// DefaultSizePercent of the origin is a classic snapshot's
	// copy-on-write store when the configuration gives no size.
	DefaultSizePercent = 20
	// MinSnapshotSize keeps small origins from getting a store that a
	// single journal commit fills.
	MinSnapshotSize = 256 << 20
	// DefaultAbortPercent is the fill level at which the guard aborts.
	DefaultAbortPercent = 80
	// DefaultPollInterval is how often the guard looks.
	DefaultPollInterval = 5 * time.Second
)

// SnapshotSize is the copy-on-write size for a classic snapshot of an
// origin of originSize bytes: abs bytes when > 0, else percent of the
// origin (DefaultSizePercent when 0), at least MinSnapshotSize and at most
// the origin's size (a store as big as the origin never overflows).
func SnapshotSize(originSize, abs int64, percent float64) int64 {
	size := abs
	if size <= 0 {
		if percent <= 0 {
			percent = DefaultSizePercent
		}
		size = int64(float64(originSize) * percent / 100)
	}
	if size < MinSnapshotSize {
		size = MinSnapshotSize
	}
	if originSize > 0 && size > originSize {
		size = originSize
	}
	return size
}

// OverflowError is the guard's verdict: a snapshot filled up to the limit
// and the job was aborted before it became invalid.
type OverflowError struct {
	LV      string
	Percent float64
	Limit   float64
	Invalid bool // it was already invalid when seen
}

func (e *OverflowError) Error() string {
	if e.Invalid {
		return fmt.Sprintf("LVM snapshot %s overflowed and is invalid: the backup was aborted (give it a larger snapshot_size)", e.LV)
	}
	return fmt.Sprintf("LVM snapshot %s is %.1f%% full (limit %.0f%%): the backup was aborted before the snapshot overflows (give it a larger snapshot_size)", e.LV, e.Percent, e.Limit)
}

// Guard watches the fill level of classic snapshots while they live.
type Guard struct {
	M        Manager
	Snaps    []*LV // classic snapshots (thin ones share their pool and are not watched here)
	Limit    float64
	Interval time.Duration
	// Logf, when set, hears about each poll above half the limit.
	Logf func(format string, args ...any)
}

// Run polls until ctx ends (nil) or a snapshot reaches the limit
// (*OverflowError). A failing poll is retried at the next interval; three
// in a row are returned, because a guard that cannot see must not
// pretend all is well.
func (g *Guard) Run(ctx context.Context) error {
	limit, every := g.Limit, g.Interval
	if limit <= 0 {
		limit = DefaultAbortPercent
	}
	if every <= 0 {
		every = DefaultPollInterval
	}
	if len(g.Snaps) == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	fails := 0
	for {
		err := g.check(ctx, limit)
		var oe *OverflowError
		switch {
		case errors.As(err, &oe):
			return err
		case err != nil && ctx.Err() == nil:
			if fails++; fails >= 3 {
				return fmt.Errorf("snapshot overflow guard: %w", err)
			}
		default:
			fails = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (g *Guard) check(ctx context.Context, limit float64) error {
	for _, s := range g.Snaps {
		lv, err := g.M.Get(ctx, s.VG, s.Name)
		if err != nil {
			return err
		}
		if lv.Invalid() {
			return &OverflowError{LV: lv.ID(), Percent: 100, Limit: limit, Invalid: true}
		}
		if lv.DataPercent >= limit {
			return &OverflowError{LV: lv.ID(), Percent: lv.DataPercent, Limit: limit}
		}
		if g.Logf != nil && lv.DataPercent >= limit/2 {
			g.Logf("LVM snapshot %s is %.1f%% full (abort at %.0f%%)", lv.ID(), lv.DataPercent, limit)
		}
	}
	return nil
}
