package virt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScrubDomainXML(t *testing.T) {
	in := `<domain type='kvm'>
  <name>web</name>
  <devices>
    <graphics type='vnc' port='-1' autoport='yes' passwd='s3cret' listen='127.0.0.1'/>
    <graphics type="spice" passwd = "an other" autoport="yes"/>
    <disk type='network'><auth username='libvirt'><secret type='ceph' uuid='2a5b08e4-0000-4000-8000-000000000001'/></auth></disk>
    <hostdev><source><vendor password='x'/></source></hostdev>
  </devices>
</domain>`
	out, err := ScrubDomainXML(in, 1<<20)
	require.NoError(t, err)
	for _, secret := range []string{"s3cret", "an other", "password", "passwd"} {
		require.NotContains(t, out, secret)
	}
	require.Contains(t, out, `<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>`)
	require.Contains(t, out, `<graphics type="spice" autoport="yes"/>`)
	require.Contains(t, out, `uuid='2a5b08e4-0000-4000-8000-000000000001'`, "a secret's reference stays")
	_, err = ScrubDomainXML(strings.Repeat("x", 101), 100)
	require.Error(t, err)
}
