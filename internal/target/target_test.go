package target

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Every message of config's TargetFor comes from Parse; config checks them
// at file, line and key (hostctl/config).
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
		err  string // the whole message
	}{
		{in: "file:///srv/backup/web", want: Target{Scheme: File, Path: "/srv/backup/web"}},
		{in: "file://localhost/srv/web", want: Target{Scheme: File, Path: "/srv/web"}},
		{in: "sftp://backup@nas:2222/srv/web", want: Target{Scheme: SFTP, User: "backup", Host: "nas", Port: 2222, Path: "/srv/web"}},
		{in: "ssh://nas/srv/web", want: Target{Scheme: SSH, Host: "nas", Path: "/srv/web"}},
		{in: "sftp://[fd00::1]:22/srv", want: Target{Scheme: SFTP, Host: "fd00::1", Port: 22, Path: "/srv"}},
		{in: "ftp://bk@ftp.example.net/backup/web", want: Target{Scheme: FTP, User: "bk", Host: "ftp.example.net", Path: "/backup/web"}},
		{in: "ftps://ftp.example.net:2121/web", want: Target{Scheme: FTPS, Host: "ftp.example.net", Port: 2121, Path: "/web"}},
		{in: "s3://bucket/web", want: Target{Scheme: S3, Host: "bucket", Path: "/web"}},

		{in: "file:///srv/%zz", err: `"file:///srv/%zz" is not a URL: parse "file:///srv/%zz": invalid URL escape "%zz"`},
		{in: "srv/web", err: `"srv/web" has no scheme: want e.g. "file:///srv/backup/{client}"`},
		{in: "b2://bucket/web", err: `"b2://bucket/web": b2:// targets are not supported yet: this version implements file, sftp, ssh, ftp, ftps, s3 and rest`},
		{in: "rest://web@backup.example.net:8000/web", want: Target{Scheme: REST, User: "web", Host: "backup.example.net", Port: 8000, Path: "/web"}},
		{in: "rest:https://host/repo", err: `"rest:https://host/repo": want rest://user@host[:port]/path: the REST server's user (with --private-repos the path starts with it), always over HTTPS`},
		{in: "rest://host/repo", err: `"rest://host/repo": want rest://user@host[:port]/path: the REST server's user (with --private-repos the path starts with it), always over HTTPS`},
		{in: "rest://web:pw@host/web", err: `"rest://web:pw@host/web": no password in the URL: put it in a file (ftp.password_file, rest.password_file, ssh.identity_file)`},
		{in: "gopher://host/x", err: `"gopher://host/x": unknown scheme "gopher": want file, sftp, ssh, ftp, ftps, s3 or rest`},
		{in: "file:///srv/../etc/web", err: `"file:///srv/../etc/web": the path must not contain ".."`},
		{in: "sftp://nas/srv/../web", err: `"sftp://nas/srv/../web": the path must not contain ".."`},
		{in: "file:///srv/web?x=1", err: `"file:///srv/web?x=1": a target takes no query or fragment`},
		{in: "sftp://nas/srv#f", err: `"sftp://nas/srv#f": a target takes no query or fragment`},
		{in: "sftp://-oProxyCommand=x@nas/srv", err: `"sftp://-oProxyCommand=x@nas/srv": user "-oProxyCommand=x" starts with "-" (ssh would read it as an option)`},
		{in: "sftp://back%20up@nas/srv", err: `"sftp://back%20up@nas/srv": user "back up": whitespace or control characters are not allowed`},
		{in: "sftp://bk%0a@nas/srv", err: `"sftp://bk%0a@nas/srv": user "bk\n": whitespace or control characters are not allowed`},
		{in: "sftp://-nas/srv", err: `"sftp://-nas/srv": host "-nas" starts with "-" (ssh would read it as an option)`},
		{in: "sftp://backup:pw@nas/srv", err: `"sftp://backup:pw@nas/srv": no password in the URL: put it in a file (ftp.password_file, rest.password_file, ssh.identity_file)`},
		{in: "sftp:nas/srv", err: `"sftp:nas/srv": want sftp://[user@]host[:port]/path`},
		{in: "sftp:///srv", err: `"sftp:///srv": want sftp://[user@]host[:port]/path`},
		{in: "sftp://:22/srv", err: `"sftp://:22/srv": want sftp://[user@]host[:port]/path`},
		{in: "sftp://nas:0/srv", err: `"sftp://nas:0/srv": port "0": want 1 to 65535`},
		{in: "sftp://nas:70000/srv", err: `"sftp://nas:70000/srv": port "70000": want 1 to 65535`},
		{in: "s3://bucket", err: `"s3://bucket": want s3://bucket/prefix (a prefix per client keeps repositories apart)`},
		{in: "s3://bucket/", err: `"s3://bucket/": want s3://bucket/prefix (a prefix per client keeps repositories apart)`},
		{in: "sftp://nas", err: `"sftp://nas": want a path after the host`},
		{in: "file:srv/web", err: `"file:srv/web": the path must be absolute, as in "file:///srv/backup/{client}" (three slashes)`},
		{in: "file://srv/web", err: `"file://srv/web": a file:// target is on this host; host "srv" is not allowed (three slashes: file:///path)`},
		{in: "file://bk@/srv", err: `"file://bk@/srv": a file:// target takes no user, query or fragment`},
	} {
		got, err := Parse(tc.in)
		if tc.err != "" {
			var pe *ParseError
			if err == nil || err.Error() != tc.err || !errors.As(err, &pe) || pe.Input != tc.in {
				t.Errorf("Parse(%q) = %+v, %v;\n want error %s", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// A ParseError names the target as its caller spelled it (config: with
// {client} still in it).
func TestParseErrorInput(t *testing.T) {
	_, err := Parse("s3://bucket")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%T %v", err, err)
	}
	pe.Input = "s3://{client}"
	if !strings.HasPrefix(err.Error(), `"s3://{client}": want s3://bucket/prefix`) {
		t.Error(err)
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		"file:///srv/backup/web",
		"file:///srv/with%20space/caf%C3%A9",
		"sftp://backup@nas:2222/srv/web",
		"ssh://nas/srv/web",
		"sftp://[fd00::1]/srv",
		"sftp://[fd00::1]:2222/srv",
		"ftp://bk@ftp.example.net/backup/web",
		"ftps://ftp.example.net:2121/web",
		"s3://bucket/web/x",
		"sftp://bk+tag@nas/srv/100%25",
	} {
		tg, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if got := tg.String(); got != s {
			t.Errorf("Parse(%q).String() = %q", s, got)
		}
		back, err := Parse(tg.String())
		if err != nil || back != tg {
			t.Errorf("round trip of %q: %+v, %v; want %+v", s, back, err, tg)
		}
		if err := tg.Check(); err != nil {
			t.Errorf("Check(%q): %v", s, err)
		}
	}
	// A URL spelled otherwise comes back in one form.
	tg, _ := Parse("file://localhost/srv/web")
	if tg.String() != "file:///srv/web" {
		t.Error(tg.String())
	}
}

// Check refuses a Target no URL gives: one a job carries that hostctl did
// not make with Parse.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		t   Target
		err string
	}{
		{Target{Scheme: "gopher", Host: "h", Path: "/x"}, `unknown scheme "gopher"`},
		{Target{Scheme: File, Path: "srv"}, "must be absolute"},
		{Target{Scheme: File, Path: "/srv/../etc"}, `must not contain ".."`},
		{Target{Scheme: File, Host: "nas", Path: "/srv"}, `host "nas" is not allowed`},
		{Target{Scheme: File, User: "u", Path: "/srv"}, "takes no user"},
		{Target{Scheme: SFTP, Path: "/srv"}, "want sftp://[user@]host[:port]/path"},
		{Target{Scheme: SFTP, Host: "nas", User: "-o", Path: "/srv"}, `starts with "-"`},
		{Target{Scheme: SFTP, Host: "nas\n", Path: "/srv"}, "not a URL"},
		{Target{Scheme: SFTP, Host: "nas", Port: -1, Path: "/srv"}, "port"},
		{Target{Scheme: SFTP, Host: "nas/x", Path: "/srv"}, "not a URL"},
		{Target{Scheme: File, Host: "localhost", Path: "/srv"}, "not in the form a URL gives"},
		{Target{Scheme: S3, Host: "bucket", Path: "/"}, "want s3://bucket/prefix"},
	} {
		if err := tc.t.Check(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Check(%+v) = %v, want %q", tc.t, err, tc.err)
		}
	}
}

func TestSchemeData(t *testing.T) {
	want := map[Scheme]struct {
		network, ssh bool
		port         int
		secrets      []Secret
	}{
		File: {},
		SFTP: {true, true, 22, []Secret{SSHIdentity, SSHKnownHosts}},
		SSH:  {true, true, 22, []Secret{SSHIdentity, SSHKnownHosts}},
		FTP:  {true, false, 21, []Secret{FTPPassword}},
		FTPS: {true, false, 990, []Secret{FTPPassword}},
		S3:   {true, false, 0, []Secret{S3AccessKey, S3SecretKey}},
		REST: {true, false, 8000, []Secret{RESTPassword, RESTCA}},
	}
	if got := Schemes(); len(got) != len(want) {
		t.Fatalf("Schemes() = %v", got)
	}
	for _, s := range Schemes() {
		w := want[s]
		if !s.Known() || s.NeedsNetwork() != w.network || s.OverSSH() != w.ssh || s.DefaultPort() != w.port || !slices.Equal(s.Secrets(), w.secrets) {
			t.Errorf("%s: known %v network %v ssh %v port %d secrets %v; want %+v", s, s.Known(), s.NeedsNetwork(), s.OverSSH(), s.DefaultPort(), s.Secrets(), w)
		}
		for _, sec := range s.Secrets() {
			if sec.Why() == "" {
				t.Errorf("%s: secret %s says not what it is", s, sec)
			}
		}
	}
	if Scheme("b2").Known() || Scheme("b2").NeedsNetwork() {
		t.Error("b2 is not implemented")
	}
	s := Schemes()
	s[0] = "x"
	if Schemes()[0] != File {
		t.Error("Schemes returns the table itself")
	}
	if (Target{Scheme: SFTP, Port: 2222}).PortOrDefault() != 2222 || (Target{Scheme: SFTP}).PortOrDefault() != 22 {
		t.Error("PortOrDefault")
	}
}

func TestBackendSchemes(t *testing.T) {
	for _, tc := range []struct {
		backend string
		want    []Scheme
		why     string
	}{
		{"borg", []Scheme{File, SSH, SFTP}, "borg serve"},
		{"restic", []Scheme{File, SSH, SFTP, S3, REST}, ""},
		{"duplicity", []Scheme{File, SSH, SFTP, FTP, FTPS}, "python3-boto3"},
		{"tar", nil, ""},
	} {
		got, why := BackendSchemes(tc.backend)
		if !slices.Equal(got, tc.want) || !strings.Contains(why, tc.why) || (tc.why == "") != (why == "") {
			t.Errorf("BackendSchemes(%s) = %v, %q", tc.backend, got, why)
		}
	}
	// Every scheme has a backend that writes to it.
	for _, s := range Schemes() {
		ok := false
		for _, b := range []string{"borg", "restic", "duplicity"} {
			got, _ := BackendSchemes(b)
			ok = ok || slices.Contains(got, s)
		}
		if !ok {
			t.Errorf("no backend writes to %s", s)
		}
	}
}

func TestCheckWord(t *testing.T) {
	for s, bad := range map[string]bool{"backup": false, "nas.example.net": false, "b-k": false,
		"-oProxyCommand=x": true, "a b": true, "a\tb": true, "a\x00": true, "a\u0085": true} {
		if err := CheckWord("user", s); (err != nil) != bad {
			t.Errorf("CheckWord(%q) = %v", s, err)
		}
	}
}
