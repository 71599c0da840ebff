package config_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

func TestSelectClients(t *testing.T) {
	dir := writeTree(t, map[string]string{"clients/db.toml": "", "clients/app.toml": ""})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)

	names := func(cs []*config.Resolved) []string {
		var out []string
		for _, cl := range cs {
			out = append(out, cl.Name)
		}
		return out
	}
	all, err := c.SelectClients(nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"app", "db", "web"}, names(all), "all, sorted")

	some, err := c.SelectClients([]string{"web", "app", "web"})
	require.NoError(t, err)
	assert.Equal(t, []string{"web", "app"}, names(some), "as given, without duplicates")

	_, err = c.SelectClients([]string{"web", "mail", "dns"})
	require.Error(t, err)
	assert.Equal(t, `unknown client "mail", "dns" (known: app, db, web)`, err.Error())

	c.Clients = map[string]*config.Client{}
	_, err = c.SelectClients([]string{"web"})
	assert.ErrorContains(t, err, "has no *.toml clients")
}

func TestResolvedProfile(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"profiles/q.toml":  "backend = \"borg\"\ntarget = \"file:///q/{client}\"\nencryption.mode = \"none\"\n",
		"clients/db.toml":  "profile = \"q\"\n",
		"clients/web.toml": "",
	})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	cls, err := c.SelectClients([]string{"db", "web"})
	require.NoError(t, err)
	assert.Equal(t, "q", cls[0].Profile.Name)
	assert.Equal(t, "p", cls[1].Profile.Name, "host default")
	_, err = c.Resolve(&config.Client{Name: "x", Profile: "nope"})
	assert.EqualError(t, err, "client x: no profile")
}

// Every message target.Parse has for a profile's target reaches the
// operator at the profile's file, the line of its target key and the key,
// naming the target as the profile spells it ({client} in it).
func TestTargetErrorsAtTheirLine(t *testing.T) {
	ssh := "[ssh]\nidentity_file = \"secrets/p.pass\"\nknown_hosts = \"secrets/p.pass\"\n"
	for _, tc := range []struct{ target, extra, msg string }{
		{"file:///srv/%zz/{client}", "", `"file:///srv/%zz/{client}" is not a URL: parse "file:///srv/%zz/client": invalid URL escape "%zz"`},
		{"/srv/{client}", "", `"/srv/{client}" has no scheme: want e.g. "file:///srv/backup/{client}"`},
		{"b2://bucket/{client}", "", `"b2://bucket/{client}": b2:// targets are not supported yet: this version implements file, sftp, ssh, ftp, ftps, s3 and rest`},
		{"gopher://srv/{client}", "", `"gopher://srv/{client}": unknown scheme "gopher": want file, sftp, ssh, ftp, ftps, s3 or rest`},
		{"file:///srv/../{client}", "", `"file:///srv/../{client}": the path must not contain ".."`},
		{"file:///srv/{client}?x=1", "", `"file:///srv/{client}?x=1": a target takes no query or fragment`},
		{"sftp://-oProxyCommand=x@nas/{client}", ssh, `"sftp://-oProxyCommand=x@nas/{client}": user "-oProxyCommand=x" starts with "-" (ssh would read it as an option)`},
		{"sftp://-nas/{client}", ssh, `"sftp://-nas/{client}": host "-nas" starts with "-" (ssh would read it as an option)`},
		{"sftp://back%20up@nas/{client}", ssh, `"sftp://back%20up@nas/{client}": user "back up": whitespace or control characters are not allowed`},
		{"sftp://backup:pw@nas/{client}", ssh, `"sftp://backup:pw@nas/{client}": no password in the URL: put it in a file (ftp.password_file, rest.password_file, ssh.identity_file)`},
		{"sftp:nas/{client}", ssh, `"sftp:nas/{client}": want sftp://[user@]host[:port]/path`},
		{"sftp://nas:99999/{client}", ssh, `"sftp://nas:99999/{client}": port "99999": want 1 to 65535`},
		{"s3://{client}", "", `"s3://{client}": want s3://bucket/prefix (a prefix per client keeps repositories apart)`},
		{"sftp://nas", ssh, `"sftp://nas": want a path after the host`},
		{"file:srv/{client}", "", `"file:srv/{client}": the path must be absolute, as in "file:///srv/backup/{client}" (three slashes)`},
		{"file://srv/{client}", "", `"file://srv/{client}": a file:// target is on this host; host "srv" is not allowed (three slashes: file:///path)`},
		{"file://bk@/srv/{client}", "", `"file://bk@/srv/{client}": a file:// target takes no user, query or fragment`},
		{"file:///srv/{name}", "", `"file:///srv/{name}": unknown placeholder {name} (only {client} is replaced)`},
	} {
		t.Run(tc.target, func(t *testing.T) {
			prof := strings.Replace(baseTree["profiles/p.toml"], "file:///srv/backup/{client}", tc.target, 1) + tc.extra
			dir := writeTree(t, map[string]string{"profiles/p.toml": prof})
			_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
			var errs config.Errors
			require.ErrorAs(t, err, &errs)
			var got []string
			for _, e := range errs {
				if e.Key == "target" {
					got = append(got, fmt.Sprintf("%s:%d: %s", filepath.Base(e.File), e.Line, e.Msg))
				}
			}
			assert.Equal(t, []string{"p.toml:2: " + tc.msg}, got, "%v", err)
		})
	}
}
