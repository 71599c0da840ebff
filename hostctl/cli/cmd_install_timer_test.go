package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
)

func TestTimerUnitsGolden(t *testing.T) {
	o := installTimerOptions{OnCalendar: "*-*-* 01:30:00", Delay: "15m"}
	service, timer, err := timerUnits("/usr/local/bin/hostctl", "/etc/hostctl/hostctl.toml", o)
	require.NoError(t, err)
	for name, got := range map[string]string{"hostctl-backup.service": service, "hostctl-backup.timer": timer} {
		testutil.Golden(t, name, got)
	}
}

// TestInstallTimerVerifies writes the units through the CLI and has
// systemd-analyze check them.
func TestInstallTimerVerifies(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runMain(t, "install-timer", "--config", configtest.Example(t), "--unit-dir", dir, "--hostctl", "/bin/true")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "hostctl-backup.timer")
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze missing under CI")
		}
		t.Skip("systemd-analyze (systemd) not installed")
	}
	cmd := exec.Command(analyze, "verify", filepath.Join(dir, "hostctl-backup.service"), filepath.Join(dir, "hostctl-backup.timer"))
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	o, err := cmd.CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify: %s", o)
	require.Empty(t, string(o), "systemd-analyze verify has remarks")
}

func TestInstallTimerRefusesBrokenConfig(t *testing.T) {
	code, _, _ := runMain(t, "install-timer", "--config", filepath.Join(t.TempDir(), "missing.toml"), "--unit-dir", t.TempDir())
	require.Equal(t, ExitUsage, code)
}

func TestInstallTimerPrintAndUninstall(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runMain(t, "install-timer", "--print", "--on-calendar", "03:30", "--config", configtest.Example(t), "--unit-dir", dir, "--hostctl", "/bin/true")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "# hostctl-backup.service\n[Unit]")
	require.Contains(t, out, "OnCalendar=03:30\n")
	require.Contains(t, out, "IOSchedulingClass=idle\n")
	entries, _ := os.ReadDir(dir)
	require.Empty(t, entries, "--print writes nothing")

	code, _, stderr = runMain(t, "install-timer", "--config", configtest.Example(t), "--unit-dir", dir, "--hostctl", "/bin/true")
	require.Equal(t, 0, code, stderr)
	code, out, stderr = runMain(t, "uninstall-timer", "--unit-dir", dir)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "removed "+filepath.Join(dir, "hostctl-backup.timer"))
	entries, _ = os.ReadDir(dir)
	require.Empty(t, entries)
	code, _, stderr = runMain(t, "uninstall-timer", "--unit-dir", dir)
	require.Equal(t, 0, code, "a second uninstall is fine: %s", stderr)
}
