package config

import (
	"fmt"
	"slices"
	"strings"
)

// ClientPlaceholder in a profile's target or secret file paths is replaced
// by the client's name: passphrase_file = "secrets/{client}.passphrase"
// gives every client of the profile its own passphrase, so that one
// client's appliance (which holds that client's secrets) can read no other
// client's backups.
const ClientPlaceholder = "{client}"

// secretFile is one secret file setting of a profile.
type secretFile struct {
	key  string
	path *string
}

// secretFiles lists the profile's secret file settings that are set.
func (p *Profile) secretFiles() []secretFile {
	var out []secretFile
	add := func(key string, path *string) {
		if *path != "" {
			out = append(out, secretFile{key, path})
		}
	}
	add("encryption.passphrase_file", &p.Encryption.PassphraseFile)
	for i := range p.Encryption.KeyFiles {
		add("encryption.key_files", &p.Encryption.KeyFiles[i])
	}
	add("ssh.identity_file", &p.SSH.IdentityFile)
	add("ssh.known_hosts", &p.SSH.KnownHosts)
	add("maintenance.identity_file", &p.Maintenance.IdentityFile)
	add("s3.access_key_file", &p.S3.AccessKeyFile)
	add("s3.secret_key_file", &p.S3.SecretKeyFile)
	add("ftp.password_file", &p.FTP.PasswordFile)
	add("rest.password_file", &p.REST.PasswordFile)
	add("rest.ca_file", &p.REST.CAFile)
	add("maintenance.password_file", &p.Maintenance.PasswordFile)
	return out
}

// PerClient says whether any of the profile's secret file paths carries
// {client}.
func (p *Profile) PerClient() bool {
	for _, s := range p.secretFiles() {
		if strings.Contains(*s.path, ClientPlaceholder) {
			return true
		}
	}
	return false
}

// forClient returns the profile as client uses it: a copy with {client}
// in the secret file paths replaced by the client's name. The target keeps
// its placeholder (targetFor replaces it).
func (p *Profile) forClient(client string) *Profile {
	q := *p
	q.Encryption.KeyFiles = slices.Clone(p.Encryption.KeyFiles)
	for _, s := range q.secretFiles() {
		*s.path = strings.ReplaceAll(*s.path, ClientPlaceholder, client)
	}
	return &q
}

// usersOf lists the clients that use profile p, sorted.
func (v *validator) usersOf(p *Profile) []string {
	var users []string
	for _, name := range sortedKeys(v.c.Clients) {
		if slices.Contains(v.c.profilesFor(v.c.Clients[name]), p) {
			users = append(users, name)
		}
	}
	return users
}

// secretFile checks one secret file setting of p: without {client} the
// file itself, with it the file of every client that uses the profile,
// each problem naming the client.
func (v *validator) secretFile(p *Profile, key, file string) {
	for _, ph := range placeholder.FindAllString(file, -1) {
		if ph != ClientPlaceholder {
			v.at(p.File, key, "%q: unknown placeholder %s (only %s is replaced)", file, ph, ClientPlaceholder)
			return
		}
	}
	if !strings.Contains(file, ClientPlaceholder) {
		if err := checkSecretFile(file); err != nil {
			v.at(p.File, key, "%v", err)
		}
		return
	}
	for _, name := range v.usersOf(p) {
		f := strings.ReplaceAll(file, ClientPlaceholder, name)
		if err := checkSecretFile(f); err != nil {
			v.at(p.File, key, "%v", fmt.Errorf("client %s: %w", name, err))
		}
	}
}
