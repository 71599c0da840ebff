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
	c := &config.Client{Name: "web", VerifyEvery: 3}
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

	never := &config.Client{Name: "db"}
	due, err = r.VerifyDue(never)
	require.NoError(t, err)
	require.False(t, due)
	require.NoError(t, r.VerifyDone(never))
}
