package config_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

func TestHooksAndReportConfig(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hostctl.toml": `default_profile = "p"
run_time_limit = "8h"
[report]
to = ["ops@example.org"]
metrics_file = "/var/lib/prometheus/node-exporter/hostctl.prom"
[report.smtp]
host = "127.0.0.1"
starttls = false
`,
		"clients/web.toml": `[hooks]
pre_snapshot = "mysql -e 'FLUSH TABLES WITH READ LOCK'"
on_snapshot = "true"
freeze = true
time_limit = "30s"
pre_recovery = "test -f /etc/blank-install"
end_recovery = "update-grub"
post_recovery = "systemctl start app"
`,
	})
	cfg, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	h := cfg.Clients["web"].Hooks
	require.Equal(t, config.TransportAgent, h.Transport)
	require.Equal(t, 30*time.Second, h.TimeLimit.Duration)
	require.Equal(t, config.PreFailureFail, h.OnPreFailure)
	require.True(t, h.Freeze)
	require.Equal(t, []string{"test -f /etc/blank-install", "update-grub", "systemctl start app"}, []string{h.PreRecovery, h.EndRecovery, h.PostRecovery})
	r := cfg.Host.Report
	require.Equal(t, config.MailFailure, r.Email, "with recipients, mail on failure by default")
	require.Equal(t, config.DefaultSMTPPort, r.SMTP.Port)
	require.False(t, r.SMTP.UseStartTLS())
	require.True(t, r.JournalOn())
	require.Equal(t, 8*time.Hour, cfg.Host.RunTimeLimit.Duration)
}

func TestHooksAndReportErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hostctl.toml": `default_profile = "p"
[report]
email = "always"
to = ["not an address"]
[report.smtp]
port = 70000
`,
		"clients/web.toml": `[hooks]
transport = "telnet"
on_pre_failure = "shrug"
`,
		"clients/db.toml": `[hooks]
transport = "ssh"
freeze = true
`,
	})
	_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.Error(t, err)
	for _, want := range []string{
		`hostctl.toml:4: key "report.to": "not an address" is not a mail address`,
		`hostctl.toml: key "report.smtp.host": missing`,
		`hostctl.toml:6: key "report.smtp.port": 70000 is not a port`,
		`web.toml:2: key "hooks.transport": unknown transport "telnet"`,
		`web.toml:3: key "hooks.on_pre_failure": unknown value "shrug"`,
		`db.toml: key "hooks.ssh.host": missing`,
		`db.toml:3: key "hooks.freeze": needs the guest agent`,
	} {
		require.Contains(t, err.Error(), want)
	}
}
