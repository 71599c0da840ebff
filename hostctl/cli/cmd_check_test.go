package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckExample(t *testing.T) {
	path := configtest.Example(t)
	code, out, stderr := runMain(t, "check", "--offline", "--config", path)
	require.Equal(t, ExitOK, code, "stderr: %s", stderr)
	assert.Empty(t, stderr)
	dir := filepath.Dir(path)
	for _, want := range []string{
		"host config " + path,
		"client web (" + filepath.Join(dir, "clients", "web.toml") + ")",
		"  type:        lvm_libvirt\n",
		"  domain:      web\n",
		"  profile:     local-borg (",
		"  backend:     borg, compression lz4\n",
		"  target:      file:///srv/backup/web\n",
		"  encryption:  repokey, passphrase file " + filepath.Join(dir, "secrets", "local-borg-web.passphrase") + "\n",
		"  mount:       auto\n",
		"  source:      /\n",
		"  exclude:     /tmp\n               /var/tmp\n",
		"  time limit:  2h\n",
		"  disks:       not resolved",
		fmt.Sprintf("1 client, %d profiles: configuration OK", shippedProfiles(t)),
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, configtest.Passphrase, "secrets are never printed")
}

func TestCheckBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "hostctl.toml")
	require.NoError(t, os.WriteFile(host, []byte("# broken\nionce = \"idle\"\n[appliance]\naccel = \"xen\"\n"), 0o644))
	code, out, stderr := runMain(t, "check", "--offline", "-c", host)
	assert.Equal(t, ExitUsage, code)
	assert.Empty(t, out)
	assert.Contains(t, stderr, host+`:2: key "ionce": unknown key`)
	assert.Contains(t, stderr, "\n"+host+`:4: key "appliance.accel": unknown accelerator "xen"`, "every problem on its own line")
}

func TestCheckMissingConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hostctl.toml")
	code, _, stderr := runMain(t, "check", "--offline", "--config", path)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, path)
	assert.Contains(t, stderr, "--config")
}

func TestCheckUnknownClient(t *testing.T) {
	code, _, stderr := runMain(t, "check", "--offline", "--config", configtest.Example(t), "web", "mail")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, `unknown client "mail" (known: web)`)
}

type fakeDisks map[string][]string

var _ DiskResolver = fakeDisks(nil)

func (f fakeDisks) ClientDisks(_ context.Context, c *config.Client) ([]string, error) {
	d, ok := f[c.Name]
	if !ok {
		return nil, fmt.Errorf("domain %s not found", c.Domain)
	}
	return d, nil
}

func TestPrintPlanDisks(t *testing.T) {
	cfg, err := config.Load(configtest.Example(t))
	require.NoError(t, err)
	clients, err := cfg.SelectClients(nil)
	require.NoError(t, err)

	var out bytes.Buffer
	require.NoError(t, printPlan(context.Background(), &out, cfg, clients, fakeDisks{"web": {"vda /dev/vg0/web-root", "vdb /var/lib/libvirt/images/web-data.qcow2"}}))
	assert.Contains(t, out.String(), "  disks:       vda /dev/vg0/web-root\n               vdb /var/lib/libvirt/images/web-data.qcow2\n")

	out.Reset()
	err = printPlan(context.Background(), &out, cfg, clients, fakeDisks{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the disks of 1 client could not be resolved")
	assert.Contains(t, out.String(), "  disks:       error: domain web not found\n")
	var ue *UsageError
	assert.False(t, errors.As(err, &ue), "a failing resolver is not a usage error")
}

func TestFmtDuration(t *testing.T) {
	for in, want := range map[string]string{"2h0m0s": "2h", "1h30m0s": "1h30m", "1m30s": "1m30s", "45m0s": "45m", "6h0m1s": "6h0m1s"} {
		var d config.Client
		require.NoError(t, d.TimeLimit.UnmarshalText([]byte(in)))
		assert.Equal(t, want, fmtDuration(d.TimeLimit.Duration))
	}
}

// shippedProfiles counts the example profiles in the source tree's profiles/.
func shippedProfiles(t *testing.T) int {
	files, err := filepath.Glob(filepath.Join("..", "..", "profiles", "*.toml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return len(files)
}

func TestHooksDesc(t *testing.T) {
	for _, tc := range []struct {
		h    config.Hooks
		want string
	}{
		{want: ""},
		{h: config.Hooks{PreSnapshot: "sync", PostSnapshot: "true", Transport: config.TransportAgent, Freeze: true, TimeLimit: job.Duration{Duration: 5 * time.Minute}},
			want: "pre_snapshot, post_snapshot through the guest agent, each within 5m, filesystems frozen around the snapshot"},
		{h: config.Hooks{OnSnapshot: "x", Transport: config.TransportSSH, TimeLimit: job.Duration{Duration: time.Minute},
			SSH: config.HooksSSH{Host: "db.example", User: "root", Port: 2222, KnownHosts: "/etc/hostctl/known_hosts"}},
			want: "on_snapshot over ssh root@db.example:2222, host key pinned in /etc/hostctl/known_hosts, each within 1m"},
		{h: config.Hooks{PreSnapshot: "x", Transport: config.TransportLocal, TimeLimit: job.Duration{Duration: 30 * time.Second}},
			want: "pre_snapshot on this host, each within 30s"},
	} {
		require.Equal(t, tc.want, hooksDesc(&config.Client{Hooks: tc.h}))
	}
}

// TestCheckRunDirAndFreeSpace: check says whether the run dir (job disks
// with secrets) is a tmpfs, and what min_free_space asks of the state dir.
func TestCheckRunDirAndFreeSpace(t *testing.T) {
	code, out, stderr := runMain(t, "check", "--offline", "--config", configtest.Example(t))
	require.Equal(t, ExitOK, code, stderr)
	require.Regexp(t, `(?m)^  run dir: +/run/hostctl \((tmpfs: job disks and their secrets stay in memory|WARNING: not a tmpfs: job disks with the clients' secrets are written to a disk; .*)\)$`, out)
	require.Regexp(t, `(?m)^  min free: +4G in the state dir before a snapshot \(.* free now( on /.*: the state dir does not exist yet)?\)$`, out)
}
