package backend

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A VM record is no backup: never the latest to restore, never listed,
// and named on the backup it belongs to.
func TestRecordsAreNoBackups(t *testing.T) {
	last, err := ParseBorgLast([]byte(`{"archives":[{"name":"web-1"},{"name":"vm+web-1"},{"name":"web-2"},{"name":"vm+web-2"}]}`))
	require.NoError(t, err)
	require.Equal(t, "web-2", last)
	_, err = ParseBorgLast([]byte(`{"archives":[{"name":"vm+web-1"}]}`))
	require.ErrorContains(t, err, "no archives")

	snaps, err := ParseBorgInfo([]byte(`{"archives":[
		{"name":"web-1","start":"2026-03-01T10:00:00.000000"},
		{"name":"vm+web-1","start":"2026-03-01T10:00:00.000000"},
		{"name":"web-2","start":"2026-03-02T10:00:00.000000"}]}`))
	require.NoError(t, err)
	require.Len(t, snaps, 2)
	require.Equal(t, []string{"vm+web-1", ""}, []string{snaps[0].VM, snaps[1].VM})

	snaps, err = ParseResticSnapshots([]byte(`[
		{"id":"4f0c2a1b00000000000000000000000000000000000000000000000000000001","time":"2026-03-01T10:00:00Z","tags":["snapshot-backup"]},
		{"id":"aaaa000000000000000000000000000000000000000000000000000000000002","time":"2026-03-01T10:00:01Z","tags":["snapshot-backup-vm","of:4f0c2a1b"]},
		{"id":"bbbb000000000000000000000000000000000000000000000000000000000003","time":"2026-03-02T10:00:00Z","tags":["snapshot-backup"]},
		{"id":"cccc000000000000000000000000000000000000000000000000000000000004","time":"2026-03-02T10:00:01Z","tags":["snapshot-backup-vm"]}]`))
	require.NoError(t, err)
	require.Len(t, snaps, 2, "record snapshots are not listed, even one that names no backup")
	require.Equal(t, "aaaa000000000000000000000000000000000000000000000000000000000002", snaps[0].VM)
	require.Empty(t, snaps[1].VM)
}
