// Command hostctl backs up libvirt VMs and this hypervisor through a
// throwaway backup appliance VM. See `hostctl --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/snapshot-backup/snapshot-backup/hostctl/cli"
)

func main() {
	// The first SIGINT/SIGTERM cancels the context: the run cleans up
	// (stops appliances, removes snapshots) and exits. stop() restores the
	// default handling so a second signal kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A program reading stdout (--progress json, the table) may go away
	// during a job: a write then fails with EPIPE, and the job finishes
	// and cleans up. Without this Go kills hostctl there. (Notify, not
	// Ignore: an ignored SIGPIPE would be inherited by hooks and tools.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
