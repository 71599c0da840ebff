package qemutests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// needLibvirt is needEnv without the appliance image: for tests that only
// talk to libvirtd.
func needLibvirt(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "needs root (libvirt qemu:///system, loop devices and mounts)")
	}
	if err := exec.Command("virsh", "-c", "qemu:///system", "version").Run(); err != nil {
		testutil.SkipOrFail(t, "libvirtd is not answering on qemu:///system: run qemu-tests/setup-host.sh")
	}
}

// dirBytes maps every file under dir to its content and mode.
func dirBytes(t testing.TB, dir string) map[string]string {
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fi.Mode().String() + "\n" + string(b)
		return nil
	}))
	return out
}

// TestInitFromLibvirt runs hostctl init against the real libvirtd with
// three domains: a qcow2 file, a raw file and a block device (a loop
// device) behind it. check accepts what init wrote, with the disks
// resolved through libvirt, and a second init changes no byte.
func TestInitFromLibvirt(t *testing.T) {
	t.Parallel()
	needLibvirt(t)
	ctx := context.Background()
	dir := t.TempDir()
	qcow := filepath.Join(dir, "a.qcow2")
	raw := filepath.Join(dir, "b.img")
	loopFile := filepath.Join(dir, "c.loop")
	for _, c := range [][]string{
		{"qemu-img", "create", "-q", "-f", "qcow2", qcow, "64M"},
		{"qemu-img", "create", "-q", "-f", "raw", raw, "64M"},
		{"truncate", "-s", "64M", loopFile},
	} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		require.NoError(t, err, "%v: %s", c, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", loopFile).Output()
	require.NoError(t, err, "losetup")
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })

	disk := func(typ, format, src, dev string) string {
		attr := "file"
		if typ == "block" {
			attr = "dev"
		}
		return fmt.Sprintf(`<disk type=%q device="disk"><driver name="qemu" type=%q/><source %s=%q/><target dev=%q bus="virtio"/></disk>`, typ, format, attr, src, dev)
	}
	domains := map[string]string{
		testDomain("init-a"): disk("file", "qcow2", qcow, "vda"),
		testDomain("init-b"): disk("file", "raw", raw, "vda") + disk("block", "raw", loop, "vdb"),
		testDomain("init-c"): disk("block", "raw", loop, "vda"),
	}
	args := []string{"init", "-c", filepath.Join(dir, "etc", "hostctl.toml")}
	for name, disks := range domains {
		x := fmt.Sprintf(`<domain type="qemu"><name>%s</name><memory unit="MiB">64</memory><os><type arch="x86_64">hvm</type></os><devices>%s</devices></domain>`, name, disks)
		xf := filepath.Join(dir, name+".xml")
		require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
		virsh(t, "define", xf)
		t.Cleanup(func() { exec.Command("virsh", "-c", "qemu:///system", "undefine", name).Run() })
		args = append(args, "--domain", name)
	}
	cfg := filepath.Join(dir, "etc", "hostctl.toml")
	code, stdout, _ := hostctl(t, ctx, args...)
	require.Equal(t, 0, code)
	for name := range domains {
		require.Contains(t, stdout, "clients/"+name+".toml")
	}
	b, err := os.ReadFile(filepath.Join(dir, "etc", "clients", testDomain("init-b")+".toml"))
	require.NoError(t, err)
	require.Contains(t, string(b), raw+"  (raw file)")
	require.Contains(t, string(b), loop+"  (block device)")

	code, stdout, _ = hostctl(t, ctx, "check", "-c", cfg)
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "3 clients, 1 profile: configuration OK")
	for _, p := range []string{qcow, raw, loop} {
		require.Contains(t, stdout, p, "check resolved the disk through libvirt")
	}

	before := dirBytes(t, filepath.Join(dir, "etc"))
	code, stdout, _ = hostctl(t, ctx, args...)
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "0 file(s) written")
	require.Equal(t, before, dirBytes(t, filepath.Join(dir, "etc")), "a second init changes nothing")
}

// passwordSSHD is an sshd on 127.0.0.1 that accepts a test user's
// password: what an operator meets before target setup.
type passwordSSHD struct {
	port           int
	user, password string
	home           string
	hostKeyFpr     string // SHA256:… of its host key
}

// sshdCount numbers the passwordSSHDs of this test process.
var sshdCount atomic.Int32

func startPasswordSSHD(t *testing.T) *passwordSSHD {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		testutil.SkipOrFail(t, "openssh-server is not installed: run qemu-tests/setup-host.sh")
	}
	dir := t.TempDir()
	s := &passwordSSHD{port: freePort(t)}
	// An account of its own: tests run in parallel.
	a := newAccount(t, fmt.Sprintf("sbt%sn%d", runTag, sshdCount.Add(1)))
	s.user, s.password, s.home = a.user, a.password, a.home

	hostKey := filepath.Join(dir, "host_key")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("ssh-keygen", "-l", "-f", hostKey+".pub").Output()
	require.NoError(t, err)
	s.hostKeyFpr = strings.Fields(string(out))[1]
	runSSHD(t, dir, s.port, fmt.Sprintf(`HostKey %s
AllowUsers %s*
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
Subsystem sftp internal-sftp
`, hostKey, s.user))
	return s
}

// sshAccount is a login of this host's made for a test: a password, a
// home of its own (mode 0755, as a plain account's).
type sshAccount struct{ user, password, home string }

// newAccount makes the account user (removed again at the end of the
// test). A passwordSSHD lets in every account whose name starts with its
// own user's.
func newAccount(t *testing.T, user string) sshAccount {
	t.Helper()
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	a := sshAccount{user: user, password: hex.EncodeToString(pw)}
	// The home must be reachable for the user: not under t.TempDir (0700).
	home, err := os.MkdirTemp("", "sbtest-home-")
	require.NoError(t, err)
	a.home = home
	t.Cleanup(func() { os.RemoveAll(home) })
	exec.Command("userdel", a.user).Run()
	out, err := exec.Command("useradd", "-M", "-d", home, "-s", "/bin/sh", a.user).CombinedOutput()
	require.NoError(t, err, "useradd: %s", out)
	t.Cleanup(func() { exec.Command("userdel", a.user).Run() })
	require.NoError(t, os.Chmod(home, 0o755))
	out, err = exec.Command("chown", a.user+":", home).CombinedOutput()
	require.NoError(t, err, "chown: %s", out)
	cp := exec.Command("chpasswd")
	cp.Stdin = strings.NewReader(a.user + ":" + a.password + "\n")
	out, err = cp.CombinedOutput()
	require.NoError(t, err, "chpasswd: %s", out)
	return a
}

// connectRow finds the row "CHECKED CHECK RESULT …" of check --connect.
func connectRow(t *testing.T, out, checked, check string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(checked) + `\s+` + regexp.QuoteMeta(check) + `\s+(OK|FAIL)\s+(.*)$`)
	m := re.FindStringSubmatch(out)
	require.NotNil(t, m, "no row %q %q in:\n%s", checked, check, out)
	return m[1] + " " + m[2]
}

// TestOnboardingSSHTarget goes the operator's way from an empty sftp
// account with a password to a verified backup: keygen gpg + ssh, target
// setup with the password (key installed, host key pinned, directory
// made), check --connect, a duplicity backup through the real appliance,
// the archive verified on the host with the generated keys; then
// check --connect against a wrong port and an unauthorised key.
func TestOnboardingSSHTarget(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	needTools(t, "gpg", "ssh-keygen", "useradd", "chpasswd")
	ctx := context.Background()
	start := time.Now()
	srv := startPasswordSSHD(t)
	c := newClient(t, e, "onb", "qcow2", smallTree)
	etc := filepath.Join(c.dir, "etc")
	profileFile := filepath.Join(etc, "profiles", "local.toml")
	remote := filepath.Join(srv.home, "backup")
	encFpr, signFpr := "0123456789ABCDEF0123456789ABCDEF01234567", "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
	profile := func(port int, identity string) {
		require.NoError(t, os.WriteFile(profileFile, []byte(fmt.Sprintf(`# the operator's profile, before keygen
backend = "duplicity"
target = "sftp://%s@%s:%d%s/{client}"

[encryption]
encrypt_keys = [%q]
sign_key = %q
key_files = ["secrets/backup-recipient.asc", "secrets/backup-sign.asc"]

[ssh]
identity_file = %q
known_hosts = "secrets/target.known_hosts"
`, srv.user, guestHost, port, remote, encFpr, signFpr, identity)), 0o600))
	}
	profile(srv.port, "secrets/target_ed25519")

	code, out, _ := hostctl(t, ctx, "keygen", "gpg", "local", "-c", c.config)
	require.Equal(t, 0, code)
	require.Contains(t, out, "keep it OFF this host")
	fprs := regexp.MustCompile(`(?m)^encryption key \(recipient\): ([0-9A-F]{40})\nsigning key:\s+([0-9A-F]{40})$`).FindStringSubmatch(out)
	require.NotNil(t, fprs, "fingerprints printed")
	encFpr, signFpr = fprs[1], fprs[2]
	prof, err := os.ReadFile(profileFile)
	require.NoError(t, err)
	require.Contains(t, string(prof), fmt.Sprintf("encrypt_keys = [%q]", encFpr), "keygen set the recipient")
	require.Contains(t, string(prof), fmt.Sprintf("sign_key = %q", signFpr))
	require.Contains(t, string(prof), "# the operator's profile, before keygen", "comments kept")
	recipientSecret := filepath.Join(etc, "secrets", "local-recipient-SECRET.asc")
	for _, f := range []string{"backup-recipient.asc", "backup-sign.asc", "local-recipient-SECRET.asc"} {
		fi, err := os.Stat(filepath.Join(etc, "secrets", f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	pub, err := os.ReadFile(filepath.Join(etc, "secrets", "backup-recipient.asc"))
	require.NoError(t, err)
	require.NotContains(t, string(pub), "PRIVATE KEY", "key_files[0] is the recipient's public key only")
	// keygen never overwrites.
	before := dirBytes(t, filepath.Join(etc, "secrets"))
	code, _, stderr := hostctl(t, ctx, "keygen", "gpg", "local", "-c", c.config)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "exists already")
	require.Equal(t, before, dirBytes(t, filepath.Join(etc, "secrets")))

	code, out, _ = hostctl(t, ctx, "keygen", "ssh", "local", "-c", c.config)
	require.Equal(t, 0, code)
	require.Contains(t, out, "SHA256:")

	pwFile := filepath.Join(c.dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(srv.password+"\n"), 0o600))
	setup := []string{"target", "setup", "local", "-c", c.config, "--password-file", pwFile, "--host-key-fingerprint", srv.hostKeyFpr}
	code, out, _ = hostctl(t, ctx, setup...)
	require.Equal(t, 0, code)
	require.Contains(t, out, srv.hostKeyFpr, "the host key's fingerprint is shown")
	kh, err := os.ReadFile(filepath.Join(etc, "secrets", "target.known_hosts"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(kh), fmt.Sprintf("[%s]:%d ssh-ed25519 ", guestHost, srv.port)), "pinned as the appliance names it: %s", kh)
	ak, err := os.ReadFile(filepath.Join(srv.home, ".ssh", "authorized_keys"))
	require.NoError(t, err)
	idPub, err := os.ReadFile(filepath.Join(etc, "secrets", "target_ed25519.pub"))
	require.NoError(t, err)
	require.Contains(t, string(ak), strings.Join(strings.Fields(string(idPub))[:2], " "))
	fi, err := os.Stat(filepath.Join(srv.home, ".ssh"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(remote, "onb"))
	require.NoError(t, err, "the client's directory was made")
	require.True(t, fi.IsDir())
	// Again: nothing changes.
	code, out, _ = hostctl(t, ctx, setup...)
	require.Equal(t, 0, code)
	require.Contains(t, out, "in ~/.ssh/authorized_keys already")
	ak2, _ := os.ReadFile(filepath.Join(srv.home, ".ssh", "authorized_keys"))
	kh2, _ := os.ReadFile(filepath.Join(etc, "secrets", "target.known_hosts"))
	require.Equal(t, string(ak), string(ak2))
	require.Equal(t, string(kh), string(kh2))

	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", c.config)
	require.Equal(t, 0, code)
	for _, check := range []string{"reachable", "host key", "authenticated", "writable", "repository"} {
		require.True(t, strings.HasPrefix(connectRow(t, out, "profile local", check), "OK "), check)
	}
	require.Contains(t, connectRow(t, out, "client onb", "domain"), "OK "+c.domain)
	require.Contains(t, connectRow(t, out, "client onb", "disk vda"), "OK "+c.disk)
	setupTime := time.Since(start)

	// A backup with the generated keys, through the appliance.
	bstart := time.Now()
	code, _, _ = hostctl(t, ctx, "run", "-c", c.config)
	if code != 0 {
		dumpJobLog(t, c)
	}
	require.Equal(t, 0, code)
	t.Logf("setup %s, backup %s", setupTime.Round(time.Second), time.Since(bstart).Round(time.Second))
	vols, _ := filepath.Glob(filepath.Join(remote, "onb", "duplicity-full.*.difftar.gpg"))
	require.Len(t, vols, 1)
	// Verified on the host with the generated keys only: the recipient's
	// secret key decrypts, the signature is the generated signing key's.
	home := t.TempDir()
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	gpg := func(args ...string) string {
		out, err := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback"}, args...)...).CombinedOutput()
		require.NoError(t, err, "gpg %v: %s", args, out)
		return string(out)
	}
	gpg("--import", recipientSecret, filepath.Join(etc, "secrets", "backup-sign.asc"))
	status := gpg("--status-fd", "1", "--output", "/dev/null", "--decrypt", vols[0])
	require.Contains(t, status, "VALIDSIG "+signFpr)
	require.Contains(t, status, "DECRYPTION_OKAY")
	c.requireNothingLeft(t)
	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", c.config)
	require.Equal(t, 0, code)
	require.Contains(t, connectRow(t, out, "profile local", "repository"), "duplicity file(s)")

	// Broken targets show the failing row and exit 1.
	profile(freePort(t), "secrets/target_ed25519")
	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", c.config)
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(connectRow(t, out, "profile local", "keys"), "OK "))
	require.Contains(t, connectRow(t, out, "profile local", "reachable"), "FAIL ")
	require.Contains(t, connectRow(t, out, "profile local", "reachable"), "connection refused")

	other := filepath.Join(etc, "secrets", "other_ed25519")
	out2, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput()
	require.NoError(t, err, "%s", out2)
	profile(srv.port, other)
	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", c.config)
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(connectRow(t, out, "profile local", "host key"), "OK "))
	require.Contains(t, connectRow(t, out, "profile local", "authenticated"), "FAIL ")
	require.Contains(t, connectRow(t, out, "profile local", "authenticated"), "unable to authenticate")

	// borg and restic profiles: target setup also initialises the
	// client's repository with the host's borg/restic over ssh, logging in
	// with the identity and the pinned key; check --connect finds it.
	pass := filepath.Join(etc, "secrets", "repo.pass")
	require.NoError(t, os.WriteFile(pass, []byte("onboarding repo pass\n"), 0o600))
	for _, backend := range []string{"borg", "restic"} {
		if _, err := exec.LookPath(backend); err != nil {
			testutil.SkipOrFail(t, backend+" is not installed on the host: run qemu-tests/setup-host.sh")
		}
		dir := filepath.Join(srv.home, backend)
		require.NoError(t, os.WriteFile(profileFile, []byte(fmt.Sprintf(`backend = %q
target = "sftp://%s@%s:%d%s/{client}"
[encryption]
passphrase_file = %q
[ssh]
identity_file = "secrets/target_ed25519"
known_hosts = "secrets/target.known_hosts"
`, backend, srv.user, guestHost, srv.port, dir, pass)), 0o600))
		code, out, _ = hostctl(t, ctx, setup...)
		require.Equal(t, 0, code, backend)
		require.Contains(t, out, backend+" repository "+filepath.Join(dir, "onb")+" ready")
		code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", c.config)
		require.Equal(t, 0, code, backend)
		require.Contains(t, connectRow(t, out, "profile local", "repository"), "OK onb: "+filepath.Join(dir, "onb")+": "+backend+" repository")
		if backend == "restic" {
			r := resticRepo{repo: filepath.Join(dir, "onb"), pass: pass}
			require.Empty(t, r.snapshots(t), "an initialised, empty repository")
		} else {
			borg(t, "onboarding repo pass", c.dir, "info", filepath.Join(dir, "onb"))
		}
		// Again: the existing repository is fine.
		code, _, _ = hostctl(t, ctx, setup...)
		require.Equal(t, 0, code, backend)
	}
	t.Logf("whole test %s", time.Since(start).Round(time.Second))
}
