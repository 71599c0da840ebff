package config

import (
	"errors"
	"fmt"
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
	p := c.profileFor(cl)
	if p == nil {
		return nil, fmt.Errorf("client %s: no profile", cl.Name)
	}
	t, err := p.targetFor(cl.Name)
	if err != nil {
		return nil, fmt.Errorf("client %s, profile %s: key \"target\": %w", cl.Name, p.Name, err)
	}
	own := p.forClient(cl.Name)
	return &Resolved{Client: cl, Profile: own, Target: t, Secrets: own.secretsFor(t), Tree: cl.Backup.Mount.Tree()}, nil
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

// UsersOf lists the clients that use profile p, sorted by name.
func (c *Config) UsersOf(p *Profile) []*Resolved {
	var out []*Resolved
	for _, name := range sortedKeys(c.resolved) {
		if rc := c.resolved[name]; rc.Profile.Name == p.Name && rc.Profile.File == p.File {
			out = append(out, rc)
		}
	}
	return out
}

// Sample is the profile's target as Load parsed it for a client named
// "client" (zero when it does not parse, which Load reports): for what
// does not depend on the client (its scheme, server, the directory the
// clients' repositories are in), as for a profile no client uses.
func (p *Profile) Sample() target.Target { return p.sample }

// profileFor returns the profile client cl uses (its own, or the host's
// default_profile), or nil if there is none.
func (c *Config) profileFor(cl *Client) *Profile {
	name := cl.Profile
	if name == "" {
		name = c.Host.DefaultProfile
	}
	return c.Profiles[name]
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
