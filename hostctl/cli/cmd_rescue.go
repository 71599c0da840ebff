package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

type rescueOptions struct {
	Disks     []string
	Mount     string
	TimeLimit time.Duration
}

// escapeByte (Ctrl+]) leaves the console and forces the appliance off.
const escapeByte = 0x1d

func newRescueCmd(g *Globals) *cobra.Command {
	var o rescueOptions
	cmd := &cobra.Command{
		Use:   "rescue [CLIENT] [--disk IMAGE…]",
		Short: "Boot the appliance with a shut-off client's disks (writable) and open its rescue shell here",
		Long: `rescue boots the backup appliance with the disks of a shut-off CLIENT (or the
--disk images) attached writable, mounts the client's filesystem (--mount, default
its backup.mount) read-write at ` + job.RescueTarget + ` and connects this terminal to a root shell
on the appliance's serial console. "chroot-target" enters the client's system with
/dev, /proc, /sys and /run bound. Exit the shell to unmount, power off and detach
the disks; Ctrl+] forces the appliance off at once.

` + exitCodeHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRescue(cmd.Context(), g, o, args)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *rescueOptions) AddFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&o.Disks, "disk", nil, "disk image to attach (repeatable)")
	f.StringVar(&o.Mount, "mount", "", `filesystem for `+job.RescueTarget+`: "vda2", "LABEL=…", "UUID=…" (default: backup.mount, else auto)`)
	f.DurationVar(&o.TimeLimit, "time-limit", 4*time.Hour, "power the appliance off after this long")
}

func runRescue(ctx context.Context, g *Globals, o rescueOptions, args []string) error {
	if len(args) == 0 && len(o.Disks) == 0 {
		return &UsageError{errors.New("rescue: name a CLIENT or give --disk IMAGE")}
	}
	sp := sessionSpec{clients: args, noClients: len(args) == 0, image: true}
	return g.withSession(ctx, sp, func(s *session, clients []*config.Client) error {
		ro := runner.RescueOptions{Disks: o.Disks, Mount: o.Mount, TimeLimit: o.TimeLimit}
		if len(clients) == 1 {
			ro.Client = clients[0]
		}
		ro.Attach = func(ctx context.Context, domain string) error {
			con, err := s.lv.Console(ctx, domain)
			if err != nil {
				return err
			}
			defer con.Close()
			fmt.Fprintf(g.Stderr, "Connected to %s. Exit the shell to power it off; Ctrl+] forces it off.\r\n", domain)
			return pumpConsole(g.Stdin, g.Stdout, con)
		}
		return s.runner.Rescue(ctx, ro)
	})
}

// errForcedOff is the operator's Ctrl+].
var errForcedOff = errors.New("rescue: forced off with Ctrl+]")

// pumpConsole connects in/out to the console until the console closes (the
// appliance went away) or the escape byte arrives on in. A terminal on in
// is put into raw mode meanwhile.
func pumpConsole(in io.Reader, out io.Writer, con io.ReadWriter) error {
	defer rawTerminal(in)()
	done := make(chan error, 2)
	go func() {
		_, err := io.Copy(out, con)
		done <- err
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := in.Read(buf)
			if i := bytes.IndexByte(buf[:n], escapeByte); i >= 0 {
				con.Write(buf[:i])
				done <- errForcedOff
				return
			}
			if n > 0 {
				if _, werr := con.Write(buf[:n]); werr != nil {
					return // the console closed: the copy above reports it
				}
			}
			if err != nil {
				return // end of input: keep showing the console until it closes
			}
		}
	}()
	err := <-done
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
