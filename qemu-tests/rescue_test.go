package qemutests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRescueShell boots the persistent rescue appliance that build-image
// defines: with no job disk the supervisor must give a root shell on the
// serial console, with the appliance's userland (borg among it) usable.
func TestRescueShell(t *testing.T) {
	e := needEnv(t)
	xml := virsh(t, "dumpxml", "--inactive", rescueDomain)
	require.Contains(t, xml, "sb.mode=shell")
	require.Contains(t, xml, filepath.Join(e.imageDir, "appliance.img"))
	log := filepath.Join(e.imageDir, "rescue-console.log")
	os.Remove(log)
	virsh(t, "start", rescueDomain)
	t.Cleanup(func() { exec.Command("virsh", "-c", "qemu:///system", "destroy", rescueDomain).Run() })

	deadline := time.Now().Add(2 * time.Minute)
	var console string
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(log)
		console = string(data)
		if strings.Contains(console, "rescue shell") {
			break
		}
		time.Sleep(time.Second)
	}
	require.Contains(t, console, "rescue shell", "no rescue banner on the console:\n%s", console)
	require.True(t, strings.Contains(virsh(t, "domstate", rescueDomain), "running"), "the shell keeps the appliance up")
}
