package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/probe"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

func newTargetCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "target setup PROFILE",
		Short: "Prepare a profile's sftp/ssh target once with a password (key, pinned host key, directories), or print a REST server's setup",
		Long: `target setup prepares the ssh server of a profile's sftp:// or ssh:// target,
or prints what the REST server of a rest:// target needs.
See "hostctl target setup --help".

` + exitCodeHelp,
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			return flagError{fmt.Errorf("target needs a subcommand: setup")}
		},
	}
	cmd.AddCommand(newTargetSetupCmd(g))
	return cmd
}

type targetSetupOptions struct {
	PasswordFile       string
	HostKeyFingerprint string
	AcceptNewHostKey   bool
	NoInit             bool
}

func newTargetSetupCmd(g *Globals) *cobra.Command {
	var o targetSetupOptions
	cmd := &cobra.Command{
		Use:   "setup PROFILE",
		Short: "Log in to the profile's ssh target with a password once and set it up for the appliance",
		Long: `target setup logs in to the ssh server of the profile's target (sftp:// or
ssh://USER@HOST[:PORT]/PATH) with the account's password, once, and:
  1. appends the public half of ssh.identity_file (make it with
     "hostctl keygen ssh PROFILE") to ~/.ssh/authorized_keys there
     (.ssh mode 0700, the file 0600; a key already there is not added twice);
  2. pins the server's host key in ssh.known_hosts under the target's
     host[:port], after showing its fingerprint: compare it with the one the
     server's administrator gives you (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub
     on the server). A key pinned already must match;
  3. logs in again with the identity and the pinned key only, as the
     appliance will, and makes each client's directory (the target with
     {client} replaced for every client using the profile);
  4. for borg and restic, initialises each client's repository with the
     borg or restic of this host when installed (borg needs borg on the
     server too); otherwise the first backup does it.
With {client} in ssh.identity_file or ssh.known_hosts, steps 1-3 run for
every client of the profile with its own files and directory. With {client}
in the target's user (sftp://bk-{client}@nas/srv/backup/{client}: an account
per client, which the server's administrator makes) each account is logged
in to with its own password: --password-file may carry {client} too. Each
client's directory is made mode 0700, so that with an account per client
no client's key reads another's backups (check --connect: row isolation).

An append_only profile's key is installed limited to borg serve
--append-only on its clients' repositories (command="…",restrict: no shell,
no sftp, no forwarding), replacing a line of the same key with other
options; the directories are made with the password, and the login with the
key then checks that it runs nothing but that. maintenance.identity_file,
when set, is installed the same way without --append-only: the key that
prunes.

The password comes from --password-file (first line) or is asked for on the
terminal; it is not stored. An unknown host key is accepted when it matches
--host-key-fingerprint, with --accept-new-host-key, or when you answer "yes"
on the terminal. The appliance's gateway ([network] gateway, 10.0.2.2) is
this host: a target there is reached on 127.0.0.1 from here. proxy_command is
the appliance's way out and is not used here: this host connects directly.
Running setup again changes nothing that is in place.

A rest:// target (restic's REST server) cannot be set up from here: target
setup prints the rest-server command line of the backup server (with
--append-only for an append_only profile, and --private-repos) and, with
maintenance.password_file, of the maintenance server, each with the htpasswd
lines (user:bcrypt of the client's password file; "hostctl keygen rest
PROFILE" makes them) to install on the server. Then run hostctl check
--connect.

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTargetSetup(cmd.Context(), g, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *targetSetupOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.PasswordFile, "password-file", "", "read the account's password from this file instead of the terminal ({client}: a file per client's account)")
	f.StringVar(&o.HostKeyFingerprint, "host-key-fingerprint", "", "accept the server's host key if its fingerprint is this (SHA256:…)")
	f.BoolVar(&o.AcceptNewHostKey, "accept-new-host-key", false, "accept and pin an unknown host key without asking (trust on first use)")
	f.BoolVar(&o.NoInit, "no-init", false, "do not initialise borg/restic repositories")
}

func runTargetSetup(ctx context.Context, g *Globals, o targetSetupOptions, name string) error {
	cfg, p, err := loadProfile(g, name)
	if err != nil {
		return err
	}
	clients := cfg.UsersOf(p)
	u := p.Sample()
	if u.Scheme == target.REST {
		return runTargetSetupREST(g, name)
	}
	if !u.Scheme.OverSSH() {
		return &UsageError{fmt.Errorf("%s: key \"target\": %s:// is not an ssh target: target setup is for sftp://, ssh:// and rest://", p.File, u.Scheme)}
	}
	for key, v := range map[string]string{"ssh.identity_file": p.SSH.IdentityFile, "ssh.known_hosts": p.SSH.KnownHosts} {
		if v == "" {
			return &UsageError{fmt.Errorf("%s: key %q is not set", p.File, key)}
		}
	}
	// One setup per identity: the profile's, or with {client} in its ssh
	// files each client's own, for that client's directory only.
	type unit struct {
		prof     *config.Profile
		clients  []*config.Resolved
		dirs     []string
		e        probe.Endpoint // the account: one per client with {client} in the target's user
		password string
	}
	units := []unit{{prof: p, clients: clients}}
	if strings.Contains(p.SSH.IdentityFile+p.SSH.KnownHosts, config.ClientPlaceholder) || accountPerClient(clients) {
		if len(clients) == 0 {
			return &UsageError{fmt.Errorf("%s: ssh.identity_file has %s but no client uses the profile: nothing to set up", p.File, config.ClientPlaceholder)}
		}
		units = nil
		for _, cl := range clients {
			units = append(units, unit{prof: cl.Profile, clients: []*config.Resolved{cl}})
		}
	}
	if p.AppendOnly && len(clients) == 0 {
		return &UsageError{fmt.Errorf("%s: append_only: no client uses the profile, and its key is limited to its clients' repositories: add the clients first", p.File)}
	}
	for i := range units {
		un := &units[i]
		for _, k := range [][2]string{{"ssh.identity_file", un.prof.SSH.IdentityFile}, {"maintenance.identity_file", un.prof.Maintenance.IdentityFile}} {
			if k[1] == "" {
				continue
			}
			if _, err := os.Stat(k[1]); err != nil {
				return &UsageError{fmt.Errorf("%s: key %q: %v (make it with: hostctl keygen ssh %s)", p.File, k[0], err, name)}
			}
		}
		for _, cl := range un.clients {
			un.dirs = append(un.dirs, cl.Target.Path)
		}
		if len(un.dirs) == 0 {
			un.dirs = []string{path.Dir(u.Path)}
			if !strings.Contains(p.Target, config.ClientPlaceholder) {
				un.dirs = []string{u.Path}
			}
		}
	}

	in := bufio.NewReader(g.Stdin)
	tty := isTerminal(g.Stdin)
	// Each account's password, asked once: --password-file may name a
	// file per client ({client}).
	asked := map[string]string{}
	for i := range units {
		un := &units[i]
		t, file := u, o.PasswordFile
		if len(un.clients) > 0 {
			t = un.clients[0].Target // its clients share the account
		}
		if len(un.clients) == 1 {
			file = strings.ReplaceAll(file, config.ClientPlaceholder, un.clients[0].Name)
		}
		un.e = probe.EndpointFor(t, cfg.Host.Network.Gateway)
		key := un.e.String() + "\x00" + file
		if pw, ok := asked[key]; ok {
			un.password = pw
			continue
		}
		if un.password, err = readPassword(g, in, tty, file, un.e); err != nil {
			return err
		}
		asked[key] = un.password
	}
	accept := func(fpr string) bool {
		switch {
		case o.HostKeyFingerprint != "":
			if fpr != o.HostKeyFingerprint {
				fmt.Fprintf(g.Stdout, "it is not the expected %s: refused\n", o.HostKeyFingerprint)
				return false
			}
			return true
		case o.AcceptNewHostKey:
			return true
		case tty:
			fmt.Fprintf(g.Stdout, "Is this the server's key? Type yes to pin it: ")
			ans, _ := in.ReadString('\n')
			return strings.TrimSpace(ans) == "yes"
		default:
			fmt.Fprintf(g.Stdout, "not on a terminal: give --host-key-fingerprint or --accept-new-host-key\n")
			return false
		}
	}
	// The repositories each key file serves: a key shared by clients
	// whose other secrets are their own (a {client} passphrase) is set
	// up once per client, each time with all of its repositories.
	reposOf := map[string][]string{}
	for _, un := range units {
		for _, f := range []string{un.prof.SSH.IdentityFile, un.prof.Maintenance.IdentityFile} {
			if f != "" {
				reposOf[f] = append(reposOf[f], un.dirs...)
			}
		}
	}
	for _, un := range units {
		o := probe.SetupOptions{
			Endpoint: un.e, Password: un.password, Identity: un.prof.SSH.IdentityFile, KnownHosts: un.prof.SSH.KnownHosts,
			AcceptHostKey: accept, Dirs: un.dirs, PrivateDirs: len(un.clients) > 0, Log: g.Stdout,
		}
		if p.AppendOnly {
			// The appliance's key adds to its clients' repositories and
			// nothing else; the maintenance key may delete in them.
			o.Options = probe.BorgServeOptions(reposOf[o.Identity], true)
			if m := un.prof.Maintenance.IdentityFile; m != "" {
				o.Also = []probe.AuthorizedKey{{Identity: m, Options: probe.BorgServeOptions(reposOf[m], false)}}
			}
		}
		if err := probe.Setup(ctx, o); err != nil {
			return err
		}
	}
	if !o.NoInit && len(clients) > 0 && (p.Backend == "borg" || p.Backend == "restic") {
	repos:
		for _, un := range units {
			for i, d := range un.dirs {
				// Each repository with its client's own passphrase.
				ok, err := probe.InitRepo(ctx, un.clients[i].Profile, un.e, d)
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintf(g.Stdout, "%s is not installed here: the first backup initialises %s\n", p.Backend, d)
					break repos
				}
				fmt.Fprintf(g.Stdout, "%s repository %s ready\n", p.Backend, d)
			}
		}
	}
	fmt.Fprintf(g.Stdout, "\ntarget of profile %s is set up. Next: hostctl check --connect\n", name)
	return nil
}

// accountPerClient says whether the clients log in as accounts of their
// own (sftp://{client}@…): then each is set up with its account's password.
func accountPerClient(clients []*config.Resolved) bool {
	for _, c := range clients {
		if c.Target.User != clients[0].Target.User {
			return true
		}
	}
	return false
}

func readPassword(g *Globals, in *bufio.Reader, tty bool, file string, e probe.Endpoint) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", &UsageError{fmt.Errorf("--password-file: %w", err)}
		}
		pw, _, _ := strings.Cut(string(data), "\n")
		return strings.TrimSuffix(pw, "\r"), nil
	}
	if !tty {
		return "", &UsageError{fmt.Errorf("no terminal to ask for the password of %s: give --password-file", e)}
	}
	fmt.Fprintf(g.Stdout, "password of %s (used once, not stored): ", e)
	return readSecretLine(g.Stdin, g.Stdout)
}
