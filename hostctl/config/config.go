package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// ProfileFor returns the profile client c uses (its own, or the host's
// default_profile), or nil if there is none; Load guarantees one.
func (c *Config) ProfileFor(cl *Client) *Profile {
	name := cl.Profile
	if name == "" {
		name = c.Host.DefaultProfile
	}
	return c.Profiles[name]
}

// SelectClients returns the named clients in the order given (duplicates
// dropped), or all clients sorted by name when names is empty. Unknown names
// are an error that lists the known ones.
func (c *Config) SelectClients(names []string) ([]*Client, error) {
	if len(names) == 0 {
		out := make([]*Client, 0, len(c.Clients))
		for _, n := range sortedKeys(c.Clients) {
			out = append(out, c.Clients[n])
		}
		return out, nil
	}
	var out []*Client
	var unknown []string
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		cl := c.Clients[n]
		if cl == nil {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		out = append(out, cl)
	}
	if len(unknown) > 0 {
		known := sortedKeys(c.Clients)
		if len(known) == 0 {
			return nil, fmt.Errorf("unknown client %s: %s has no *.toml clients", strings.Join(unknown, ", "), c.Host.ClientsDir)
		}
		return nil, fmt.Errorf("unknown client %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}

var placeholder = regexp.MustCompile(`\{[^}]*\}`)

// TargetFor returns the profile's target for client: {client} replaced by
// the client's name, then parsed (target.Parse). An error names the
// target as the profile spells it.
func (p *Profile) TargetFor(client string) (target.Target, error) {
	if err := checkName(client); err != nil {
		return target.Target{}, fmt.Errorf("client name %q: %w", client, err)
	}
	for _, ph := range placeholder.FindAllString(p.Target, -1) {
		if ph != "{client}" {
			return target.Target{}, fmt.Errorf("%q: unknown placeholder %s (only {client} is replaced)", p.Target, ph)
		}
	}
	t, err := target.Parse(strings.ReplaceAll(p.Target, "{client}", client))
	var pe *target.ParseError
	if errors.As(err, &pe) {
		pe.Input = p.Target
	}
	return t, err
}

// SecretFile is the profile's file of a secret its target needs: the
// setting's key and its value ("" unset).
func (p *Profile) SecretFile(s target.Secret) (key, file string) {
	switch s {
	case target.SSHIdentity:
		return "ssh.identity_file", p.SSH.IdentityFile
	case target.SSHKnownHosts:
		return "ssh.known_hosts", p.SSH.KnownHosts
	case target.FTPPassword:
		return "ftp.password_file", p.FTP.PasswordFile
	case target.S3AccessKey:
		return "s3.access_key_file", p.S3.AccessKeyFile
	case target.S3SecretKey:
		return "s3.secret_key_file", p.S3.SecretKeyFile
	}
	return string(s), ""
}
