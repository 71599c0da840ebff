package config_test

import (
	"strings"

	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

func TestTargetFor(t *testing.T) {
	tests := []struct {
		target, client, want, err string
	}{
		{"file:///srv/backup/{client}", "web", "file:///srv/backup/web", ""},
		{"file:///srv/{client}/borg", "db-1.example", "file:///srv/db-1.example/borg", ""},
		{"file://localhost/srv/{client}", "web", "file:///srv/web", ""},
		{"file:///srv/shared", "web", "file:///srv/shared", ""},
		{"file:///srv/{client}", "../etc", "", "client name"},
		{"file:///srv/{client}", "", "", "client name"},
		{"file:///srv/{name}", "web", "", "unknown placeholder {name}"},
		{"sftp://backup@nas:2222/srv/{client}", "web", "sftp://backup@nas:2222/srv/web", ""},
		{"sftp://backup:pw@nas/srv/{client}", "web", "", "no password in the URL"},
		{"s3://bucket", "web", "", "want s3://bucket/prefix"},
		{"b2://bucket/{client}", "web", "", "not supported yet"},
		{"file:///srv/../etc/{client}", "web", "", `".."`},
		{"file:///srv/{client}?x=1", "web", "", "no query or fragment"},
		{"srv/{client}", "web", "", "no scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.target+" "+tc.client, func(t *testing.T) {
			u, err := (&config.Profile{Target: tc.target}).TargetFor(tc.client)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, u.String())
			assert.Equal(t, tc.want[:strings.Index(tc.want, ":")], u.Scheme)
		})
	}
}

func TestSelectClients(t *testing.T) {
	dir := writeTree(t, map[string]string{"clients/db.toml": "", "clients/app.toml": ""})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)

	names := func(cs []*config.Client) []string {
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

func TestProfileFor(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"profiles/q.toml":  "backend = \"borg\"\ntarget = \"file:///q/{client}\"\nencryption.mode = \"none\"\n",
		"clients/db.toml":  "profile = \"q\"\n",
		"clients/web.toml": "",
	})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	assert.Equal(t, "q", c.ProfileFor(c.Clients["db"]).Name)
	assert.Equal(t, "p", c.ProfileFor(c.Clients["web"]).Name, "host default")
	assert.Nil(t, c.ProfileFor(&config.Client{Profile: "nope"}))
}
