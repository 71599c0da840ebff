package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testNode is a libvirt test-driver node: no daemon, no root needed.
const testNode = `<node>
  <domain type="test"><name>web</name><memory>65536</memory><os><type>hvm</type></os><devices>
    <disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="/var/lib/libvirt/images/web.qcow2"/><target dev="vda" bus="virtio"/></disk>
    <disk type="file" device="cdrom"><source file="/iso/debian.iso"/><target dev="sda" bus="sata"/><readonly/></disk>
  </devices></domain>
  <domain type="test"><name>db 01</name><memory>65536</memory><os><type>hvm</type></os><devices>
    <disk type="block" device="disk"><driver name="qemu" type="raw"/><source dev="/dev/vg0/db-root"/><target dev="vda" bus="virtio"/></disk>
    <disk type="file" device="disk"><driver name="qemu" type="raw"/><source file="/srv/vm/db-data.img"/><target dev="vdb" bus="virtio"/></disk>
  </devices></domain>
  <domain type="test"><name>hostctl-appliance</name><memory>65536</memory><os><type>hvm</type></os></domain>
</node>`

func TestInitFromLibvirtThenCheckThenRerun(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node.xml")
	require.NoError(t, os.WriteFile(node, []byte(testNode), 0o644))
	uri := "test://" + node
	cfg := filepath.Join(dir, "etc", "hostctl.toml")

	code, out, stderr := runMain(t, "init", "--config", cfg, "--libvirt-uri", uri)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "clients/web.toml")
	require.Contains(t, out, "clients/db-01.toml")
	require.NotContains(t, out, "hostctl-appliance", "hostctl's own domains are not clients")

	db, err := os.ReadFile(filepath.Join(dir, "etc", "clients", "db-01.toml"))
	require.NoError(t, err)
	require.Contains(t, string(db), `domain = "db 01"`)
	require.Contains(t, string(db), "/dev/vg0/db-root  (block device)")
	require.Contains(t, string(db), "/srv/vm/db-data.img  (raw file)")
	// A passphrase per client: one client's appliance holds no other's.
	var passes []string
	for _, c := range []string{"web", "db-01"} {
		p := filepath.Join(dir, "etc", "secrets", "local-borg-"+c+".passphrase")
		pass, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), pass.Mode().Perm())
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		passes = append(passes, string(data))
	}
	require.NotEqual(t, passes[0], passes[1])
	// Only the clients have one: not hostctl.toml, not a profile (seen on
	// the hypervisor VM: secrets/local-borg-hostctl.passphrase and
	// secrets/local-borg-profiles/local-borg.passphrase).
	secrets, err := filepath.Glob(filepath.Join(dir, "etc", "secrets", "*"))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		filepath.Join(dir, "etc", "secrets", "local-borg-web.passphrase"),
		filepath.Join(dir, "etc", "secrets", "local-borg-db-01.passphrase"),
	}, secrets)
	require.Contains(t, out, "6 file(s) written")

	// What init wrote is a valid configuration, disks resolved through libvirt.
	code, out, stderr = runMain(t, "check", "--config", cfg)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "/var/lib/libvirt/images/web.qcow2")

	// Rerunning changes nothing.
	before := snapshotDir(t, filepath.Join(dir, "etc"))
	code, out, stderr = runMain(t, "init", "--config", cfg, "--libvirt-uri", uri)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "0 file(s) written")
	require.Equal(t, before, snapshotDir(t, filepath.Join(dir, "etc")))
}

func TestClientName(t *testing.T) {
	for in, want := range map[string]string{"web": "web", "db 01": "db-01", "ünï/x": "n-x", "...": "domain", "a.b_c-d": "a.b_c-d"} {
		require.Equal(t, want, clientName(in), in)
	}
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		out[strings.TrimPrefix(p, dir)] = string(data)
		return err
	}))
	return out
}
