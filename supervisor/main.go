// Command supervisor is /init (PID 1) of the backup appliance: it mounts
// the client's snapshot, runs the backup tool, writes the result to the job
// disk and powers off. See package run.
package main

import (
	"os"

	"github.com/snapshot-backup/snapshot-backup/supervisor/run"
)

func main() {
	run.Main()
	// Only reached when not started as PID 1.
	os.Exit(1)
}
