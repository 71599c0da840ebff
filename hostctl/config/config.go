package config

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
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

// Target URL schemes the design has in mind but this version does not
// implement yet.
var schemesLater = []string{"b2", "rest", "rclone", "scp"}

// NetworkSchemes are the target schemes that need the appliance's network.
var NetworkSchemes = []string{"sftp", "ssh", "ftp", "ftps", "s3"}

// TargetFor returns the profile's target URL for client, with {client}
// replaced by the client's name: file:///path (a directory of this host),
// sftp://[user@]host[:port]/path and ssh://… (the same: an ssh server; borg
// needs borg on it), ftp:// and ftps://[user@]host[:port]/path, and
// s3://bucket/prefix. Passwords never go into the URL: they come from files.
func (p *Profile) TargetFor(client string) (*url.URL, error) {
	if err := checkName(client); err != nil {
		return nil, fmt.Errorf("client name %q: %w", client, err)
	}
	for _, ph := range placeholder.FindAllString(p.Target, -1) {
		if ph != "{client}" {
			return nil, fmt.Errorf("%q: unknown placeholder %s (only {client} is replaced)", p.Target, ph)
		}
	}
	s := strings.ReplaceAll(p.Target, "{client}", client)
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", p.Target, err)
	}
	switch {
	case u.Scheme == "":
		return nil, fmt.Errorf("%q has no scheme: want e.g. \"file:///srv/backup/{client}\"", p.Target)
	case slices.Contains(schemesLater, u.Scheme):
		return nil, fmt.Errorf("%q: %s:// targets are not supported yet: this version implements file, sftp, ssh, ftp, ftps and s3", p.Target, u.Scheme)
	case u.Scheme != "file" && !slices.Contains(NetworkSchemes, u.Scheme):
		return nil, fmt.Errorf("%q: unknown scheme %q: want file, sftp, ssh, ftp, ftps or s3", p.Target, u.Scheme)
	case slices.Contains(strings.Split(u.Path, "/"), ".."):
		return nil, fmt.Errorf("%q: the path must not contain \"..\"", p.Target)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q: a target takes no query or fragment", p.Target)
	}
	if u.Scheme != "file" {
		if err := checkSSHWord("user", u.User.Username()); err != nil && u.User != nil {
			return nil, fmt.Errorf("%q: %w", p.Target, err)
		}
		if err := checkSSHWord("host", u.Hostname()); err != nil {
			return nil, fmt.Errorf("%q: %w", p.Target, err)
		}
		if _, ok := u.User.Password(); ok {
			return nil, fmt.Errorf("%q: no password in the URL: put it in a file (ftp.password_file, ssh.identity_file)", p.Target)
		}
		if u.Host == "" || u.Opaque != "" {
			return nil, fmt.Errorf("%q: want %s://[user@]host[:port]/path", p.Target, u.Scheme)
		}
		if u.Scheme == "s3" && strings.Trim(u.Path, "/") == "" {
			return nil, fmt.Errorf("%q: want s3://bucket/prefix (a prefix per client keeps repositories apart)", p.Target)
		}
		if !path.IsAbs(u.Path) {
			return nil, fmt.Errorf("%q: want a path after the host", p.Target)
		}
		return u, nil
	}
	switch {
	case u.Opaque != "" || !path.IsAbs(u.Path):
		return nil, fmt.Errorf("%q: the path must be absolute, as in \"file:///srv/backup/{client}\" (three slashes)", p.Target)
	case u.Host != "" && u.Host != "localhost":
		return nil, fmt.Errorf("%q: a file:// target is on this host; host %q is not allowed (three slashes: file:///path)", p.Target, u.Host)
	case u.User != nil:
		return nil, fmt.Errorf("%q: a file:// target takes no user, query or fragment", p.Target)
	}
	u.Host = ""
	return u, nil
}
