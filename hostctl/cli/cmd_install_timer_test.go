package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
)

func TestTimerUnitsGolden(t *testing.T) {
	o := installTimerOptions{OnCalendar: "*-*-* 01:30:00", Delay: "15m", StopTimeout: 27*time.Minute + 35*time.Second}
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
	analyze := testutil.NeedTool(t, "systemd-analyze", "systemd")
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

// TestTimerStopTimeoutCoversCleanup: systemd waits TimeoutStopSec after
// SIGTERM before it kills hostctl for good (SIGKILL: no cleanup at all).
// That must cover the longest cleanup of a job: its hooks (on_snapshot and
// post_snapshot still run, each up to hooks.time_limit), merging each disk
// back, the report mail. Before, it was a fixed 10min, less than one
// hooks.time_limit of 20m.
func TestTimerStopTimeoutCoversCleanup(t *testing.T) {
	h := newRunHost(t, "")
	// Client a: the test driver's domain "test" (one disk), slow hooks.
	require.NoError(t, os.WriteFile(filepath.Join(h.dir, "clients", "a.toml"),
		[]byte("domain = \"test\"\n[hooks]\npre_snapshot = \"true\"\npost_snapshot = \"true\"\ntime_limit = \"20m\"\n"), 0o600))
	code, out, stderr := runMain(t, "install-timer", "--print", "--config", h.config, "--hostctl", "/bin/true")
	require.Equal(t, 0, code, stderr)
	t.Logf("install-timer --print:\n%s", out)
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)min$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	minutes, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.GreaterOrEqual(t, minutes, 2*20+10, "two hooks of 20m and one disk's commit (10m) fit in TimeoutStopSec")
	require.Contains(t, out, "a: 1 disk(s)")
	require.Contains(t, out, "b: domain b-vm: disks unknown")
}

func TestPruneUnitsGolden(t *testing.T) {
	o := installTimerOptions{PruneOnCalendar: "Sun *-*-* 05:00:00", Delay: "15m", StopTimeout: 27*time.Minute + 35*time.Second}
	service, timer, err := pruneUnits("/usr/local/bin/hostctl", "/etc/hostctl/hostctl.toml", o)
	require.NoError(t, err)
	for name, got := range map[string]string{"hostctl-prune.service": service, "hostctl-prune.timer": timer} {
		testutil.Golden(t, name, got)
	}
}

// TestInstallTimerPrune: with an append-only client that has a maintenance
// key, install-timer writes hostctl prune's units too (systemd-analyze
// accepts them), and uninstall-timer removes all four; without one, only
// the backup's.
func TestInstallTimerPrune(t *testing.T) {
	cfg := clientTree(t, `backend = "borg"
target = "ssh://backup@nas/srv/backup/{client}"
append_only = true
encryption.mode = "none"
[retention]
keep_daily = 7
[ssh]
identity_file = "secrets/id"
known_hosts = "secrets/kh"
[maintenance]
identity_file = "secrets/prune"
`)
	secrets := filepath.Join(filepath.Dir(cfg), "secrets")
	require.NoError(t, os.MkdirAll(secrets, 0o700))
	for _, f := range []string{"id", "kh", "prune"} {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, f), []byte("x\n"), 0o600))
	}
	dir := t.TempDir()
	code, out, stderr := runMain(t, "install-timer", "--config", cfg, "--unit-dir", dir, "--hostctl", "/bin/true", "--prune-on-calendar", "Sat 04:00")
	require.Equal(t, 0, code, stderr)
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"hostctl-backup.service", "hostctl-backup.timer", "hostctl-prune.service", "hostctl-prune.timer"}, names, out)
	svc, _ := os.ReadFile(filepath.Join(dir, "hostctl-prune.service"))
	require.Contains(t, string(svc), "ExecStart=/bin/true prune --progress text --config "+cfg+"\n")
	tim, _ := os.ReadFile(filepath.Join(dir, "hostctl-prune.timer"))
	require.Contains(t, string(tim), "OnCalendar=Sat 04:00\n")
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		cmd := exec.Command(analyze, "verify", filepath.Join(dir, "hostctl-prune.service"), filepath.Join(dir, "hostctl-prune.timer"))
		cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
		o, err := cmd.CombinedOutput()
		require.NoError(t, err, "systemd-analyze verify: %s", o)
	}
	code, _, stderr = runMain(t, "uninstall-timer", "--unit-dir", dir)
	require.Equal(t, 0, code, stderr)
	entries, _ = os.ReadDir(dir)
	require.Empty(t, entries)

	// The example configuration has no such client: the backup's units only.
	code, out, _ = runMain(t, "install-timer", "--print", "--config", configtest.Example(t), "--hostctl", "/bin/true")
	require.Equal(t, 0, code)
	require.NotContains(t, out, "hostctl-prune")
}
