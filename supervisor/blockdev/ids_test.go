package blockdev

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWantedIDs(t *testing.T) {
	root := Device{Dev: "vdc", ClientDev: "vda", FSType: "ext4", UUID: "11111111-0000-0000-0000-000000000001", Label: "blank-root"}
	data := Device{Dev: "vdd", ClientDev: "vdb", FSType: "ext4", UUID: "22222222-0000-0000-0000-000000000002"}
	boot := Device{Dev: "vdd1", ClientDev: "vdb", Part: 1, FSType: "vfat", UUID: "ABCD-0001", Label: "EFI"}
	fstab, err := ParseFstab(`# restored
LABEL=client-root / ext4 defaults 0 1
UUID=0A1B2C3D-0000-0000-0000-00000000DA7A /srv/data ext4 defaults 0 2
/dev/disk/by-uuid/ABCD-0001 /boot/efi vfat defaults 0 2
UUID=99999999-0000-0000-0000-000000000009 none swap sw 0 0
/dev/vdc1 /srv/other ext4 defaults 0 2
`)
	require.NoError(t, err)
	got, err := WantedIDs(fstab, map[string]Device{"/": root, "/srv/data": data, "/boot/efi": boot})
	require.NoError(t, err)
	require.Equal(t, []IDChange{
		{Dev: root, Where: "/", Label: "client-root"},
		{Dev: data, Where: "/srv/data", UUID: "0a1b2c3d-0000-0000-0000-00000000da7a"},
	}, got, "the EFI partition already has its UUID; swap and paths need nothing")
	require.Equal(t, "vdb on /srv/data: UUID 22222222-0000-0000-0000-000000000002 → 0a1b2c3d-0000-0000-0000-00000000da7a", got[1].String())

	fstab, err = ParseFstab("UUID=aaaa / btrfs subvol=@ 0 0\nUUID=bbbb /home btrfs subvol=@home 0 0\n")
	require.NoError(t, err)
	_, err = WantedIDs(fstab, map[string]Device{"/": data, "/home": data})
	require.ErrorContains(t, err, "fstab line 2: vdb on /home is also mounted on / under another name")
}
