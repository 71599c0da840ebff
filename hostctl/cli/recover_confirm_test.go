package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
)

// In-place recovery empties a VM's filesystems: "restore CLIENT" without a
// destination must not start it, and "recover" without --yes asks, or
// refuses when nobody can answer.
func TestRestoreWithoutDestinationIsUsage(t *testing.T) {
	cfg := configtest.Example(t)
	code, _, stderr := runMain(t, "restore", "--config", cfg, "web")
	require.Equal(t, ExitUsage, code, stderr)
	require.Contains(t, stderr, "hostctl recover web")
}

func TestRecoverRefusesWithoutTerminal(t *testing.T) {
	cfg := configtest.Example(t)
	code, _, stderr := runMain(t, "recover", "--config", cfg, "web")
	require.Equal(t, ExitUsage, code, stderr)
	require.Contains(t, stderr, "stdin is not a terminal")
	require.Contains(t, stderr, "--yes")
}

// On a terminal the operator must type the domain's name; anything else
// is a refusal that changed nothing.
func TestRecoverConfirmation(t *testing.T) {
	p := &runner.RecoverPlan{Client: "web", Domain: "web-prod", Disks: []virt.ClientDisk{{Target: "vda", Path: "/var/lib/vms/web.qcow2"}}}
	for _, tc := range []struct {
		typed string
		ok    bool
	}{{"web-prod\n", true}, {"yes\n", false}, {"web\n", false}, {"\n", false}} {
		master, slave := openPTY(t)
		_, err := master.WriteString(tc.typed)
		require.NoError(t, err)
		var errb bytes.Buffer
		err = confirmRecover(&Globals{Stdin: slave, Stderr: &errb}, p)
		require.Contains(t, errb.String(), "This EMPTIES the filesystems of domain web-prod (/var/lib/vms/web.qcow2)")
		require.Contains(t, errb.String(), "Type the domain name to go on: ")
		if tc.ok {
			require.NoError(t, err, "typed %q", tc.typed)
			continue
		}
		var ue *UsageError
		require.ErrorAs(t, err, &ue, "typed %q", tc.typed)
		require.Contains(t, err.Error(), "not confirmed")
		require.Contains(t, err.Error(), "nothing was changed")
	}
}
