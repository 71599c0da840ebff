package runner

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
)

// Leftovers is what reconciling the ledger could not undo, by the client
// whose job recorded it. A leftover blocks that client's jobs only: its
// disks may still be on an overlay, its guest paused, and a new snapshot on
// top would make things worse. The other clients run.
type Leftovers struct {
	Removed int
	ledger  string // the ledger's directory, for the operator
	// byClient holds the errors of entries that name their client;
	// unowned those of entries without one (written by a hostctl older
	// than the client field), which block every client.
	byClient map[string][]error
	unowned  []error
}

// Blocks returns why client's jobs must not run, or nil.
func (lo *Leftovers) Blocks(client string) error {
	if lo == nil {
		return nil
	}
	var msgs []error
	if errs := lo.byClient[client]; len(errs) > 0 {
		msgs = append(msgs, fmt.Errorf("leftovers of an earlier run of %s could not be removed (they stay recorded in %s; `hostctl cleanup` retries): %w",
			client, lo.ledger, errors.Join(errs...)))
	}
	if len(lo.unowned) > 0 {
		msgs = append(msgs, fmt.Errorf("leftovers recorded without a client (by an older hostctl) could not be removed, and they block every client until they are (they stay recorded in %s; `hostctl cleanup` retries): %w",
			lo.ledger, errors.Join(lo.unowned...)))
	}
	return errors.Join(msgs...)
}

// Err joins every leftover's error (nil when everything was removed).
func (lo *Leftovers) Err() error {
	if lo == nil {
		return nil
	}
	var errs []error
	errs = append(errs, lo.unowned...)
	for _, e := range lo.byClient {
		errs = append(errs, e...)
	}
	return errors.Join(errs...)
}

// Reconcile undoes everything the ledger still lists: leftovers of a run
// that crashed or was killed. It reports each to w and returns how many it
// removed and the joined errors of those it could not remove (they stay in
// the ledger).
func Reconcile(ctx context.Context, d Deps, w io.Writer) (int, error) {
	lo, err := ReconcileClients(ctx, d, w)
	if err != nil {
		return 0, err
	}
	return lo.Removed, lo.Err()
}

// ReconcileClients is Reconcile with the leftovers sorted by client. Its
// error is one that stops everything: a ledger that cannot be read (an
// unreadable entry could be anyone's).
func ReconcileClients(ctx context.Context, d Deps, w io.Writer) (*Leftovers, error) {
	l := d.Ledger
	entries, err := l.List()
	if err != nil {
		return nil, err
	}
	lo := &Leftovers{ledger: l.Dir(), byClient: map[string][]error{}}
	for _, e := range reconcileOrder(entries) {
		owner := e.Client
		if owner == "" {
			owner = "no client recorded"
		}
		fmt.Fprintf(w, "cleanup: leftover of run %s (%s): %s\n", e.RunID, owner, e.String())
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		err := Undo(uctx, d, e)
		cancel()
		switch {
		case err == nil:
			lo.Removed++
		case e.Client == "":
			lo.unowned = append(lo.unowned, err)
		default:
			lo.byClient[e.Client] = append(lo.byClient[e.Client], err)
		}
	}
	return lo, nil
}

// reconcileOrder is the order leftovers are undone in: first every guest a
// killed run left suspended or frozen is let go (it stands still until
// then, while merging an overlay back can take minutes); then the rest
// newest first, so that a domain is destroyed before the disks it used.
func reconcileOrder(entries []*ledger.Entry) []*ledger.Entry {
	var first, rest []*ledger.Entry
	for i := len(entries) - 1; i >= 0; i-- {
		switch e := entries[i]; e.Kind {
		case ledger.KindSuspend, ledger.KindFreeze:
			first = append(first, e)
		default:
			rest = append(rest, e)
		}
	}
	return append(first, rest...)
}
