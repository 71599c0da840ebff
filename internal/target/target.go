// Package target is where backups go: a repository location, parsed once
// from a profile's URL (hostctl/config) and carried parsed in the job
// (internal/job) to the appliance, whose backends turn it into their own
// repository syntax. Everything the rest of the program knows about a
// scheme (does it need the network, is it reached through ssh, its port,
// the secret files it needs, which backends write to it) is data here, so
// that adding a scheme means this package, the argv builder of each backend
// that writes to it, and the documentation.
package target

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// Scheme is a target URL's scheme.
type Scheme string

// The schemes this version implements.
const (
	File Scheme = "file" // a directory of this host, shared with the appliance over virtio-9p
	SFTP Scheme = "sftp" // an ssh server's sftp subsystem
	SSH  Scheme = "ssh"  // the same server; borg runs `borg serve` on it
	FTP  Scheme = "ftp"
	FTPS Scheme = "ftps" // FTP over implicit TLS
	S3   Scheme = "s3"   // s3://BUCKET/PREFIX, at the profile's endpoint
	// REST is restic's REST server (rest-server), over HTTPS with a user
	// and password: rest://USER@HOST[:PORT]/PATH. Run with --append-only
	// and --private-repos it lets each user only add to /USER/….
	REST Scheme = "rest"
)

// Secret is a credential file a target's scheme needs on the job disk,
// besides the repository's passphrase. Its value names the file there
// (after job.SecretPrefix).
type Secret string

// The secrets of the schemes.
const (
	SSHIdentity   Secret = "ssh-identity"    // the private key the appliance logs in with
	SSHKnownHosts Secret = "ssh-known-hosts" // the server's pinned host key
	FTPPassword   Secret = "ftp-password"
	S3AccessKey   Secret = "s3-access-key"
	S3SecretKey   Secret = "s3-secret-key"
	RESTPassword  Secret = "rest-password" // the REST server user's password
	RESTCA        Secret = "rest-ca"       // the server's certificate or its CA (not secret, but pinned)
)

// secretWhy says what each secret is, for the error that it is missing.
var secretWhy = map[Secret]string{
	SSHIdentity:   "the private key the appliance logs in with",
	SSHKnownHosts: "the pinned host key: the appliance never trusts an unknown host",
	FTPPassword:   "the ftp password",
	S3AccessKey:   "the access key id",
	S3SecretKey:   "the secret access key",
	RESTPassword:  "the REST server user's password",
	RESTCA:        "the server's TLS certificate or its CA: the appliance trusts no other",
}

// Why says what the secret is.
func (s Secret) Why() string { return secretWhy[s] }

// scheme is what the program knows about one scheme.
type scheme struct {
	name Scheme
	// network: reached over the appliance's network (else a host
	// directory shared with it).
	network bool
	// ssh: reached through an ssh server (the appliance writes an ssh
	// configuration with the pinned known_hosts for it).
	ssh bool
	// port is the tools' default port; 0 where the URL has none of its
	// own (s3: the endpoint's).
	port    int
	secrets []Secret
}

// schemes in the order the messages list them.
var schemes = []scheme{
	{name: File},
	{name: SFTP, network: true, ssh: true, port: 22, secrets: []Secret{SSHIdentity, SSHKnownHosts}},
	{name: SSH, network: true, ssh: true, port: 22, secrets: []Secret{SSHIdentity, SSHKnownHosts}},
	{name: FTP, network: true, port: 21, secrets: []Secret{FTPPassword}},
	{name: FTPS, network: true, port: 990, secrets: []Secret{FTPPassword}},
	{name: S3, network: true, secrets: []Secret{S3AccessKey, S3SecretKey}},
	{name: REST, network: true, port: 8000, secrets: []Secret{RESTPassword, RESTCA}},
}

// schemesLater are target schemes the design has in mind but this version
// does not implement yet.
var schemesLater = []Scheme{"b2", "rclone", "scp"}

// Schemes lists the implemented schemes.
func Schemes() []Scheme {
	out := make([]Scheme, len(schemes))
	for i, s := range schemes {
		out[i] = s.name
	}
	return out
}

func (s Scheme) info() (scheme, bool) {
	for _, i := range schemes {
		if i.name == s {
			return i, true
		}
	}
	return scheme{}, false
}

// Known says whether this version implements the scheme.
func (s Scheme) Known() bool { _, ok := s.info(); return ok }

// NeedsNetwork says whether targets of the scheme are reached over the
// appliance's network; the others are directories of this host.
func (s Scheme) NeedsNetwork() bool { i, _ := s.info(); return i.network }

// OverSSH says whether targets of the scheme are reached through an ssh
// server, with its identity and pinned host key.
func (s Scheme) OverSSH() bool { i, _ := s.info(); return i.ssh }

// DefaultPort is the port the tools use when the URL names none; 0 where
// the scheme has no port of its own.
func (s Scheme) DefaultPort() int { i, _ := s.info(); return i.port }

// Secrets lists the secret files targets of the scheme need, in order.
func (s Scheme) Secrets() []Secret { i, _ := s.info(); return slices.Clone(i.secrets) }

// Which schemes each backend writes to, and why not to the others. borg
// needs borg on an ssh server (borg serve); restic speaks sftp and S3
// itself; duplicity's S3 backend needs python3-boto3, which the appliance
// leaves out (90 MB).
var backendSchemes = map[string]struct {
	schemes []Scheme
	why     string
}{
	"borg":      {[]Scheme{File, SSH, SFTP}, " (borg stores only in a directory or through `borg serve` on an ssh server; for S3, FTP or a REST server use restic or duplicity)"},
	"restic":    {[]Scheme{File, SSH, SFTP, S3, REST}, ""},
	"duplicity": {[]Scheme{File, SSH, SFTP, FTP, FTPS}, " (duplicity's S3 backend needs python3-boto3, which the appliance leaves out; restic writes to S3 and to restic's REST server)"},
}

// BackendSchemes lists the schemes a backend writes to (nil for a backend
// it does not know) and why it lacks the others ("" when that needs no
// saying), for the error.
func BackendSchemes(backend string) ([]Scheme, string) {
	b, ok := backendSchemes[backend]
	if !ok {
		return nil, ""
	}
	return slices.Clone(b.schemes), b.why
}

// Target is a parsed target: the repository location of one client.
type Target struct {
	Scheme Scheme `toml:"scheme"`
	// User to log in as ("" = the tool's default); network targets only.
	User string `toml:"user,omitempty"`
	// Host is the server, or for s3 the bucket; "" for file targets.
	Host string `toml:"host,omitempty"`
	// Port is the server's port; 0 is the scheme's default.
	Port int `toml:"port,omitzero"`
	// Path is absolute: the directory on this host (file), on the server,
	// or the prefix in the bucket (s3).
	Path string `toml:"path"`
}

// NeedsNetwork says whether the target is reached over the network.
func (t Target) NeedsNetwork() bool { return t.Scheme.NeedsNetwork() }

// PortOrDefault is the port to reach the target on.
func (t Target) PortOrDefault() int {
	if t.Port != 0 {
		return t.Port
	}
	return t.Scheme.DefaultPort()
}

// String is the target as a URL, e.g. sftp://bk@nas:2222/srv/web; Parse
// reads it back to the same Target.
func (t Target) String() string {
	u := url.URL{Scheme: string(t.Scheme), Path: t.Path}
	if t.User != "" {
		u.User = url.User(t.User)
	}
	switch {
	case t.Port != 0:
		u.Host = net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	case strings.Contains(t.Host, ":"):
		u.Host = "[" + t.Host + "]" // an IPv6 address
	default:
		u.Host = t.Host
	}
	return u.String()
}

// Check checks a Target that did not come from Parse (one read from a
// job): it must be what Parse makes of its String.
func (t Target) Check() error {
	p, err := Parse(t.String())
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if p != t {
		return fmt.Errorf("target %q: not in the form a URL gives (%+v, read back as %+v)", t.String(), t, p)
	}
	return nil
}

// ParseError is a target that does not parse. Its message starts with the
// target quoted; Input may be set to another spelling of it (a profile's,
// before its placeholders were replaced).
type ParseError struct {
	Input string
	// Msg follows the quoted input: " is not a URL: ", ": the path …".
	Msg string
	Err error // the cause, or nil
}

func (e *ParseError) Error() string {
	s := strconv.Quote(e.Input) + e.Msg
	if e.Err != nil {
		s += e.Err.Error()
	}
	return s
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads a target URL strictly: file:///path (a directory of this
// host), sftp://[user@]host[:port]/path and ssh://… (the same: an ssh
// server; borg needs borg on it), ftp:// and ftps://[user@]host[:port]/path,
// s3://bucket/prefix, and rest://user@host[:port]/path (restic's REST
// server, always over HTTPS). Passwords never go into the URL: they come from
// files. Errors are *ParseError.
func Parse(s string) (Target, error) {
	fail := func(format string, args ...any) (Target, error) {
		return Target{}, &ParseError{Input: s, Msg: fmt.Sprintf(format, args...)}
	}
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, &ParseError{Input: s, Msg: " is not a URL: ", Err: err}
	}
	sc := Scheme(u.Scheme)
	info, known := sc.info()
	switch {
	case u.Scheme == "":
		return fail(" has no scheme: want e.g. \"file:///srv/backup/{client}\"")
	case slices.Contains(schemesLater, sc):
		return fail(": %s:// targets are not supported yet: this version implements %s", sc, list(" and "))
	case !known:
		return fail(": unknown scheme %q: want %s", u.Scheme, list(" or "))
	case slices.Contains(strings.Split(u.Path, "/"), ".."):
		return fail(": the path must not contain \"..\"")
	case u.RawQuery != "" || u.Fragment != "":
		return fail(": a target takes no query or fragment")
	}
	t := Target{Scheme: sc, Path: u.Path}
	if !info.network {
		switch {
		case u.Opaque != "" || !path.IsAbs(u.Path):
			return fail(": the path must be absolute, as in \"file:///srv/backup/{client}\" (three slashes)")
		case u.Host != "" && u.Host != "localhost":
			return fail(": a file:// target is on this host; host %q is not allowed (three slashes: file:///path)", u.Host)
		case u.User != nil:
			return fail(": a file:// target takes no user, query or fragment")
		}
		return t, nil
	}
	t.User, t.Host = u.User.Username(), u.Hostname()
	if u.User != nil {
		if err := CheckWord("user", t.User); err != nil {
			return Target{}, &ParseError{Input: s, Msg: ": ", Err: err}
		}
	}
	if err := CheckWord("host", t.Host); err != nil {
		return Target{}, &ParseError{Input: s, Msg: ": ", Err: err}
	}
	if _, ok := u.User.Password(); ok {
		return fail(": no password in the URL: put it in a file (ftp.password_file, rest.password_file, ssh.identity_file)")
	}
	if sc == REST && (t.Host == "" || u.Opaque != "" || t.User == "") {
		return fail(": want rest://user@host[:port]/path: the REST server's user (with --private-repos the path starts with it), always over HTTPS")
	}
	if t.Host == "" || u.Opaque != "" {
		return fail(": want %s://[user@]host[:port]/path", sc)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fail(": port %q: want 1 to 65535", p)
		}
		t.Port = n
	}
	if sc == S3 && strings.Trim(u.Path, "/") == "" {
		return fail(": want s3://bucket/prefix (a prefix per client keeps repositories apart)")
	}
	if !path.IsAbs(u.Path) {
		return fail(": want a path after the host")
	}
	return t, nil
}

// list names the implemented schemes: "file, sftp, …, ftps" + last + "s3".
func list(last string) string {
	names := make([]string, len(schemes))
	for i, s := range schemes {
		names[i] = string(s.name)
	}
	return strings.Join(names[:len(names)-1], ", ") + last + names[len(names)-1]
}

// CheckWord checks a user or host name that ends up on an ssh (or other
// tool's) command line or in its configuration: no leading "-" (an option)
// and no whitespace or control characters (another option or line).
func CheckWord(what, s string) error {
	switch {
	case strings.HasPrefix(s, "-"):
		return fmt.Errorf("%s %q starts with \"-\" (ssh would read it as an option)", what, s)
	case strings.ContainsFunc(s, unicode.IsSpace) || textsafe.HasControl(s):
		return fmt.Errorf("%s %q: whitespace or control characters are not allowed", what, s)
	}
	return nil
}
