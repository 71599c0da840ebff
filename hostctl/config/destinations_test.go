package config_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

// A client with profiles = [...] resolves to one destination per profile,
// in its order, each with its own target and secrets; UsersOf a profile
// finds the client as its destination through that profile.
func TestDestinations(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"profiles/off.toml": "backend = \"restic\"\ntarget = \"file:///off/{client}\"\n[encryption]\npassphrase_file = \"secrets/p.pass\"\n",
		"clients/web.toml":  "profiles = [\"p\", \"off\"]\n",
		"clients/db.toml":   "",
	})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	cls, err := c.SelectClients([]string{"web", "db"})
	require.NoError(t, err)
	web, db := cls[0], cls[1]

	require.True(t, web.Multi())
	ds := web.Destinations()
	require.Len(t, ds, 2)
	assert.Equal(t, "p", ds[0].Profile.Name)
	assert.Equal(t, "/srv/backup/web", ds[0].Target.Path)
	assert.Equal(t, "off", ds[1].Profile.Name)
	assert.Equal(t, "restic", ds[1].Profile.Backend)
	assert.Equal(t, "/off/web", ds[1].Target.Path)
	assert.Same(t, web.Client, ds[1].Client)
	assert.Nil(t, ds[1].Also)

	d, err := web.Destination("off")
	require.NoError(t, err)
	assert.Same(t, ds[1], d)
	d, err = web.Destination("")
	require.NoError(t, err)
	assert.Same(t, web, d, "no --profile: the first destination")
	_, err = web.Destination("nas")
	assert.EqualError(t, err, `client web has no destination with profile "nas" (its profiles: p, off)`)

	assert.False(t, db.Multi())
	assert.Len(t, db.Destinations(), 1)

	var users []string
	for _, u := range c.UsersOf(c.Profiles["off"]) {
		users = append(users, u.Name+"/"+u.Profile.Name)
	}
	assert.Equal(t, []string{"web/off"}, users)
	users = nil
	for _, u := range c.UsersOf(c.Profiles["p"]) {
		users = append(users, u.Name+"/"+u.Profile.Name)
	}
	assert.Equal(t, []string{"db/p", "web/p"}, users)
}
