package job

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// twoDestinations is a backup to a local file repository and an sftp one,
// named as hostctl names a further destination's files.
func twoDestinations() Job {
	j := base(ModeBackup)
	j.Backup = &Backup{Archive: "web-1"}
	j.Repo = fileRepo()
	j.Repo.Profile = "local"
	off := *sftpRepo()
	off.Profile, off.Cache = "offsite", "web.offsite"
	off.PassphraseFile = SecretPrefix + DestPrefix(1) + "passphrase"
	off.Secrets = map[target.Secret]string{}
	for _, s := range off.Target.Scheme.Secrets() {
		off.Secrets[s] = SecretPrefix + DestPrefix(1) + string(s)
	}
	j.Also = []Repo{off}
	return j
}

// A job with further destinations survives the round trip, and Parse
// refuses what would let one destination read another's secrets or share,
// or a mode other than backup carry them.
func TestDestinationsJob(t *testing.T) {
	j := twoDestinations()
	b, err := j.Marshal()
	require.NoError(t, err)
	got, err := Parse(b)
	require.NoError(t, err)
	require.Len(t, got.Destinations(), 2)
	require.Equal(t, "offsite", got.Destinations()[1].Profile)
	require.Equal(t, "web.offsite", got.Also[0].CacheName("web"))
	require.Equal(t, "web", got.Repo.CacheName("web"))
	require.Equal(t, TagTarget, got.Repo.ShareTag())

	for name, tc := range map[string]struct {
		edit func(j *Job)
		want string
	}{
		"shared passphrase": {func(j *Job) { j.Also[0].PassphraseFile = j.Repo.PassphraseFile }, "share secret file"},
		"shared 9p tag": {func(j *Job) {
			r := *fileRepo()
			r.Profile, r.PassphraseFile = "usb", SecretPrefix+DestPrefix(1)+"passphrase"
			j.Also[0] = r
		}, "share 9p tag"},
		"unnamed destination": {func(j *Job) { j.Also[0].Profile = "" }, "no profile name"},
		"cache name a path":   {func(j *Job) { j.Also[0].Cache = "../web" }, "cache name"},
		"foreign tag":         {func(j *Job) { j.Repo.Tag = "sbrestore" }, "9p tag"},
		"restore with also": {func(j *Job) {
			r := jobs()[ModeRestore]
			j.Mode, j.Backup, j.Restore = ModeRestore, nil, r.Restore
		}, "only a backup"},
		"too many": {func(j *Job) {
			for len(j.Also) < MaxDestinations {
				r := *sftpRepo()
				r.Profile = "p" + string(rune('a'+len(j.Also)))
				j.Also = append(j.Also, r)
			}
		}, "at most"},
	} {
		t.Run(name, func(t *testing.T) {
			j := twoDestinations()
			tc.edit(&j)
			_, err := j.Marshal()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// A destination record is attacker input like every record: its index and
// its done part are checked as the done record is.
func TestDestinationRecord(t *testing.T) {
	ok := Destination{Index: 1, Done: Done{Status: StatusOK, Archive: "web-1"}, Stats: &Stats{Files: 3}}
	line := func(r Record) []byte {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		return b
	}
	rec, err := ParseRecord(line(ok.Record()))
	require.NoError(t, err)
	require.Equal(t, 1, rec.Dest.Index)
	for name, d := range map[string]Destination{
		"index out of range": {Index: MaxDestinations, Done: Done{Status: StatusOK}},
		"negative index":     {Index: -1, Done: Done{Status: StatusOK}},
		"unknown status":     {Index: 0, Done: Done{Status: "fine"}},
		"ok with warnings":   {Index: 0, Done: Done{Status: StatusOK, Warnings: Warnings{Warning: "w"}}},
		"archive with a newline": {Index: 0, Done: Done{Status: StatusOK},
			Stats: &Stats{Archive: "web-1\nweb-2", Files: 1}},
	} {
		if _, err := ParseRecord(line(d.Record())); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
