package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// Resolved is one client as its jobs use it, translated once by Load: the
// client, its profile with the client's own secret files, its target
// parsed, the secret files its job disk carries and its backup.mount in
// the one form a job takes. Code after Load reads it and never looks the
// profile or the target up again.
//
// The embedded Client's Profile is the profile's name as the client file
// spells it ("" for the host's default_profile); Resolved.Profile is the
// profile itself.
type Resolved struct {
	*Client
	// Profile is the client's profile ({client} replaced in its secret file
	// paths: no other client's secrets reach this client's appliance).
	Profile *Profile
	// Target is where the client's backups go: the profile's target with
	// {client} replaced, parsed.
	Target  target.Target
	Secrets Secrets
	// Tree is backup.mount: one selector or the table of mount points.
	Tree job.Tree
	// Also are the client's further destinations (profiles = [...] after
	// the first), each resolved as if it were the client's only profile.
	// Their own Also is nil.
	Also []*Resolved
	// Index is the destination's place among the client's profiles (0
	// the first, which every job without --profile uses).
	Index int
}

// Destinations are the client's destinations in the order of its
// profiles: c itself, then c.Also.
func (c *Resolved) Destinations() []*Resolved {
	return append([]*Resolved{c}, c.Also...)
}

// Destination is the client's destination through profile name ("" the
// first: the one list, restore and verify use unless told).
func (c *Resolved) Destination(name string) (*Resolved, error) {
	var names []string
	for _, d := range c.Destinations() {
		if name == "" || d.Profile.Name == name {
			return d, nil
		}
		names = append(names, d.Profile.Name)
	}
	return nil, fmt.Errorf("client %s has no destination with profile %q (its profiles: %s)", c.Name, name, strings.Join(names, ", "))
}

// Multi says whether the client has more than one destination.
func (c *Resolved) Multi() bool { return len(c.Also) > 0 }

// RowProfile names destination c in report rows and hostctl's lines: its
// profile when its client has several destinations, else "" (the rows of
// a client with one destination are named as they always were).
func (c *Resolved) RowProfile() string {
	if len(c.Client.Profiles) > 1 {
		return c.Profile.Name
	}
	return ""
}

// Secrets are the host files of the secrets a client's job disk carries:
// only what its profile's encryption and its target's scheme need.
type Secrets struct {
	Passphrase string   // encryption.passphrase_file; "" none (or mode "none")
	GPGKeys    []string // encryption.key_files, for mode "gpg"
	// Target holds the file of each secret the target's scheme needs
	// (target.Scheme.Secrets); a file target needs none.
	Target map[target.Secret]string
}

// Resolve resolves client cl of c. Load resolves every client it loads
// (SelectClients returns them); a Config built in code, as in tests,
// resolves its clients with Resolve.
func (c *Config) Resolve(cl *Client) (*Resolved, error) {
	ps := c.profilesFor(cl)
	if len(ps) == 0 || slices.Contains(ps, nil) {
		return nil, fmt.Errorf("client %s: no profile", cl.Name)
	}
	var first *Resolved
	for i, p := range ps {
		t, err := p.targetFor(cl.Name)
		if err != nil {
			return nil, fmt.Errorf("client %s, profile %s: key \"target\": %w", cl.Name, p.Name, err)
		}
		own := p.forClient(cl.Name)
		d := &Resolved{Client: cl, Profile: own, Target: t, Secrets: own.secretsFor(t), Tree: cl.Backup.Mount.Tree(), Index: i}
		if first == nil {
			first = d
		} else {
			first.Also = append(first.Also, d)
		}
	}
	return first, nil
}

// resolveClients resolves every client that has a profile and a target
// (validation reports those that do not).
func (c *Config) resolveClients() {
	for _, p := range c.Profiles {
		p.sample, _ = p.targetFor("client")
	}
	c.resolved = map[string]*Resolved{}
	for name, cl := range c.Clients {
		if rc, err := c.Resolve(cl); err == nil {
			c.resolved[name] = rc
		}
	}
}

// secretsFor lists the secret files of p (already for its client) that a
// job with target t needs.
func (p *Profile) secretsFor(t target.Target) Secrets {
	var s Secrets
	if p.Encryption.Mode != "none" && p.Encryption.PassphraseFile != "" {
		s.Passphrase = p.Encryption.PassphraseFile
	}
	if p.Encryption.Mode == "gpg" {
		s.GPGKeys = append([]string(nil), p.Encryption.KeyFiles...)
	}
	for _, sec := range t.Scheme.Secrets() {
		if s.Target == nil {
			s.Target = map[target.Secret]string{}
		}
		_, s.Target[sec] = p.SecretFile(sec)
	}
	return s
}

// UsersOf lists the clients that use profile p, sorted by name, each as
// its destination through p.
func (c *Config) UsersOf(p *Profile) []*Resolved {
	var out []*Resolved
	for _, name := range sortedKeys(c.resolved) {
		for _, d := range c.resolved[name].Destinations() {
			if d.Profile.Name == p.Name && d.Profile.File == p.File {
				out = append(out, d)
			}
		}
	}
	return out
}

// Sample is the profile's target as Load parsed it for a client named
// "client" (zero when it does not parse, which Load reports): for what
// does not depend on the client (its scheme, server, the directory the
// clients' repositories are in), as for a profile no client uses.
func (p *Profile) Sample() target.Target { return p.sample }

// profilesFor returns the profiles client cl uses, in its order: its
// profiles, or its profile, or the host's default_profile. A name that
// names no profile is nil in the list; none at all is an empty list.
func (c *Config) profilesFor(cl *Client) []*Profile {
	names := cl.Profiles
	switch {
	case len(names) > 0:
	case cl.Profile != "":
		names = []string{cl.Profile}
	case c.Host.DefaultProfile != "":
		names = []string{c.Host.DefaultProfile}
	}
	var out []*Profile
	for _, n := range names {
		out = append(out, c.Profiles[n])
	}
	return out
}

// targetFor returns the profile's target for client: {client} replaced by
// the client's name, then parsed (target.Parse). An error names the
// target as the profile spells it.
func (p *Profile) targetFor(client string) (target.Target, error) {
	if err := checkName(client); err != nil {
		return target.Target{}, fmt.Errorf("client name %q: %w", client, err)
	}
	for _, ph := range placeholder.FindAllString(p.Target, -1) {
		if ph != ClientPlaceholder {
			return target.Target{}, fmt.Errorf("%q: unknown placeholder %s (only {client} is replaced)", p.Target, ph)
		}
	}
	t, err := target.Parse(strings.ReplaceAll(p.Target, ClientPlaceholder, client))
	var pe *target.ParseError
	if errors.As(err, &pe) {
		pe.Input = p.Target
	}
	return t, err
}
