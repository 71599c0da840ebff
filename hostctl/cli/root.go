// Package cli holds hostctl's subcommands, one file each. Main runs them
// in-process (tests call it with their own streams and context) and is the
// one place that maps errors to exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// Exit codes, documented in --help. A run with several outcomes exits with
// the most serious: failed (1), then warning (5), then skipped (3).
const (
	ExitOK      = 0 // every job succeeded
	ExitFailed  = 1 // at least one job failed (or the command failed)
	ExitUsage   = 2 // bad command line or configuration
	ExitPartial = 3 // some jobs were skipped (e.g. domain shut off and offline_ok = false), none failed
	ExitLocked  = 4 // another run holds the lock
	ExitWarning = 5 // a backup or restore ended with warnings (files it could not read or write), none failed
)

const exitCodeHelp = `Exit codes:
  0  success (every job succeeded)
  1  failure (at least one job failed, or the command failed)
  2  bad command line or configuration (the message names file, line and key)
  3  some jobs were skipped, none failed and none ended with warnings
  4  another hostctl run holds the lock
  5  a backup ended with warnings: written, but without files the backend
     could not read (listed in the report); none failed. Retention did not
     run for it. Or a restore or recovery ended with warnings: what the
     tool could not restore (a file, a device node, an owner) is named in
     the report; the rest is in place.
With several outcomes the most serious wins: 1, then 5, then 3.
`

// UsageError is an error in what the user gave us: exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitError carries a specific exit code for an error already reported.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Globals are the options every subcommand shares.
type Globals struct {
	ConfigPath string
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
}

// LoadConfig loads the configuration named by --config; its errors are usage errors.
func (g *Globals) LoadConfig() (*config.Config, error) {
	cfg, err := config.Load(g.ConfigPath)
	if err != nil {
		return nil, &UsageError{err}
	}
	return cfg, nil
}

// LoadClients loads the configuration and selects the named clients (all
// when names is empty); both kinds of error are usage errors.
func (g *Globals) LoadClients(names []string) (*config.Config, []*config.Resolved, error) {
	cfg, err := g.LoadConfig()
	if err != nil {
		return nil, nil, err
	}
	clients, err := cfg.SelectClients(names)
	if err != nil {
		return nil, nil, &UsageError{err}
	}
	return cfg, clients, nil
}

// Main runs hostctl with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &Globals{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return mainExit(ctx, root, stderr)
}

// mainExit runs root, prints its error and maps it to the exit code. An
// error may carry what an appliance or a guest said (a restore's failure,
// a hook's stderr): it is printed through textsafe.
func mainExit(ctx context.Context, root *cobra.Command, stderr io.Writer) int {
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(stderr, "hostctl:", textsafe.Text(ee.Err.Error()))
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "hostctl:", textsafe.Text(err.Error()))
	var ue *UsageError
	if errors.As(err, &ue) || isFlagError(err) {
		return ExitUsage
	}
	return ExitFailed
}

// flagError marks cobra's own argument/flag errors.
type flagError struct{ error }

func isFlagError(err error) bool {
	var fe flagError
	return errors.As(err, &fe)
}

func newRoot(g *Globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "hostctl",
		Short: "Back up libvirt VMs and this hypervisor through a throwaway backup appliance",
		Long: `hostctl snapshots the disks of libvirt VMs (and LVs of this host), boots a throwaway
backup appliance VM with the snapshots attached, and lets it back them up with
borg, restic or duplicity to the client's profile target. Restores go through
the same appliance; the repositories also restore with the stock tools.

Configuration: ` + config.DefaultPath + ` (host), profiles/*.toml and clients/*.toml
next to it; --config points elsewhere. Every key is in the README's
configuration reference.

Setting up a hypervisor:
  hostctl init                         commented config, one client per domain
  hostctl build-image                  the appliance
  hostctl keygen gpg|ssh|rest PROFILE  the profile's keys (gpg: duplicity; ssh: sftp targets; rest: REST servers)
  hostctl target setup PROFILE         an sftp target, once, with its password (rest: what the server needs)
  hostctl check --connect              everything checked, a table of OK/FAIL rows
  hostctl run                          a first backup
  hostctl install-timer                nightly runs
Restoring:
  hostctl restore CLIENT --to-dir DIR  a backup into a directory (or --to-disk IMAGE)
  hostctl recover CLIENT               the VM itself, in place (asks first)

` + exitCodeHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.ConfigPath, "config", "c", config.DefaultPath, "host configuration file")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return flagError{err} })
	root.AddCommand(
		newInitCmd(g),
		newBuildImageCmd(g),
		newCheckCmd(g),
		newRunCmd(g),
		newListCmd(g),
		newRestoreCmd(g),
		newRecoverCmd(g),
		newVerifyCmd(g),
		newPruneCmd(g),
		newRescueCmd(g),
		newCleanupCmd(g),
		newInstallTimerCmd(g),
		newStatusCmd(g),
		newUninstallTimerCmd(g),
		newKeygenCmd(g),
		newTargetCmd(g),
	)
	return root
}

// exactArgs is cobra.ExactArgs with errors marked as usage errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return flagError{err}
		}
		return nil
	}
}
