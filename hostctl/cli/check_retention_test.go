package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
)

func TestRetentionDesc(t *testing.T) {
	for _, tc := range []struct {
		p    config.Profile
		want []string
	}{
		{config.Profile{Backend: "borg", Target: "file:///srv/backup/{client}", Retention: config.Retention{KeepDaily: 14, KeepWeekly: 4}},
			[]string{"borg prune --log-json --list --glob-archives 'web-*' --keep-daily 14 --keep-weekly 4 -- /srv/backup/web",
				"borg compact -- /srv/backup/web"}},
		{config.Profile{Backend: "borg", Target: "ssh://backup@nas:2222/srv/{client}", Retention: config.Retention{MaxAge: "30D", KeepLast: 3}},
			[]string{"borg prune --log-json --list --glob-archives 'web-*' --keep-last 3 --keep-within 720H -- ssh://backup@nas:2222/srv/web",
				"borg compact -- ssh://backup@nas:2222/srv/web"}},
		{config.Profile{Backend: "restic", Target: "s3://bucket/hosts/{client}", Retention: config.Retention{KeepDaily: 7, MaxAge: "1Y"}},
			[]string{"restic --repo s3://bucket/hosts/web forget --prune --host web --tag snapshot-backup --group-by host --keep-daily 7 --keep-within 8760h"}},
		{config.Profile{Backend: "duplicity", Target: "sftp://backup@nas/srv/{client}", Retention: config.Retention{MaxAge: "6M", MaxFullBackups: 3}},
			[]string{"duplicity remove-older-than 6M --force sftp://backup@nas/srv/web", "duplicity remove-all-but-n-full 3 --force sftp://backup@nas/srv/web"}},
		{config.Profile{Backend: "restic", Target: "file:///b/{client}", Retention: config.Retention{MaxAge: "2M"}},
			[]string{"restic --repo /b/web forget --prune --host web --tag snapshot-backup --group-by host --keep-last 1 --keep-within 1440h"}},
		{config.Profile{Backend: "borg", Target: "file:///b/{client}"}, []string{"none: every backup is kept"}},
	} {
		cfg := &config.Config{Profiles: map[string]*config.Profile{"p": &tc.p}}
		rc, err := cfg.Resolve(&config.Client{Name: "web", Profile: "p"})
		require.NoError(t, err)
		got := retentionDesc(rc)
		if len(tc.want) > 1 || tc.want[0] != "none: every backup is kept" {
			tc.want = append(tc.want, "(after an ok backup only; the newest backup always stays)")
		}
		require.Equal(t, tc.want, got, "%+v", tc.p)
	}
}

func TestCheckPrintsRetention(t *testing.T) {
	path := configtest.Example(t)
	prof := filepath.Join(filepath.Dir(path), "profiles", "local-borg.toml")
	data, err := os.ReadFile(prof)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(prof, append(data, []byte("\n[retention]\nkeep_daily = 14\nmax_age = \"6M\"\n")...), 0o644))
	code, out, stderr := runMain(t, "check", "--offline", "--config", path)
	require.Equal(t, ExitOK, code, stderr)
	require.Contains(t, out, "  retention:   borg prune --log-json --list --glob-archives 'web-*' --keep-daily 14 --keep-within 4320H -- /srv/backup/web\n"+
		"               borg compact -- /srv/backup/web\n"+
		"               (after an ok backup only; the newest backup always stays)\n")

	// The value that once wrapped around: check refuses it, at its line.
	require.NoError(t, os.WriteFile(prof, append(data, []byte("\n[retention]\nmax_age = \"300Y\"\n")...), 0o644))
	code, _, stderr = runMain(t, "check", "--offline", "--config", path)
	require.Equal(t, ExitUsage, code)
	require.Regexp(t, `local-borg.toml:\d+: key "retention.max_age": "300Y" is out of range`, stderr)
}

func TestShellJoin(t *testing.T) {
	require.Equal(t, `borg prune --glob-archives 'web-*' 'it'\''s' '' a=b`, shellJoin([]string{"borg", "prune", "--glob-archives", "web-*", "it's", "", "a=b"}))
}
