package retention

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30D": 30 * 24 * time.Hour, "2M": 60 * 24 * time.Hour, "1Y6M": (365 + 180) * 24 * time.Hour, "36h": 36 * time.Hour,
		"100Y": MaxInterval, "292Y": 292 * 365 * 24 * time.Hour, "90s": 90 * time.Second,
	} {
		if got, err := Interval(in); err != nil || got != want {
			t.Errorf("Interval(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for bad, msg := range map[string]string{
		"": "want a count and unit", "2 months": "want a count and unit", "M": "want a count and unit", "3d": "want a count and unit",
		"-1D": "want a count and unit",
		// Beyond time.Duration: once wrapped negative, clamped to 1h.
		"300Y": "out of range: at most 100Y", "106752D": "out of range", "9223372036854775808s": "out of range",
		"99999999999999999999Y": "out of range", "200Y200Y": "out of range",
	} {
		if d, err := Interval(bad); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Interval(%q) = %v, %v; want an error with %q", bad, d, err, msg)
		}
	}
}

func TestCheckInterval(t *testing.T) {
	for _, ok := range []string{"1h", "12h", "30D", "6M", "100Y", "99Y12M"} {
		if _, err := CheckInterval(ok); err != nil {
			t.Errorf("CheckInterval(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"0D", "59m", "0s", "101Y", "100Y1D", "300Y"} {
		if _, err := CheckInterval(bad); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("CheckInterval(%q) = %v, want out of range", bad, err)
		}
	}
	if _, err := CheckInterval("0D"); err == nil || !strings.Contains(err.Error(), `want 1h .. 100Y`) {
		t.Errorf("the error names the range: %v", err)
	}
}

func TestFormatInterval(t *testing.T) {
	for d, want := range map[time.Duration]string{MaxInterval: "100Y", time.Hour: "1h", 30 * 24 * time.Hour: "1M", 90 * time.Second: "90s", 14 * 24 * time.Hour: "2W"} {
		if got := FormatInterval(d); got != want {
			t.Errorf("FormatInterval(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check(job.Retention{MaxAge: "6M", KeepDaily: 14, MaxFullBackups: 2}); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		r   job.Retention
		msg string
	}{
		{job.Retention{MaxAge: "300Y"}, "max_age \"300Y\" is out of range"},
		{job.Retention{KeepDaily: -1}, "keep_daily -1 is out of range: want 0 .. 100000"},
		{job.Retention{KeepLast: MaxCount + 1}, "keep_last 100001"},
		{job.Retention{MaxFullBackups: 1 << 40}, "max_fullbackups"},
	} {
		if err := Check(tc.r); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Check(%+v) = %v, want %q", tc.r, err, tc.msg)
		}
	}
}

func TestBuilders(t *testing.T) {
	r := job.Retention{KeepDaily: 7, KeepWeekly: 4, MaxAge: "2M"}
	got, err := ResticForget([]string{"restic", "--repo", "/r"}, "web", r)
	want := []string{"restic", "--repo", "/r", "forget", "--prune", "--host", "web", "--tag", "snapshot-backup", "--group-by", "host",
		"--keep-daily", "7", "--keep-weekly", "4", "--keep-within", "1440h"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ResticForget = %q, %v\nwant %q", got, err, want)
	}
	got, err = BorgPrune("/r", "web", r)
	want = []string{"borg", "prune", "--log-json", "--list", "--glob-archives", "web-*",
		"--keep-daily", "7", "--keep-weekly", "4", "--keep-within", "1440H", "--", "/r"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("BorgPrune = %q, %v\nwant %q", got, err, want)
	}
	// keep_last is taken as it is; max_age alone gets --keep-last 1: the
	// newest stays even when it is older than max_age.
	got, _ = BorgPrune("/r", "web", job.Retention{KeepLast: 3})
	if want := []string{"borg", "prune", "--log-json", "--list", "--glob-archives", "web-*", "--keep-last", "3", "--", "/r"}; !reflect.DeepEqual(got, want) {
		t.Errorf("BorgPrune keep_last 3 = %q", got)
	}
	got, _ = BorgPrune("/r", "web", job.Retention{MaxAge: "1h"})
	if want := []string{"borg", "prune", "--log-json", "--list", "--glob-archives", "web-*", "--keep-last", "1", "--keep-within", "1H", "--", "/r"}; !reflect.DeepEqual(got, want) {
		t.Errorf("BorgPrune max_age 1h = %q", got)
	}
	got, _ = ResticForget([]string{"restic"}, "web", job.Retention{MaxAge: "30D"})
	if want := []string{"restic", "forget", "--prune", "--host", "web", "--tag", "snapshot-backup", "--group-by", "host", "--keep-last", "1", "--keep-within", "720h"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ResticForget max_age 30D = %q", got)
	}
	got, _ = BorgPrune("/r", "web", job.Retention{KeepMonthly: 2})
	if want := []string{"borg", "prune", "--log-json", "--list", "--glob-archives", "web-*", "--keep-monthly", "2", "--", "/r"}; !reflect.DeepEqual(got, want) {
		t.Errorf("BorgPrune keep_monthly 2 = %q: a count rule keeps the newest itself", got)
	}
	if a, err := ResticForget(nil, "web", job.Retention{}); a != nil || err != nil {
		t.Error("empty policy: want no command")
	}
	if a, err := BorgPrune("/r", "web", job.Retention{}); a != nil || err != nil {
		t.Error("empty policy: want no command")
	}
	if _, err := BorgPrune("/r", "web", job.Retention{MaxFullBackups: 2}); err == nil {
		t.Error("borg with max_fullbackups: no error")
	}
	if _, err := ResticForget(nil, "web", job.Retention{MaxFullsWithIncrs: 2}); err == nil {
		t.Error("restic with max_fulls_with_incrs: no error")
	}
	// The overflow that pruned everything: an error, never --keep-within 1H.
	for _, b := range []func() ([]string, error){
		func() ([]string, error) { return BorgPrune("/r", "web", job.Retention{MaxAge: "300Y"}) },
		func() ([]string, error) { return ResticForget(nil, "web", job.Retention{MaxAge: "300Y"}) },
		func() ([]string, error) { return BorgPrune("/r", "web", job.Retention{MaxAge: "0D"}) },
	} {
		if argv, err := b(); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("max_age out of range: %q, %v", argv, err)
		}
	}
	cmds, err := Duplicity([]string{"--name", "web"}, job.Retention{MaxAge: "1Y", MaxFullBackups: 2, MaxFullsWithIncrs: 1}, "file:///t")
	wantD := [][]string{
		{"duplicity", "remove-older-than", "1Y", "--name", "web", "--force", "file:///t"},
		{"duplicity", "remove-all-but-n-full", "2", "--name", "web", "--force", "file:///t"},
		{"duplicity", "remove-all-inc-of-but-n-full", "1", "--name", "web", "--force", "file:///t"},
	}
	if err != nil || !reflect.DeepEqual(cmds, wantD) {
		t.Errorf("Duplicity = %q, %v", cmds, err)
	}
	if _, err := Duplicity(nil, job.Retention{KeepDaily: 1}, "file:///t"); err == nil {
		t.Error("duplicity with keep_daily: no error")
	}
	if _, err := Duplicity(nil, job.Retention{MaxAge: "300Y"}, "file:///t"); err == nil {
		t.Error("duplicity with max_age 300Y: no error")
	}
}
