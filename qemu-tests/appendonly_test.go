package qemutests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// aoAttack is what a taken-over appliance with an append-only profile's
// credential (its job disk: the ssh key, the pinned host key, the
// passphrase) tries against the repository: list it, delete every
// archive, compact, delete the repository, and get past borg serve to a
// shell or to sftp to remove or overwrite the files, and last re-encrypt
// the repository's key with its own passphrase. Each attempt prints
// "ATTACK <what> rc=N".
const aoAttack = `#!/bin/sh
set -u
ifc=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
ip link set "$ifc" up && ip addr add 10.0.2.15/24 dev "$ifc" && ip route add default via 10.0.2.2
export HOME=/tmp BORG_BASE_DIR=/tmp/borg BORG_PASSCOMMAND="cat /job/secret-passphrase" BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES
cp /job/secret-ssh-identity /tmp/id && chmod 600 /tmp/id
SSH="ssh -i /tmp/id -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/job/secret-ssh-known-hosts -p PORT"
export BORG_RSH="$SSH"
R=ssh://USER@10.0.2.2:PORTREPO
borg list --short "$R"; echo "ATTACK list rc=$?"
for a in $(borg list --short "$R"); do borg delete "$R::$a"; echo "ATTACK delete $a rc=$?"; done
borg compact "$R"; echo "ATTACK compact rc=$?"
borg delete --force "$R"; echo "ATTACK delete-repository rc=$?"
$SSH USER@10.0.2.2 "rm -rf REPO && echo SHELL-RAN"; echo "ATTACK shell rc=$?"
echo "rm REPO/config" | sftp -b - -i /tmp/id -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/job/secret-ssh-known-hosts -P PORT USER@10.0.2.2; echo "ATTACK sftp rc=$?"
echo "ATTACK left: $(borg list --short "$R" | tr '\n' ' ')"
BORG_NEW_PASSPHRASE=evil borg key change-passphrase "$R"; echo "ATTACK change-passphrase rc=$?"
`

// TestAppendOnlyBorgTarget: a borg-over-ssh profile with append_only and a
// maintenance key, set up on a real sshd (with a line of the backup key
// already there unrestricted, as a setup from before append_only leaves
// it): target setup installs both keys limited to borg serve on the
// client's repository (the old line replaced), check --connect proves
// that neither key opens a shell, and backup jobs never prune (two
// archives with keep_last = 1). Then the client's appliance is taken over
// and uses its credential to delete every archive, compact, delete the
// repository and reach a shell or sftp: the repository itself is refused,
// no shell or sftp runs, and every segment the repository had is still
// there byte for byte. The deletions are the repository's newest
// transactions; the key it re-encrypted comes back from the
// administrator's borg key export. hostctl prune (the maintenance key)
// then refuses to make the deletions final; after the rollback the README
// describes both archives are back, borg check passes, and hostctl prune
// applies keep_last = 1.
func TestAppendOnlyBorgTarget(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	needTools(t, "borg", "ssh-keygen", "useradd", "chpasswd")
	ctx := context.Background()
	srv := startPasswordSSHD(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "host", "ao")
	require.NoError(t, os.MkdirAll(tree, 0o755))
	require.NoError(t, fixtureFiles(tree, 20))

	etc := filepath.Join(dir, "etc")
	cfgPath := writeHostConfig(t, etc, filepath.Join(dir, "state"), e.imageDir, "ao", e.accel)
	remote := filepath.Join(srv.home, "backup")
	repo := filepath.Join(remote, "ao")
	require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "ao.toml"), []byte(fmt.Sprintf(`backend = "borg"
target = "ssh://%s@%s:%d%s/{client}"
append_only = true

[encryption]
passphrase_file = "secrets/{client}.pass"

[retention]
keep_last = 1

[ssh]
identity_file = "secrets/ao_ed25519"
known_hosts = "secrets/ao.known_hosts"

[maintenance]
identity_file = "secrets/ao-prune_ed25519"
`, srv.user, guestHost, srv.port, remote)), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "clients", "ao.toml"), []byte(fmt.Sprintf("type = \"self\"\npaths = [%q]\n", tree)), 0o600))
	pass := "ao's passphrase"
	require.NoError(t, os.WriteFile(filepath.Join(etc, "secrets", "ao.pass"), []byte(pass+"\n"), 0o600))

	code, out, stderr := hostctl(t, ctx, "keygen", "ssh", "ao", "-c", cfgPath)
	require.Equal(t, 0, code, stderr)
	for _, k := range []string{"ao_ed25519.pub", "ao-prune_ed25519.pub"} {
		require.Contains(t, out, "wrote  "+filepath.Join(etc, "secrets", k))
	}
	pub := func(name string) string {
		b, err := os.ReadFile(filepath.Join(etc, "secrets", name+".pub"))
		require.NoError(t, err)
		return strings.Join(strings.Fields(string(b))[:2], " ")
	}
	backupKey, pruneKey := pub("ao_ed25519"), pub("ao-prune_ed25519")

	// From an earlier setup: the backup key with full rights.
	sshDir := filepath.Join(srv.home, ".ssh")
	require.NoError(t, os.MkdirAll(sshDir, 0o700))
	ak := filepath.Join(sshDir, "authorized_keys")
	require.NoError(t, os.WriteFile(ak, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOfTheAdministratorXXXXXXXXXXXXXXXXX admin\n"+backupKey+" hostctl\n"), 0o600))
	for _, p := range []string{sshDir, ak} {
		out, err := exec.Command("chown", srv.user+":", p).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}

	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(srv.password+"\n"), 0o600))
	code, out, stderr = hostctl(t, ctx, "target", "setup", "ao", "-c", cfgPath, "--password-file", pwFile, "--host-key-fingerprint", srv.hostKeyFpr)
	require.Equal(t, 0, code, "target setup: %s\n%s", out, stderr)
	require.Contains(t, out, "borg repository "+repo+" ready")
	akData, err := os.ReadFile(ak)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(akData)), "\n")
	require.Len(t, lines, 3, "the administrator's key, the backup key, the maintenance key:\n%s", akData)
	require.True(t, strings.HasSuffix(lines[0], " admin"), "other keys are kept")
	require.Equal(t, fmt.Sprintf(`command="borg serve --append-only --restrict-to-repository %s",restrict %s hostctl`, repo, backupKey), lines[1], "the old unrestricted line is replaced")
	require.Equal(t, fmt.Sprintf(`command="borg serve --restrict-to-repository %s",restrict %s hostctl`, repo, pruneKey), lines[2])
	code, out, _ = hostctl(t, ctx, "target", "setup", "ao", "-c", cfgPath, "--password-file", pwFile)
	require.Equal(t, 0, code, "setup again")
	again, _ := os.ReadFile(ak)
	require.Equal(t, string(akData), string(again), "a second setup changes nothing")

	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 0, code, out)
	require.Contains(t, connectRow(t, out, "profile ao (client ao)", "append-only"), "runs only its forced command")
	require.Contains(t, connectRow(t, out, "profile ao (client ao)", "prune key"), "ao-prune_ed25519")
	require.Contains(t, connectRow(t, out, "profile ao (client ao)", "repository"), "borg repository, 0 archive(s)")

	// Backup jobs add and never prune: keep_last = 1, two archives.
	for i := range 2 {
		require.NoError(t, os.WriteFile(filepath.Join(tree, "night"), []byte(strconv.Itoa(i)), 0o644))
		code, _, stderr = hostctl(t, ctx, "run", "-c", cfgPath)
		require.Equal(t, 0, code, "backup %d: %s", i+1, stderr)
	}
	// The server's administrator, as the account that owns the
	// repository (borg run as root would leave files the account's borg
	// serve cannot read: seen, the config after key import).
	admin := func(args ...string) string {
		out := borg(t, pass, dir, args...)
		chown, err := exec.Command("chown", "-R", srv.user+":", repo).CombinedOutput()
		require.NoError(t, err, "%s", chown)
		return out
	}
	archives := backupsOnly(admin("list", "--short", repo))
	require.Len(t, archives, 2, "an append-only profile's backups do not prune")

	// The server's administrator keeps the repository's key (README).
	keyExport := filepath.Join(dir, "ao.borg-key")
	admin("key", "export", repo, keyExport)

	// The appliance is taken over.
	before := repoFiles(t, repo)
	lastGood := lastTransaction(t, repo)
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	secret := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(etc, "secrets", name))
		require.NoError(t, err)
		return b
	}
	script := strings.NewReplacer("USER", srv.user, "PORT", strconv.Itoa(srv.port), "REPO", repo).Replace(aoAttack)
	log, attack := takeOverBackup(t, ctx, e, cfg, "ao", script, map[string][]byte{
		job.SecretFile(target.SSHIdentity): secret("ao_ed25519"), job.SecretFile(target.SSHKnownHosts): secret("ao.known_hosts"),
		job.SecretPrefix + "passphrase": secret("ao.pass")})
	for _, a := range []string{"list", "delete", "compact", "delete-repository", "shell", "sftp", "change-passphrase"} {
		require.Contains(t, attack, a, "the attacker tried %s", a)
	}
	require.Equal(t, "0", attack["list"], "the credential reads: %v", attack)
	require.Equal(t, "0", attack["delete"], "borg serve --append-only takes deletions as new transactions")
	require.NotEqual(t, "0", attack["delete-repository"], "the repository itself cannot be deleted")
	require.Contains(t, log, "is in append-only mode")
	require.NotContains(t, log, "SHELL-RAN", "the key runs no shell")
	require.NotEqual(t, "0", attack["sftp"], "the key has no sftp")
	require.Regexp(t, `(?m)^ATTACK left: $`, log, "to the credential's eyes, every archive is gone")

	// Nothing the repository held is gone or changed.
	requireSegmentsKept(t, before, repo, "after the attack")
	tx, err := os.ReadFile(filepath.Join(repo, "transactions"))
	require.NoError(t, err)
	require.Greater(t, lastTransaction(t, repo), lastGood, "the attack's deletions are new transactions:\n%s", tx)

	// The key in the repository's config is not protected: re-encrypted
	// with the attacker's passphrase. The administrator's export brings
	// it back.
	require.Equal(t, "0", attack["change-passphrase"], "append-only does not protect the repository's key")
	cmd := exec.Command("borg", "list", "--short", repo)
	cmd.Env = borgEnv(t, pass)
	_, err = cmd.CombinedOutput()
	require.Error(t, err, "the passphrase no longer opens the repository")
	admin("key", "import", repo, keyExport)

	// A prune now would make the deletions final: it refuses, naming
	// the backups this host made that are gone.
	code, out, stderr = hostctl(t, ctx, "prune", "-c", cfgPath)
	require.Equal(t, 1, code, "prune of an attacked repository: %s\n%s", out, stderr)
	t.Logf("the refused prune's job log:\n%s", jobLogIn(out))
	require.Contains(t, out+stderr, "nothing pruned: 2 backup(s) this host recorded are gone without a prune")
	requireSegmentsKept(t, before, repo, "after the refused prune")

	// The rollback of the README: drop the newer transactions, and the
	// client's borg cache, which is newer now than the repository.
	rollback(t, repo, lastGood)
	require.Equal(t, archives, backupsOnly(admin("list", "--short", repo)), "both archives are back")
	admin("check", repo)
	require.NoError(t, os.Remove(filepath.Join(cfg.Host.StateDir, "caches", "ao.qcow2")))

	// Now the maintenance key applies keep_last = 1.
	code, out, stderr = hostctl(t, ctx, "prune", "-c", cfgPath)
	require.Equal(t, 0, code, "prune: %s\n%s\n%s", out, stderr, jobLogIn(out))
	require.Regexp(t, `(?m)^ao \(prune\)\s+ok\s.*removed 1, kept 1$`, out)
	require.Contains(t, stderr, "ao: pruned "+archives[0]+"; 1 backup(s) kept")
	require.Equal(t, archives[1:], backupsOnly(admin("list", "--short", repo)), "the newest stays")
	admin("check", repo)
	rec, err := os.ReadFile(filepath.Join(cfg.Host.StateDir, "archives", "ao"))
	require.NoError(t, err)
	require.Equal(t, archives[1]+"\n", string(rec), "the record holds what the prune kept")
	require.Empty(t, appliances(t, cfg.Host.StateDir, false), "appliance left")
}

// takeOverBackup runs a backup of client whose appliance runs script (an
// attacker, "ATTACK <what> rc=N" per attempt) with secrets on its job disk:
// the job fails, and the attacker's output comes back in the job log. It
// returns the log and each attempt's exit status.
func takeOverBackup(t *testing.T, ctx context.Context, e *env, cfg *config.Config, client, script string, secrets map[string][]byte) (string, map[string]string) {
	t.Helper()
	lv, l, image, accel := applianceDeps(t, ctx, e, cfg.Host.LibvirtURI, cfg.Host.StateDir)
	h := &hijack{Hypervisor: lv, match: "hostctl-backup-" + client + "-", prog: []byte(script), secrets: secrets}
	var progressOut bytes.Buffer
	r := runner.New(cfg, runner.Deps{Virt: h, Ledger: l}, runner.WithImage(image, accel),
		runner.WithRunID(runner.NewRunID(time.Now().Add(time.Hour))), runner.WithOutput(&progressOut), runner.WithProgress(progress.NewText(&progressOut, false)))
	cls, err := cfg.SelectClients([]string{client})
	require.NoError(t, err)
	rep := r.Backup(ctx, cls[0])
	require.NoError(t, h.err)
	require.NotEmpty(t, h.xml, "%s's appliance was taken over", client)
	require.Equal(t, job.StatusFailed, rep.Status)
	logData, err := os.ReadFile(filepath.Join(cfg.Host.StateDir, "runs", r.RunID(), client, job.FileLog))
	require.NoError(t, err)
	log := string(logData)
	t.Logf("the attacker in %s's appliance:\n%s", client, log)
	attack := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ATTACK (\S+)(?: \S+)? rc=(\d+)$`).FindAllStringSubmatch(log, -1) {
		attack[m[1]] = m[2]
	}
	return log, attack
}

// writeHostConfig makes a configuration directory etc (profiles, clients,
// secrets) with a hostctl.toml for appliance tests: state and image dirs,
// the default profile, a 1 GiB cache per client, the accelerator when
// accel is not "" (env.accel). It returns its path.
func writeHostConfig(t *testing.T, etc, stateDir, imageDir, defaultProfile, accel string) string {
	t.Helper()
	for _, d := range []string{"profiles", "clients", "secrets"} {
		require.NoError(t, os.MkdirAll(filepath.Join(etc, d), 0o700))
	}
	cfgPath := filepath.Join(etc, "hostctl.toml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`state_dir = %q
image_dir = %q
default_profile = %q
time_limit = "30m"
[appliance]
memory_mib = 1024
vcpus = 2
%s[cache]
size = "1G"
`, stateDir, imageDir, defaultProfile, accelLine(accel))), 0o600))
	return cfgPath
}

// accelLine is the [appliance] line naming accel, if any.
func accelLine(accel string) string {
	if accel == "" {
		return ""
	}
	return fmt.Sprintf("accel = %q\n", accel)
}

// jobLogIn is the tail of the job log a report line names ("(log: …)").
func jobLogIn(out string) string {
	m := regexp.MustCompile(`\(log: ([^)]+)\)`).FindStringSubmatch(out)
	if m == nil {
		return "(no job log named)"
	}
	b, err := os.ReadFile(m[1])
	if err != nil {
		return err.Error()
	}
	return tail(string(b), 4000)
}

// fixtureFiles writes n small files into dir.
func fixtureFiles(dir string, n int) error {
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), bytes.Repeat([]byte{byte(i)}, 1000+i), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// repoFiles maps every file of a repository to its SHA-256.
func repoFiles(t *testing.T, repo string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	}))
	return out
}

// requireSegmentsKept requires every segment file of before (repoFiles)
// unchanged in repo.
func requireSegmentsKept(t *testing.T, before map[string]string, repo, when string) {
	t.Helper()
	after := repoFiles(t, repo)
	n := 0
	for f, sum := range before {
		if strings.HasPrefix(f, "data/") {
			require.Equal(t, sum, after[f], "repository file %s %s", f, when)
			n++
		}
	}
	require.Positive(t, n, "segments")
}

// lastTransaction is the number of a borg repository's last transaction
// (its transactions file: "transaction N, UTC time …" per commit).
func lastTransaction(t *testing.T, repo string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "transactions"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^transaction (\d+),`).FindAllStringSubmatch(string(b), -1)
	require.NotEmpty(t, m)
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// rollback resets a borg repository to transaction good as borg's
// documentation of append-only mode says (and the README): remove the
// hints, index and integrity files, and every segment after good.
func rollback(t *testing.T, repo string, good int) {
	t.Helper()
	for _, glob := range []string{"hints.*", "index.*", "integrity.*"} {
		ms, _ := filepath.Glob(filepath.Join(repo, glob))
		for _, m := range ms {
			require.NoError(t, os.Remove(m))
		}
	}
	segs, _ := filepath.Glob(filepath.Join(repo, "data", "*", "*"))
	for _, s := range segs {
		if n, err := strconv.Atoi(filepath.Base(s)); err == nil && n > good {
			require.NoError(t, os.Remove(s))
		}
	}
}

// TestAppendOnlyClientIsolation: two clients of one append-only borg
// profile on one ssh account, whose passphrases happen to be the same (no
// appliance needed). With a key per client ({client} in
// ssh.identity_file) target setup limits each key to its own client's
// repository, and check --connect shows that ann's credential cannot open
// bob's repository: borg serve refuses the key. With one key for both, the
// key serves both repositories in one line, ann's credential lists bob's
// backups, and check --connect fails saying so.
func TestAppendOnlyClientIsolation(t *testing.T) {
	t.Parallel()
	needTools(t, "borg", "ssh-keygen", "useradd", "chpasswd")
	ctx := context.Background()
	srv := startPasswordSSHD(t)
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	cfgPath := writeHostConfig(t, etc, filepath.Join(dir, "state"), filepath.Join(dir, "image"), "ao", "")
	remote := filepath.Join(srv.home, "backup")
	profile := func(identity string) {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "ao.toml"), []byte(fmt.Sprintf(`backend = "borg"
target = "ssh://%s@%s:%d%s/{client}"
append_only = true
[encryption]
passphrase_file = "secrets/{client}.pass"
[ssh]
identity_file = %q
known_hosts = "secrets/ao.known_hosts"
`, srv.user, guestHost, srv.port, remote, identity)), 0o600))
	}
	for _, c := range []string{"ann", "bob"} {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "clients", c+".toml"), []byte("type = \"self\"\npaths = [\"/etc\"]\n"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(etc, "secrets", c+".pass"), []byte("one passphrase for both\n"), 0o600))
	}
	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(srv.password+"\n"), 0o600))
	setup := func() {
		t.Helper()
		code, _, _ := hostctl(t, ctx, "keygen", "ssh", "ao", "-c", cfgPath)
		require.Equal(t, 0, code, "keygen ssh")
		code, out, stderr := hostctl(t, ctx, "target", "setup", "ao", "-c", cfgPath, "--password-file", pwFile, "--host-key-fingerprint", srv.hostKeyFpr)
		require.Equal(t, 0, code, "target setup: %s\n%s", out, stderr)
	}
	repo := func(c string) string { return filepath.Join(remote, c) }
	authorized := func() string {
		b, err := os.ReadFile(filepath.Join(srv.home, ".ssh", "authorized_keys"))
		require.NoError(t, err)
		return string(b)
	}

	// A key per client.
	profile("secrets/{client}_ed25519")
	setup()
	for _, c := range []string{"ann", "bob"} {
		require.Contains(t, authorized(), fmt.Sprintf(`command="borg serve --append-only --restrict-to-repository %s",restrict `, repo(c)))
	}
	code, out, _ := hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 0, code, out)
	require.Contains(t, connectRow(t, out, "profile ao (client ann)", "isolation"), "OK client bob's repository "+repo("bob")+": borg serve refuses")
	require.Contains(t, connectRow(t, out, "profile ao (client bob)", "isolation"), "OK client ann's repository "+repo("ann")+": borg serve refuses")

	// One key for both: one line serving both repositories (set up once
	// per client, as the passphrases are per client, each time whole).
	profile("secrets/shared_ed25519")
	setup()
	require.Contains(t, authorized(), fmt.Sprintf(`command="borg serve --append-only --restrict-to-repository %s --restrict-to-repository %s",restrict `, repo("ann"), repo("bob")))
	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 1, code, out)
	row := connectRow(t, out, "profile ao (client ann)", "isolation")
	require.True(t, strings.HasPrefix(row, "FAIL "), row)
	require.Contains(t, row, "the clients share credentials")
}

// TestSFTPClientIsolation: two clients of a restic profile over sftp on
// one server (no appliance needed). With one account (a key per client)
// nothing keeps them apart and check --connect claims nothing. With an
// account per client whose directories are still the shared account's,
// the isolation row fails: ann's key lists bob's directory. With an
// account and a key per client
// (sftp://{client-account}@…, {client} in ssh.identity_file and in
// --password-file), target setup logs in to each account with its own
// password and makes each client's directory mode 0700, and check
// --connect shows that ann's key, as ann's account, is refused bob's
// directory, and the other way round.
func TestSFTPClientIsolation(t *testing.T) {
	t.Parallel()
	needTools(t, "ssh-keygen", "useradd", "chpasswd")
	ctx := context.Background()
	srv := startPasswordSSHD(t)
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	cfgPath := writeHostConfig(t, etc, filepath.Join(dir, "state"), filepath.Join(dir, "image"), "sftp", "")
	// The repositories' parent, writable by every account (as a shared
	// /srv/backup that the server's administrator made).
	remote, err := os.MkdirTemp("", "sbtest-home-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(remote) })
	require.NoError(t, os.Chmod(remote, 0o1777))
	profile := func(user, identity string) {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "sftp.toml"), []byte(fmt.Sprintf(`backend = "restic"
target = "sftp://%s@%s:%d%s/{client}"
[encryption]
passphrase_file = "secrets/{client}.pass"
[ssh]
identity_file = %q
known_hosts = "secrets/sftp.known_hosts"
`, user, guestHost, srv.port, remote, identity)), 0o600))
	}
	for _, c := range []string{"ann", "bob"} {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "clients", c+".toml"), []byte("type = \"self\"\npaths = [\"/etc\"]\n"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(etc, "secrets", c+".pass"), []byte(c+"'s passphrase\n"), 0o600))
	}
	setup := func(pwFile string) string {
		t.Helper()
		code, _, stderr := hostctl(t, ctx, "keygen", "ssh", "sftp", "-c", cfgPath)
		require.Equal(t, 0, code, "keygen ssh: %s", stderr)
		code, out, stderr := hostctl(t, ctx, "target", "setup", "sftp", "-c", cfgPath, "--no-init", "--password-file", pwFile, "--host-key-fingerprint", srv.hostKeyFpr)
		require.Equal(t, 0, code, "target setup: %s\n%s", out, stderr)
		return out
	}

	// A key per client, one account: nothing keeps the clients apart
	// (README: Clients on one sftp server), and check claims nothing.
	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(srv.password+"\n"), 0o600))
	profile(srv.user, "secrets/{client}_ed25519")
	setup(pwFile)
	code, out, _ := hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, "isolation")

	// What that leaves: ann's key lists bob's directory. With an account
	// per client made by hand on the server but both directories still
	// the shared account's (an earlier setup's, mode 0755), the isolation
	// row fails, naming the way out.
	for _, c := range []string{"ann", "bob"} {
		require.NoError(t, os.Chmod(filepath.Join(remote, c), 0o755))
	}
	ann := newAccount(t, srv.user+"ann")
	bob := newAccount(t, srv.user+"bob")
	for c, a := range map[string]sshAccount{"ann": ann, "bob": bob} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, c+".password"), []byte(a.password+"\n"), 0o600))
	}
	profile(srv.user+"{client}", "secrets/{client}_ed25519")
	code, out, stderr := hostctl(t, ctx, "target", "setup", "sftp", "-c", cfgPath, "--no-init", "--password-file", filepath.Join(dir, "{client}.password"))
	require.Equal(t, 1, code, "the directories are another account's: %s\n%s", out, stderr)
	require.Contains(t, stderr, "mode 0700 (only its account may read it)")
	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 1, code, out)
	row := connectRow(t, out, "profile sftp (client ann)", "isolation")
	require.True(t, strings.HasPrefix(row, "FAIL "), row)
	require.Contains(t, row, "ann_ed25519 as "+srv.user+"ann lists "+filepath.Join(remote, "bob")+": give each client its own account")

	// The shared account's directories removed, each account makes its
	// own.
	require.NoError(t, os.RemoveAll(filepath.Join(remote, "ann")))
	require.NoError(t, os.RemoveAll(filepath.Join(remote, "bob")))
	out = setup(filepath.Join(dir, "{client}.password"))
	for _, c := range []string{"ann", "bob"} {
		require.Contains(t, out, fmt.Sprintf("directory [%s]:%d:%s ready (mode 0700)", guestHost, srv.port, filepath.Join(remote, c)))
		fi, err := os.Stat(filepath.Join(remote, c))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	}
	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 0, code, out)
	require.Contains(t, connectRow(t, out, "profile sftp (client ann)", "isolation"),
		"OK client bob's repository "+filepath.Join(remote, "bob")+": "+filepath.Join(etc, "secrets", "ann_ed25519")+" as "+srv.user+"ann: permission denied")
	require.Contains(t, connectRow(t, out, "profile sftp (client bob)", "isolation"),
		"OK client ann's repository "+filepath.Join(remote, "ann")+": "+filepath.Join(etc, "secrets", "bob_ed25519")+" as "+srv.user+"bob: permission denied")
}
