// Package progress shows what backup appliances report while they run:
// as lines (or a redrawn status line on a terminal) for the operator, or
// as JSON lines for other programs. The CLI picks the form (--progress);
// the runner hands each appliance's records to it.
//
// Everything in a record but its numbers comes from the appliance, and
// its paths from the guest: the text form shows it only through
// textsafe, the JSON form escapes what a terminal would act on.
package progress

import "github.com/snapshot-backup/snapshot-backup/internal/job"

// Sink receives the progress records of each job's appliance, in the
// order they arrive. Its methods may be called from more than one
// goroutine.
type Sink interface {
	// Begin starts a job: client's appliance for mode is about to boot.
	Begin(client, mode string)
	// Record is one record from client's appliance.
	Record(client string, rec job.Record)
}

// Close ends a sink that writes on its own (the JSON form): it waits a
// few seconds at most for the last lines to be taken, and returns how many
// lines its reader did not get. Other sinks have nothing to close.
func Close(s Sink) int {
	if c, ok := s.(interface{ Close() int }); ok {
		return c.Close()
	}
	return 0
}

// None shows nothing.
var None Sink = none{}

type none struct{}

func (none) Begin(string, string)      {}
func (none) Record(string, job.Record) {}
