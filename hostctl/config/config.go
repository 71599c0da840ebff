package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// SelectClients returns the named clients, resolved, in the order given
// (duplicates dropped), or all clients sorted by name when names is empty.
// Unknown names are an error that lists the known ones.
func (c *Config) SelectClients(names []string) ([]*Resolved, error) {
	if len(names) == 0 {
		names = sortedKeys(c.Clients)
	}
	var out []*Resolved
	var unknown []string
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if c.Clients[n] == nil {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		rc := c.resolved[n]
		if rc == nil {
			// Load resolves every client or fails; only a Config built
			// in code without Resolve gets here.
			return nil, fmt.Errorf("client %s is not resolved", n)
		}
		out = append(out, rc)
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
	case target.RESTPassword:
		return "rest.password_file", p.REST.PasswordFile
	case target.RESTCA:
		return "rest.ca_file", p.REST.CAFile
	}
	return string(s), ""
}
