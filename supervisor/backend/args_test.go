package backend

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

func mustParse(t testing.TB, s string) target.Target {
	t.Helper()
	tg, err := target.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestLocations(t *testing.T) {
	d := ApplianceDirs()
	for _, tc := range []struct {
		url, restic, borg, dup string
		ropts                  []string
	}{
		{"file:///srv/web", "/target", "/target", "file:///target", nil},
		{"sftp://bk@nas:2222/srv/web", "sftp:nas:/srv/web", "ssh://bk@nas:2222/srv/web", "paramiko+sftp://bk@nas:2222//srv/web",
			[]string{"-o", "sftp.command=ssh -F /run/sb/backend/home/.ssh/config nas -s sftp"}},
		{"s3://bucket/web", "s3:http://127.0.0.1:9000/bucket/web", "", "", []string{"-o", "s3.bucket-lookup=path"}},
		{"ftp://bk@nas/web", "", "", "lftp+ftp://bk@nas/web", nil},
		{"rest://web@nas/web", "", "", "", []string{"--repository-file", "/run/sb/backend/restic-repository", "--cacert", "/job/secret-rest-ca"}},
	} {
		r := job.Repo{Target: mustParse(t, tc.url), S3: job.S3{Endpoint: "http://127.0.0.1:9000", PathStyle: true},
			Secrets: map[target.Secret]string{target.RESTCA: job.SecretFile(target.RESTCA)}}
		got, opts, err := ResticRepo(r, "/target", d)
		if tc.ropts != nil && tc.ropts[0] == "--repository-file" {
			if err != nil || got != "" || !reflect.DeepEqual(opts, tc.ropts) {
				t.Errorf("ResticRepo(%s) = %q %q %v", tc.url, got, opts, err)
			}
		} else if tc.restic == "" {
			if err == nil {
				t.Errorf("ResticRepo(%s): no error", tc.url)
			}
		} else if err != nil || got != tc.restic || !reflect.DeepEqual(opts, tc.ropts) {
			t.Errorf("ResticRepo(%s) = %q %q %v", tc.url, got, opts, err)
		}
		b, err := BorgLocation(r, "/target")
		if (tc.borg == "") != (err != nil) || b != tc.borg {
			t.Errorf("BorgLocation(%s) = %q, %v", tc.url, b, err)
		}
		u, err := DuplicityURL(r, "/target", "")
		if (tc.dup == "") != (err != nil) || u != tc.dup {
			t.Errorf("DuplicityURL(%s) = %q, %v", tc.url, u, err)
		}
	}
	if u, _ := DuplicityURL(job.Repo{Target: mustParse(t, "sftp://bk@nas/srv")}, "", "127.0.0.1:4242"); u != "paramiko+sftp://bk@127.0.0.1:4242//srv" {
		t.Errorf("DuplicityURL through the relay = %q", u)
	}
}

func TestDuplicityArgs(t *testing.T) {
	j := &job.Job{Client: "web",
		Backup: &job.Backup{Time: time.Unix(1700000000, 0), Source: []string{"/srv", "/etc"}, Exclude: []string{"/srv/cache", "*.tmp"}},
		Repo: &job.Repo{Encryption: "gpg", FullIfOlderThan: "1M", ExtraOptions: []string{"--volsize", "50"},
			GPG: job.GPG{EncryptKeys: []string{"AAA", "BBB"}, SignKey: "CCC"}}}
	common := DuplicityCommon(j, ApplianceDirs(), "/job/secret-kh")
	joined := strings.Join(common, " ")
	for _, want := range []string{"--name web", "--archive-dir /cache/duplicity", "--tempdir /cache/tmp",
		"--encrypt-key AAA --encrypt-key BBB --sign-key CCC", "--homedir=/run/sb/backend/gnupg",
		"--ssh-options -oUserKnownHostsFile=/job/secret-kh", "--current-time 1700000000"} {
		if !strings.Contains(joined, want) {
			t.Errorf("DuplicityCommon lacks %q: %s", want, joined)
		}
	}
	argv, err := DuplicityBackupArgs([]string{"C"}, j, "/snapshot", "file:///t")
	want := []string{"duplicity", "C", "--full-if-older-than", "1M", "--exclude", "/snapshot/srv/cache", "--exclude", "**/*.tmp",
		"--include", "/snapshot/srv", "--include", "/snapshot/etc", "--exclude", "**", "--volsize", "50", "/snapshot", "file:///t"}
	if err != nil || !reflect.DeepEqual(argv, want) {
		t.Errorf("DuplicityBackupArgs = %q\nwant %q", argv, want)
	}
	if c := strings.Join(DuplicityCommon(&job.Job{Client: "w", Repo: &job.Repo{Encryption: "none"}}, ApplianceDirs(), ""), " "); !strings.Contains(c, "--no-encryption") {
		t.Errorf("no encryption: %s", c)
	}
}

func TestResticBackupArgs(t *testing.T) {
	j := &job.Job{Client: "web",
		Backup: &job.Backup{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Exclude: []string{"/var/cache", "*.tmp"}}, Repo: &job.Repo{BandwidthLimit: 2 << 20}}
	g := ResticGlobal("/r", nil, *j.Repo)
	argv, err := ResticBackupArgs(g, j, "/snapshot")
	want := []string{"restic", "--repo", "/r", "--limit-upload", "2048", "backup", "--json", "--host", "web", "--tag", "snapshot-backup",
		"--time", "2026-03-01 10:00:00", "--exclude", "/snapshot/var/cache", "--exclude", "*.tmp", "--", "/snapshot"}
	if err != nil || !reflect.DeepEqual(argv, want) {
		t.Errorf("ResticBackupArgs = %q\nwant %q", argv, want)
	}
	env := strings.Join(ResticEnv("web", "/job/secret-passphrase", ApplianceDirs()), "\n")
	if !strings.Contains(env, "RESTIC_PASSWORD_FILE=/job/secret-passphrase") || strings.Contains(env, "RESTIC_PASSWORD=") {
		t.Errorf("ResticEnv: the password must come from its file:\n%s", env)
	}
}

func TestSSHConfig(t *testing.T) {
	tg := mustParse(t, "sftp://bk@nas:2222/srv")
	cfg := SSHConfig(tg, job.SSH{ProxyCommand: "nc -X 5 -x 127.0.0.1:9050 %h %p"}, "/job/id", "/job/kh")
	for _, want := range []string{"User bk", "Port 2222", "IdentityFile /job/id", "UserKnownHostsFile /job/kh",
		"StrictHostKeyChecking yes", "BatchMode yes", "ProxyCommand nc -X 5 -x 127.0.0.1:9050 %h %p", "ServerAliveInterval"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("SSHConfig lacks %q:\n%s", want, cfg)
		}
	}
	if got := ProxyArgv("nc -x p:1 %h %p %%", "nas", 2222); !reflect.DeepEqual(got, []string{"/bin/sh", "-c", "exec nc -x p:1 nas 2222 %"}) {
		t.Errorf("ProxyArgv = %q", got)
	}
}

func TestAliasKnownHosts(t *testing.T) {
	salt := []byte("0123456789abcdef0123")
	m := hmac.New(sha1.New, salt)
	m.Write([]byte("[nas]:2222"))
	hashed := "|1|" + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(m.Sum(nil))
	kh := "# comment\nother ssh-ed25519 AAAAother\n[nas]:2222,[10.0.0.1]:2222 ssh-ed25519 AAAAplain\n" + hashed + " ssh-rsa AAAAhashed\n"
	got, err := AliasKnownHosts([]byte(kh), "nas", 2222, "[127.0.0.1]:4000")
	want := "[127.0.0.1]:4000 ssh-ed25519 AAAAplain\n[127.0.0.1]:4000 ssh-rsa AAAAhashed\n"
	if err != nil || string(got) != want {
		t.Errorf("AliasKnownHosts = %q, %v\nwant %q", got, err, want)
	}
	if _, err := AliasKnownHosts([]byte(kh), "unknown", 22, "x"); err == nil {
		t.Error("no key for the host: no error")
	}
}

func TestParseOutputs(t *testing.T) {
	rec, err := ParseResticBackup([]byte(`{"message_type":"status","percent_done":0.5}
{"message_type":"summary","data_added":705,"total_files_processed":3,"total_bytes_processed":42,"snapshot_id":"f276c6e0"}`))
	if err != nil || rec.Archive != "f276c6e0" || rec.Files != 3 || rec.OriginalSize != 42 || rec.DedupSize != 705 {
		t.Errorf("ParseResticBackup = %+v, %v", rec, err)
	}
	rec, err = ParseDuplicityStats([]byte("--------------[ Backup Statistics ]--------------\nSourceFiles 12\nSourceFileSize 3456 (3.38 KB)\nTotalDestinationSizeChange 789 (789 bytes)\nErrors 0\n"))
	if err != nil || rec.Files != 12 || rec.OriginalSize != 3456 || rec.DedupSize != 789 {
		t.Errorf("ParseDuplicityStats = %+v, %v", rec, err)
	}
	snaps, err := ParseDuplicityStatus([]byte(` Type of backup set:                            Time:      Num volumes:
                Full         Sun Mar  1 10:00:00 2026                 1
         Incremental         Mon Mar  2 10:00:00 2026                 1
`))
	if err != nil || len(snaps) != 2 || !snaps[0].Full || snaps[1].Full || snaps[1].Time.Day() != 2 {
		t.Errorf("ParseDuplicityStatus = %+v, %v", snaps, err)
	}
}

// A rest:// target's URL: HTTPS, the port always, the password escaped
// (it is the repository file's only secret, never in an argv).
func TestResticRESTURL(t *testing.T) {
	for _, tc := range []struct{ url, pass, want string }{
		{"rest://web@nas/web", "s3cret", "rest:https://web:s3cret@nas:8000/web"},
		{"rest://web@10.0.2.2:18443/web/", "a:b@c/d e", "rest:https://web:a%3Ab%40c%2Fd%20e@10.0.2.2:18443/web/"},
		{"rest://db@[fd00::1]:8000/db", "x", "rest:https://db:x@[fd00::1]:8000/db"},
	} {
		if got := ResticRESTURL(mustParse(t, tc.url), tc.pass); got != tc.want {
			t.Errorf("ResticRESTURL(%s, %q) = %s, want %s", tc.url, tc.pass, got, tc.want)
		}
	}
}
