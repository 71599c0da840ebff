package config_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

// TestBounds: a duration, size or count beyond its range is an error at
// its line that names the range; the one that wrapped around (max_age =
// "300Y") pruned every archive older than an hour.
func TestBounds(t *testing.T) {
	host, prof, client := "hostctl.toml", "profiles/p.toml", "clients/web.toml"
	h := func(s string) map[string]string { return map[string]string{host: baseTree[host] + s} }
	p := func(s string) map[string]string { return map[string]string{prof: s + baseTree[prof]} }
	c := func(s string) map[string]string { return map[string]string{client: s} }
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  wantErr
	}{
		{"max_age wraps around", p("retention.max_age = \"300Y\"\n"), wantErr{prof, 1, "retention.max_age", `"300Y" is out of range: at most 100Y`}},
		{"max_age beyond 100 years", p("retention.max_age = \"101Y\"\n"), wantErr{prof, 1, "retention.max_age", `"101Y" is out of range: want 1h .. 100Y`}},
		{"max_age zero", p("retention.max_age = \"0D\"\n"), wantErr{prof, 1, "retention.max_age", `"0D" is out of range: want 1h .. 100Y`}},
		{"max_age below an hour", p("retention.max_age = \"30m\"\n"), wantErr{prof, 1, "retention.max_age", "want 1h .. 100Y"}},
		{"max_age digits beyond int64", p("retention.max_age = \"99999999999999999999D\"\n"), wantErr{prof, 1, "retention.max_age", "out of range"}},
		{"full_if_older_than", p("duplicity.full_if_older_than = \"99999999999Y\"\n"), wantErr{prof, 1, "duplicity.full_if_older_than", "out of range"}},
		{"full_if_older_than zero", p("duplicity.full_if_older_than = \"0s\"\n"), wantErr{prof, 1, "duplicity.full_if_older_than", "want 1h .. 100Y"}},
		{"keep_daily", p("retention.keep_daily = 1000000000\n"), wantErr{prof, 1, "retention.keep_daily", "1000000000 is out of range: want 0 .. 100000"}},
		{"max_fullbackups", map[string]string{prof: "retention.max_fullbackups = 200000\n" + strings.Replace(baseTree[prof], "borg", "duplicity", 1)},
			wantErr{prof, 1, "retention.max_fullbackups", "200000 is out of range: want 0 .. 100000"}},
		{"check_every", p("check_every = 100001\n"), wantErr{prof, 1, "check_every", "want 0 .. 100000"}},
		{"bandwidth_limit of one byte", p("bandwidth_limit = 1\n"), wantErr{prof, 1, "bandwidth_limit", "1 is out of range: want 1K .. 100G"}},
		{"bandwidth_limit huge", p("bandwidth_limit = \"1P\"\n"), wantErr{prof, 1, "bandwidth_limit", "1P is out of range: want 1K .. 100G"}},
		{"time_limit too long", h("time_limit = \"1000h\"\n"), wantErr{host, 2, "time_limit", "1000h0m0s is out of range: want at most 720h0m0s (30 days)"}},
		{"time_limit beyond time.Duration", h("time_limit = \"2562048h\"\n"), wantErr{host, 2, "time_limit", `duration "2562048h" is out of range: want at most 720h0m0s`}},
		{"run_time_limit", h("run_time_limit = \"9000h\"\n"), wantErr{host, 2, "run_time_limit", "out of range"}},
		{"client time_limit", c("time_limit = \"31d\"\n"), wantErr{client, 1, "time_limit", "invalid duration"}},
		{"client time_limit in hours", c("time_limit = \"745h\"\n"), wantErr{client, 1, "time_limit", "want at most 720h0m0s"}},
		{"hook time_limit", c("[hooks]\ntime_limit = \"800h\"\n"), wantErr{client, 2, "hooks.time_limit", "want at most 720h0m0s"}},
		{"poll_interval", h("[lvm]\npoll_interval = \"1h\"\n"), wantErr{host, 3, "lvm.poll_interval", "1h0m0s is out of range: want at most 10m0s"}},
		{"cache size too small", h("[cache]\nsize = \"1M\"\n"), wantErr{host, 3, "cache.size", "1M is out of range: want 256M .. 64T"}},
		{"cache size too large", h("[cache]\nsize = \"1P\"\n"), wantErr{host, 3, "cache.size", "1P is out of range: want 256M .. 64T"}},
		{"cache size beyond int64", h("[cache]\nsize = \"9000P\"\n"), wantErr{host, 3, "cache.size", "too large"}},
		{"snapshot size", h("[lvm]\nsnapshot_size = \"1M\"\n"), wantErr{host, 3, "lvm.snapshot_size", "1M is out of range: want 256M .. 64T"}},
		{"snapshot size NaN", h("[lvm]\nsnapshot_size = \"NaN%\"\n"), wantErr{host, 3, "lvm.snapshot_size", `invalid snapshot size "NaN%"`}},
		{"client snapshot size", c("snapshot_size = \"100K\"\n"), wantErr{client, 1, "snapshot_size", "100K is out of range"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireLoadErrors(t, writeTree(t, tc.files), tc.want)
		})
	}
}

// TestBoundsAccept: the edges of every range load.
func TestBoundsAccept(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hostctl.toml":     baseTree["hostctl.toml"] + "time_limit = \"720h\"\nrun_time_limit = \"720h\"\n[lvm]\npoll_interval = \"10m\"\nsnapshot_size = \"256M\"\n[cache]\nsize = \"64T\"\n",
		"profiles/p.toml":  "bandwidth_limit = \"1K\"\ncheck_every = 100000\nretention.max_age = \"100Y\"\nretention.keep_daily = 100000\n" + baseTree["profiles/p.toml"],
		"clients/web.toml": "time_limit = \"1s\"\nsnapshot_size = \"64T\"\n[hooks]\ntime_limit = \"720h\"\n",
	})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	require.Equal(t, "100Y", c.Profiles["p"].Retention.MaxAge)
	for _, ma := range []string{"1h", "1Y6M", "12h"} {
		dir := writeTree(t, map[string]string{"profiles/p.toml": fmt.Sprintf("retention.max_age = %q\n", ma) + baseTree["profiles/p.toml"]})
		_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
		require.NoError(t, err, ma)
	}
}

// requireLoadErrors loads the tree in dir and checks that it fails with
// exactly the wanted problems, at their file, line and key.
func requireLoadErrors(t *testing.T, dir string, want ...wantErr) {
	t.Helper()
	_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.Error(t, err)
	var errs config.Errors
	require.ErrorAs(t, err, &errs)
	require.Len(t, errs, len(want), "got:\n%v", err)
	for i, w := range want {
		got := errs[i]
		assert.Equal(t, filepath.Join(dir, w.file), got.File)
		assert.Equal(t, w.line, got.Line, "line of %v", got)
		assert.Equal(t, w.key, got.Key)
		assert.Contains(t, got.Msg, w.msg)
	}
}
