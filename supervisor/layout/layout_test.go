package layout

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

// recordRunner records each command and fails them all: ActivateLVM's
// first lvm(8) call ends the test's interest.
type recordRunner struct{ calls *[]string }

func (r recordRunner) Output(_ context.Context, argv ...string) ([]byte, error) {
	*r.calls = append(*r.calls, argv[0]+" "+argv[1])
	return nil, errors.New("no lvm here")
}

// TestActivateLVMLoadsDMOnlyForPVs: device-mapper's modules are loaded
// (LoadDM) before the first lvm command, and only when a disk holds an LVM
// physical volume.
func TestActivateLVMLoadsDMOnlyForPVs(t *testing.T) {
	var calls []string
	l := &Layout{Run: recordRunner{&calls}, LoadDM: func() { calls = append(calls, "load dm") }}
	lvs, err := l.ActivateLVM(context.Background(), []blockdev.Device{{Dev: "vdb1", FSType: "ext4"}, {Dev: "vdb2", FSType: "xfs"}})
	require.NoError(t, err)
	require.Empty(t, lvs)
	require.Empty(t, calls, "no physical volume: neither modules nor lvm")

	_, err = l.ActivateLVM(context.Background(), []blockdev.Device{{Dev: "vdb1", FSType: "ext4"}, {Dev: "vdb2", FSType: "LVM2_member"}})
	require.Error(t, err)
	require.Equal(t, []string{"load dm", "lvm pvs"}, calls)
}
