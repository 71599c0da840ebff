package qemutests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/cli"
	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/retention"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// TestBackends runs restic and duplicity end to end against one shut-off
// client with the Small tree: file:// targets, sftp through a ProxyCommand
// (a SOCKS proxy, as for tor), s3 and ftp servers on 127.0.0.1, gpg
// encryption and signing checked on the host, retention over backups at
// controlled times, and an appliance killed in the middle of a backup.
func TestBackends(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	needTools(t, "restic", "duplicity", "gpg")
	ctx := context.Background()
	c := newClient(t, e, "bk", "qcow2", smallTree)
	etc := filepath.Join(c.dir, "etc")
	secret := func(name, content string) string {
		p := filepath.Join(etc, "secrets", name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	pass := secret("restic.pass", "restic secret\n")
	profile := func(body string) {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "local.toml"), []byte(body), 0o600))
	}
	run := func(t *testing.T, at string) {
		t.Helper()
		args := []string{"run", "-c", c.config}
		if at != "" {
			args = append(args, "--backup-time", at)
		}
		start := time.Now()
		code, _, _ := hostctl(t, ctx, args...)
		if code != 0 {
			dumpJobLog(t, c)
		}
		require.Equal(t, 0, code)
		t.Logf("backup took %s", time.Since(start).Round(time.Second))
	}
	restore := func(t *testing.T) string {
		t.Helper()
		restored := filepath.Join(t.TempDir(), "restored")
		code, _, _ := hostctl(t, ctx, "restore", "-c", c.config, "bk", "--to-dir", restored)
		require.Equal(t, 0, code)
		return restored
	}

	t.Run("restic-file-kill-retention", func(t *testing.T) {
		repo := filepath.Join(c.dir, "restic")
		resticFile := func(extra string) {
			profile(fmt.Sprintf(`backend = "restic"
target = "file://%s/{client}"
check_every = 2
%s
[encryption]
passphrase_file = %q
[retention]
keep_daily = 1
`, repo, extra, pass))
		}
		// The first backup into the new repository is slowed down so that
		// the appliance is surely killed while restic writes.
		resticFile(`bandwidth_limit = "128K"`)
		code, stderr := runKilled(t, ctx, c, "2026-03-01T09:00:00Z")
		require.NotEqual(t, 0, code, "a run whose appliance was killed fails:\n%s", stderr)
		require.NotContains(t, stderr, "bk: backup done", "the appliance was killed while the backend ran")
		c.requireNothingLeft(t)

		// The next runs succeed (restic unlocks what the dead appliance
		// held); keep_daily = 1 keeps only the newest day's snapshot.
		resticFile("")
		for _, day := range []string{"2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z"} {
			run(t, day)
		}
		r := resticRepo{repo: filepath.Join(repo, "bk"), pass: pass}
		require.Equal(t, []string{"2026-03-02"}, r.snapshots(t), "keep_daily = 1 keeps the newest day")
		r.run(t, "check")
		dst := t.TempDir()
		r.run(t, "restore", "latest", "--tag", retention.ResticTag, "--target", dst) // a backup, not its VM record
		c.requireTree(t, filepath.Join(dst, "snapshot"))
		c.requireNothingLeft(t)
	})

	gk := newGPGKeys(t)
	t.Run("duplicity-gpg-file-retention", func(t *testing.T) {
		target := filepath.Join(c.dir, "dup")
		profile(fmt.Sprintf(`backend = "duplicity"
target = "file://%s/{client}"
[encryption]
encrypt_keys = [%q]
sign_key = %q
key_files = [%q, %q]
[retention]
max_fullbackups = 1
[duplicity]
full_if_older_than = "2D"
`, target, gk.enc, gk.sign, secret("enc.asc", gk.encKey), secret("sign.asc", gk.signKey)))
		// full, incremental, then a new full (older than 2D) after which
		// retention leaves only the newest chain.
		for _, at := range []string{"2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z", "2026-03-05T10:00:00Z"} {
			run(t, at)
		}
		dir := filepath.Join(target, "bk")
		var fulls, incs []string
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, en := range entries {
			switch {
			case strings.HasPrefix(en.Name(), "duplicity-full.") && strings.HasSuffix(en.Name(), ".difftar.gpg"):
				fulls = append(fulls, en.Name())
			case strings.HasPrefix(en.Name(), "duplicity-inc."):
				incs = append(incs, en.Name())
			}
		}
		require.Len(t, fulls, 1, "max_fullbackups = 1: one chain left: %v", entries)
		require.Contains(t, fulls[0], "20260305T", "the newest chain survives")
		require.Empty(t, incs, "the old chain's incrementals are gone")
		// Each backup's VM record is a set of its own (prefix vm-); the
		// records of the removed chain went with it.
		records, _ := filepath.Glob(filepath.Join(dir, vmrecord.DuplicityPrefix+"duplicity-full.*.manifest.gpg"))
		require.Len(t, records, 1, "%v", entries)
		require.Contains(t, records[0], "20260305T")
		// Encrypted to the recipient and signed by the signing key.
		status := gk.decryptStatus(t, filepath.Join(dir, fulls[0]))
		require.Contains(t, status, "ENC_TO "+gk.encSub)
		require.Contains(t, status, "VALIDSIG ")
		require.Contains(t, status, gk.signFpr)
		requireDuplicityTree(t, c, restore(t))
	})

	ssh := startSSHD(t)
	proxy := startSOCKS(t)
	sshOpts := func() string {
		return fmt.Sprintf(`[ssh]
identity_file = %q
known_hosts = %q
proxy_command = "nc -X 5 -x %s:%d %%h %%p"
`, ssh.identity, ssh.knownHosts, guestHost, proxy.port)
	}
	t.Run("restic-sftp-proxycommand", func(t *testing.T) {
		before := proxy.conns.Load()
		profile(fmt.Sprintf(`backend = "restic"
target = "sftp://root@%s:%d%s/{client}"
[encryption]
passphrase_file = %q
`, guestHost, ssh.port, ssh.root+"/restic", pass) + sshOpts())
		run(t, "")
		require.Greater(t, proxy.conns.Load(), before, "the connection went through the ProxyCommand")
		require.Len(t, resticRepo{repo: filepath.Join(ssh.root, "restic", "bk"), pass: pass}.snapshots(t), 1)
	})
	t.Run("borg-ssh-proxycommand", func(t *testing.T) {
		// borg serve on the server side: the host's borg, run by sshd.
		before := proxy.conns.Load()
		profile(fmt.Sprintf(`backend = "borg"
target = "sftp://root@%s:%d%s/{client}"
[encryption]
passphrase_file = %q
`, guestHost, ssh.port, ssh.root+"/borg", filepath.Join(etc, "secrets", "borg.pass")) + sshOpts())
		run(t, "")
		require.Greater(t, proxy.conns.Load(), before, "borg's ssh went through the ProxyCommand")
		repo := filepath.Join(ssh.root, "borg", "bk")
		borg(t, c.pass, c.dir, "check", repo)
		backups := borgBackups(t, c.pass, c.dir, repo)
		require.Len(t, backups, 1)
		dst := t.TempDir()
		borg(t, c.pass, dst, "extract", repo+"::"+backups[0])
		c.requireTree(t, dst)
	})
	t.Run("duplicity-sftp-paramiko-proxycommand", func(t *testing.T) {
		before := proxy.conns.Load()
		profile(fmt.Sprintf(`backend = "duplicity"
target = "sftp://root@%s:%d%s/{client}"
[encryption]
encrypt_keys = [%q]
key_files = [%q]
`, guestHost, ssh.port, ssh.root+"/dup", gk.enc, secret("enc2.asc", gk.encKey)) + sshOpts())
		run(t, "")
		require.Greater(t, proxy.conns.Load(), before, "paramiko went through the ProxyCommand relay")
		m, _ := filepath.Glob(filepath.Join(ssh.root, "dup", "bk", "duplicity-full.*.manifest.gpg"))
		require.Len(t, m, 1)
		requireDuplicityTree(t, c, restore(t))
		c.requireNothingLeft(t)
	})

	t.Run("restic-s3", func(t *testing.T) {
		s3 := startS3(t, e)
		const access, secretKey = "sb-test-access", "sb-test-secret"
		profile(fmt.Sprintf(`backend = "restic"
target = "s3://%s/{client}"
[encryption]
passphrase_file = %q
[s3]
endpoint = "http://%s:%d"
region = "us-east-1"
path_style = true
access_key_file = %q
secret_key_file = %q
`, s3Bucket, pass, guestHost, s3.port, secret("s3.access", access+"\n"), secret("s3.secret", secretKey+"\n")))
		run(t, "")
		// The repository is in the bucket, as restic on the host sees it.
		r := resticRepo{repo: fmt.Sprintf("s3:http://127.0.0.1:%d/%s/bk", s3.port, s3Bucket), pass: pass,
			opts: []string{"-o", "s3.bucket-lookup=path"},
			env:  []string{"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secretKey}}
		require.Len(t, r.snapshots(t), 1)
		r.run(t, "check")
		c.requireTree(t, restore(t))
		c.requireNothingLeft(t)
	})

	t.Run("duplicity-ftp", func(t *testing.T) {
		ftp := startFTP(t)
		profile(fmt.Sprintf(`backend = "duplicity"
target = "ftp://%s@%s:%d/dup/{client}"
[encryption]
encrypt_keys = [%q]
key_files = [%q]
[ftp]
password_file = %q
`, ftp.user, guestHost, ftp.port, gk.enc, secret("enc3.asc", gk.encKey), secret("ftp.pass", ftp.password+"\n")))
		run(t, "")
		m, _ := filepath.Glob(filepath.Join(ftp.root, "dup", "bk", "duplicity-full.*.manifest.gpg"))
		require.Len(t, m, 1, "the full backup's manifest is on the ftp server")
		requireDuplicityTree(t, c, restore(t))
		c.requireNothingLeft(t)
	})
}

// runKilled starts a backup of c, destroys its appliance once the backend
// has been running for a moment, and returns hostctl's exit code and stderr.
func runKilled(t *testing.T, ctx context.Context, c *client, at string) (int, string) {
	t.Helper()
	marker := c.name + ": backup…"
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		var stdout bytes.Buffer
		done <- cli.Main(ctx, progressText([]string{"run", "-c", c.config, "--backup-time", at}), strings.NewReader(""), &stdout, stderr)
	}()
	for deadline := time.Now().Add(5 * time.Minute); !strings.Contains(stderr.String(), marker); {
		select {
		case code := <-done:
			t.Fatalf("the run ended (exit %d) before its backup started:\n%s", code, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "the backup did not start within 5 minutes:\n%s", stderr.String())
	}
	time.Sleep(3 * time.Second)
	running := appliances(t, c.stateDir, true)
	require.Len(t, running, 1, "no appliance running:\n%s", stderr.String())
	domain := running[0]
	virsh(t, "destroy", domain)
	code := <-done
	t.Logf("killed run → exit %d\nstderr:\n%s", code, stderr.String())
	return code, stderr.String()
}

// requireDuplicityTree compares a duplicity restore with the client's tree
// as far as duplicity's format goes: it stores hard links as separate files
// and does not restore symlink mtimes.
func requireDuplicityTree(t *testing.T, c *client, got string) {
	t.Helper()
	g, err := fixture.Scan(got, "lost+found")
	require.NoError(t, err)
	w := c.want(t)
	for _, m := range []map[string]fixture.Entry{g, w} {
		for k, e := range m {
			e.HardlinkGroup = ""
			if e.Type == "symlink" {
				e.Mtime = 0
			}
			m[k] = e
		}
	}
	require.Empty(t, fixture.Diff(w, g), "tree at %s differs from the client's", got)
}

// dumpJobLog logs every run's job log, and the console log of a run whose
// appliance left no job log (it stopped before the supervisor wrote one).
func dumpJobLog(t *testing.T, c *client) {
	dirs, _ := filepath.Glob(filepath.Join(c.stateDir, "runs", "*", "*"))
	for _, d := range dirs {
		for _, name := range []string{"job.log", "console.log"} {
			if b, err := os.ReadFile(filepath.Join(d, name)); err == nil {
				if name == "console.log" && len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("%s:\n%s", filepath.Join(d, name), b)
				break
			}
		}
	}
}

// resticRepo is a restic repository read with restic on the host.
type resticRepo struct {
	repo, pass string
	opts, env  []string // extra options (-o …) and environment (S3 keys)
}

func (r resticRepo) run(t *testing.T, args ...string) string {
	t.Helper()
	argv := append([]string{"restic", "--repo", r.repo, "--password-file", r.pass, "--cache-dir", t.TempDir()}, r.opts...)
	out, err := execx.Run(context.Background(), execx.Cmd{Argv: append(argv, args...), Env: r.env})
	require.NoError(t, err)
	return string(out)
}

// snapshots lists the days of the repository's snapshots.
func (r resticRepo) snapshots(t *testing.T) []string {
	var snaps []struct {
		Time time.Time `json:"time"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.run(t, "snapshots", "--json", "--tag", retention.ResticTag)), &snaps))
	var days []string
	for _, s := range snaps {
		days = append(days, s.Time.UTC().Format("2006-01-02"))
	}
	return days
}

// gpgKeys are an encryption and a signing key made on the host.
type gpgKeys struct {
	home            string
	enc, sign       string // key ids (fingerprints)
	encSub, signFpr string // the encryption subkey's long id, the signing key's fingerprint
	encKey, signKey string // armored exports (enc: public + secret; sign: secret)
}

func newGPGKeys(t testing.TB) *gpgKeys {
	t.Helper()
	g := &gpgKeys{home: t.TempDir()}
	gpg := func(args ...string) string {
		cmd := exec.Command("gpg", append([]string{"--homedir", g.home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		out, err := cmd.Output()
		require.NoError(t, err, "gpg %v", args)
		return string(out)
	}
	gpg("--quick-gen-key", "backup-enc <enc@test>", "rsa2048", "encr", "never")
	gpg("--quick-gen-key", "backup-sign <sign@test>", "rsa2048", "sign", "never")
	for _, l := range strings.Split(gpg("--with-colons", "--list-keys"), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 10 {
			continue
		}
		switch {
		case f[0] == "pub" && len(f) > 11 && strings.Contains(f[11], "E"):
			g.enc = f[4]
			g.encSub = f[4]
		case f[0] == "pub" && len(f) > 11 && strings.Contains(f[11], "S"):
			g.sign = f[4]
		case f[0] == "fpr" && g.sign != "" && g.signFpr == "" && strings.HasSuffix(f[9], g.sign):
			g.signFpr = f[9]
		}
	}
	require.NotEmpty(t, g.enc)
	require.NotEmpty(t, g.signFpr)
	g.encKey = gpg("--armor", "--export-secret-keys", g.enc) + gpg("--armor", "--export", g.enc)
	g.signKey = gpg("--armor", "--export-secret-keys", g.sign)
	return g
}

// decryptStatus decrypts a file with the host keyring and returns gpg's
// machine-readable status lines (ENC_TO, VALIDSIG, …).
func (g *gpgKeys) decryptStatus(t *testing.T, file string) string {
	cmd := exec.Command("gpg", "--homedir", g.home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--status-fd", "1", "--output", "/dev/null", "--decrypt", file)
	out, err := cmd.Output()
	require.NoError(t, err, "gpg --decrypt %s: %s", file, out)
	return string(out)
}
