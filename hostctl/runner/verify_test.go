package runner

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

// TestVerifyDue: verify_every = 3 calls for a verify after the 3rd
// successful backup, again 3 after a passed verify, and after every backup
// while the verify keeps failing (no VerifyDone).
func TestVerifyDue(t *testing.T) {
	r := New(&config.Config{Host: config.Host{StateDir: t.TempDir()}}, Deps{})
	c := &config.Resolved{Client: &config.Client{Name: "web", VerifyEvery: 3}}
	var got []bool
	for i := 0; i < 3; i++ {
		due, err := r.VerifyDue(c)
		require.NoError(t, err)
		got = append(got, due)
	}
	require.Equal(t, []bool{false, false, true}, got)
	due, err := r.VerifyDue(c) // the verify failed: due again
	require.NoError(t, err)
	require.True(t, due)
	require.NoError(t, r.VerifyDone(c))
	due, err = r.VerifyDue(c)
	require.NoError(t, err)
	require.False(t, due)

	never := &config.Resolved{Client: &config.Client{Name: "db"}}
	due, err = r.VerifyDue(never)
	require.NoError(t, err)
	require.False(t, due)
	require.NoError(t, r.VerifyDone(never))
}

// Each destination of a client keeps its own verify_every count: a
// verify of one does not restart the other's.
func TestVerifyDueDestinations(t *testing.T) {
	r := New(&config.Config{Host: config.Host{StateDir: t.TempDir()}}, Deps{})
	cl := &config.Client{Name: "web", VerifyEvery: 2, Profiles: []string{"local", "off"}}
	local := &config.Resolved{Client: cl, Profile: &config.Profile{Name: "local"}}
	off := &config.Resolved{Client: cl, Profile: &config.Profile{Name: "off"}, Index: 1}
	due := func(d *config.Resolved) bool {
		ok, err := r.VerifyDue(d)
		require.NoError(t, err)
		return ok
	}
	require.False(t, due(local))
	require.False(t, due(off))
	require.True(t, due(local))
	require.NoError(t, r.VerifyDone(local))
	require.True(t, due(off), "off's count is its own")
	require.False(t, due(local), "local restarted after its verify")
	require.Equal(t, "off", off.RowProfile())
	require.Equal(t, "", (&config.Resolved{Client: &config.Client{Name: "db"}}).RowProfile(), "a client with one destination: rows as before")
}
