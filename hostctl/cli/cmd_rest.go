package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/keygen"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

func newKeygenRESTCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rest PROFILE",
		Short: "Create the REST server passwords of a rest:// profile's clients (backup and maintenance)",
		Long: `keygen rest writes a new random password (32 bytes, URL-safe base64, mode 0600) to
the profile's rest.password_file and, when set, maintenance.password_file: per
client with {client} in the path, so that each client's appliance holds only
its own. Files that exist are kept, so rerun it after adding a client. Then
"hostctl target setup PROFILE" prints the htpasswd lines for the server.

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeygenREST(g, args[0])
		},
	}
}

func runKeygenREST(g *Globals, name string) error {
	cfg, p, err := loadRESTProfile(g, name)
	if err != nil {
		return err
	}
	for _, f := range []string{p.REST.PasswordFile, p.Maintenance.PasswordFile} {
		if f == "" {
			continue
		}
		files, _ := clientFiles(cfg, p, f)
		if len(files) == 0 {
			return &UsageError{fmt.Errorf("%s: %s has %s but no client uses the profile: no password to make", p.File, f, config.ClientPlaceholder)}
		}
		if _, err := makePassphrases(g.Stdout, files, keygen.Password, "password"); err != nil {
			return err
		}
	}
	return nil
}

// loadRESTProfile loads a profile whose target is rest://.
func loadRESTProfile(g *Globals, name string) (*config.Config, *config.Profile, error) {
	cfg, p, err := loadProfile(g, name)
	if err != nil {
		return nil, nil, err
	}
	if s := p.Sample().Scheme; s != target.REST {
		return nil, nil, &UsageError{fmt.Errorf("%s: key \"target\": %s:// is not a rest:// target", p.File, s)}
	}
	if p.REST.PasswordFile == "" {
		return nil, nil, &UsageError{fmt.Errorf("%s: key \"rest.password_file\" is not set", p.File)}
	}
	return cfg, p, nil
}

// runTargetSetupREST prints what the REST server of a rest:// profile
// needs: this host cannot log in to set it up. One user per client in the
// htpasswd file of the backup server (--append-only for an append-only
// profile) and of the maintenance server, each with its bcrypt hash of the
// client's password file.
func runTargetSetupREST(g *Globals, name string) error {
	cfg, p, err := loadRESTProfile(g, name)
	if err != nil {
		return err
	}
	clients := cfg.UsersOf(p)
	if len(clients) == 0 {
		return &UsageError{fmt.Errorf("%s: no client uses the profile: nothing to set up", p.File)}
	}
	backup, err := htpasswdLines(clients, func(c *config.Resolved) string { return c.Profile.REST.PasswordFile }, name)
	if err != nil {
		return err
	}
	w := g.Stdout
	t := p.Sample()
	fmt.Fprintf(w, "Profile %s writes to the REST server %s (rest-server, github.com/restic/rest-server).\nThis host cannot set it up: on the server,\n\n", p.Name, hostPortOf(t, t.PortOrDefault()))
	flags := "--private-repos"
	if p.AppendOnly {
		flags = "--append-only --private-repos"
	}
	what := "each user only in /USER/…"
	if p.AppendOnly {
		what += "; nothing can be deleted"
	}
	fmt.Fprintf(w, "1. The backup server, port %d (%s):\n\n", t.PortOrDefault(), what)
	fmt.Fprintf(w, "     rest-server --path DATA --listen :%d --tls --tls-cert CERT --tls-key KEY %s --htpasswd-file /etc/rest-server/backup.htpasswd\n\n", t.PortOrDefault(), flags)
	fmt.Fprintf(w, "   with these lines in /etc/rest-server/backup.htpasswd:\n\n")
	printIndented(w, backup)
	step := 2
	if m := p.Maintenance; p.AppendOnly && m.PasswordFile != "" {
		prune, err := htpasswdLines(clients, func(c *config.Resolved) string { return c.Profile.Maintenance.PasswordFile }, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n2. The maintenance server for hostctl prune, port %d: the same DATA, without --append-only\n   (let only this host reach that port):\n\n", m.Port)
		fmt.Fprintf(w, "     rest-server --path DATA --listen :%d --tls --tls-cert CERT --tls-key KEY --private-repos --htpasswd-file /etc/rest-server/prune.htpasswd\n\n", m.Port)
		fmt.Fprintf(w, "   with these lines in /etc/rest-server/prune.htpasswd:\n\n")
		printIndented(w, prune)
		step = 3
	}
	fmt.Fprintf(w, "\n%d. Copy CERT (or the CA that signed it) to rest.ca_file, %s: the appliance\n   trusts no other certificate. Its names must include %s.\n", step, p.REST.CAFile, t.Host)
	fmt.Fprintf(w, "\nThen check from here: hostctl check --connect\n")
	return nil
}

// htpasswdLines renders "user:bcrypt" for each client's password file
// (file gives it), one line per user: clients that share a user (no
// {client} in the target's user) must share the password.
func htpasswdLines(clients []*config.Resolved, file func(*config.Resolved) string, profile string) ([]string, error) {
	byUser := map[string]string{}
	for _, c := range clients {
		f := file(c)
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("client %s: %w (make it with: hostctl keygen rest %s)", c.Name, err, profile)
		}
		pass := strings.TrimRight(string(data), "\r\n")
		if prev, ok := byUser[c.Target.User]; ok {
			if prev != pass {
				return nil, fmt.Errorf("client %s: user %s has another password in another client's file: one user, one password (give the target's user a {client})", c.Name, c.Target.User)
			}
			continue
		}
		byUser[c.Target.User] = pass
	}
	var out []string
	for user, pass := range byUser {
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
		if err != nil {
			return nil, err
		}
		out = append(out, user+":"+string(h))
	}
	sort.Strings(out)
	return out, nil
}

func printIndented(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(w, "     %s\n", l)
	}
}

func hostPortOf(t target.Target, port int) string {
	t.Port, t.Path, t.User = port, "", ""
	return strings.TrimPrefix(t.String(), "rest://")
}
