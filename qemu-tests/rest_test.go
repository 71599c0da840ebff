package qemutests

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/retention"
	"math/big"
	"net"
	"net/http"
	"net/url"
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
	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// restServers are two rest-server processes on 127.0.0.1 over one data
// directory, with one certificate (for 10.0.2.2, the host as the appliance
// reaches it, and 127.0.0.1): the backup server, --append-only
// --private-repos, and the maintenance server, --private-repos only. Each
// has its own htpasswd file.
type restServers struct {
	data                   string
	backupPort, prunePort  int
	caPEM                  []byte
	backupHT, pruneHT      string
	bin, certFile, keyFile string
}

// buildRESTServer builds restic's REST server at the version (and hashes)
// tools/go.mod pins, once into the tests' bin directory.
func buildRESTServer(t *testing.T, e *env) string {
	t.Helper()
	bin := filepath.Join(e.bin, "rest-server")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if _, err := exec.LookPath("go"); err != nil {
		testutil.SkipOrFail(t, "go is needed to build the REST test server: run qemu-tests/setup-host.sh")
	}
	_, err := execx.Run(context.Background(), execx.Cmd{
		Argv: []string{"go", "build", "-C", "tools", "-o", bin, "github.com/restic/rest-server/cmd/rest-server"},
		Env:  []string{"GOFLAGS=-mod=readonly"},
	})
	require.NoError(t, err, "build the REST test server")
	return bin
}

// newRESTServers makes the data directory, the certificate and the two
// ports; start starts the servers once their htpasswd files are written.
func newRESTServers(t *testing.T, e *env) *restServers {
	t.Helper()
	dir := t.TempDir()
	s := &restServers{data: filepath.Join(dir, "data"), backupPort: freePort(t), prunePort: freePort(t),
		backupHT: filepath.Join(dir, "backup.htpasswd"), pruneHT: filepath.Join(dir, "prune.htpasswd"),
		bin: buildRESTServer(t, e), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	require.NoError(t, os.MkdirAll(s.data, 0o700))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rest test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(guestHost), net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.certFile, s.caPEM, 0o644))
	require.NoError(t, os.WriteFile(s.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return s
}

// start starts the servers as target setup says: the backup server with
// backupFlags (nil: --append-only --private-repos), the maintenance server
// with --private-repos.
func (s *restServers) start(t *testing.T, backupFlags ...string) {
	t.Helper()
	if backupFlags == nil {
		backupFlags = []string{"--append-only", "--private-repos"}
	}
	for _, sv := range []struct {
		name  string
		port  int
		ht    string
		flags []string
	}{{"rest-server (backup)", s.backupPort, s.backupHT, backupFlags}, {"rest-server (maintenance)", s.prunePort, s.pruneHT, []string{"--private-repos"}}} {
		argv := append([]string{s.bin, "--path", s.data, "--listen", fmt.Sprintf("127.0.0.1:%d", sv.port),
			"--tls", "--tls-cert", s.certFile, "--tls-key", s.keyFile, "--htpasswd-file", sv.ht}, sv.flags...)
		serve(t, sv.name, argv...)
		waitListen(t, sv.port)
	}
}

// restic runs this host's restic on a client's repository through the
// server on port, with the client's password and the repository's
// passphrase.
func (s *restServers) restic(t *testing.T, port int, user, password, passFile string, args ...string) (string, error) {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, s.caPEM, 0o600))
	u := url.URL{Scheme: "https", User: url.UserPassword(user, password), Host: fmt.Sprintf("127.0.0.1:%d", port), Path: "/" + user}
	cmd := exec.Command("restic", append([]string{"--repo", "rest:" + u.String(), "--cacert", ca, "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD_FILE="+passFile, "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// snapshotIDs lists a repository's backups (not their VM records) with
// this host's restic.
func (s *restServers) snapshotIDs(t *testing.T, port int, user, password, passFile string) []string {
	t.Helper()
	out, err := s.restic(t, port, user, password, passFile, "snapshots", "--json", "--tag", retention.ResticTag)
	require.NoError(t, err, out)
	var l []struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &l), out)
	ids := []string{}
	for _, x := range l {
		ids = append(ids, x.ID)
	}
	return ids
}

// restAttack is what a taken-over appliance with a rest:// profile's
// credential (its job disk: the user's password, the pinned certificate,
// the passphrase) tries: list, forget every snapshot, prune (which finds
// nothing to remove while every snapshot stays), replace the repository's
// key, and read another client's repository with its own user. restic
// retries a refused deletion for about 40 s: the deletions are cut off
// after 15 s, once the server's 403 is in the log. Each prints "ATTACK <what> rc=N".
const restAttack = `#!/bin/sh
set -u
ifc=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
ip link set "$ifc" up && ip addr add 10.0.2.15/24 dev "$ifc" && ip route add default via 10.0.2.2
export HOME=/tmp RESTIC_PASSWORD_FILE=/job/secret-passphrase RESTIC_CACHE_DIR=/tmp/restic-cache
PW=$(cat /job/secret-rest-password)
R="rest:https://USER:$PW@10.0.2.2:PORT/USER/"
r() { restic --repo "$R" --cacert /job/secret-rest-ca "$@"; }
r snapshots; echo "ATTACK list rc=$?"
ids=$(r snapshots --json | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
timeout -s INT 15 restic --repo "$R" --cacert /job/secret-rest-ca forget $ids; echo "ATTACK forget-all rc=$?"
r prune; echo "ATTACK prune rc=$?"
echo evil > /tmp/evil
timeout -s INT 15 restic --repo "$R" --cacert /job/secret-rest-ca key passwd --new-password-file /tmp/evil; echo "ATTACK key-passwd rc=$?"
restic --repo "rest:https://USER:$PW@10.0.2.2:PORT/OTHER/" --cacert /job/secret-rest-ca snapshots; echo "ATTACK other-client rc=$?"
echo "ATTACK left: $(r snapshots --json | grep -o '"id":"[0-9a-f]*"' | wc -l)"
`

// restProfile is a configuration with two self clients, ra and rb, of an
// append-only restic profile "rest" on srv, their passwords made by keygen
// rest and the servers' htpasswd files written from target setup's
// output. It returns the configuration's path and a reader of its secret
// files.
func restProfile(t *testing.T, ctx context.Context, e *env, srv *restServers) (string, map[string]string, func(string) string) {
	t.Helper()
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	cfgPath := writeHostConfig(t, etc, filepath.Join(dir, "state"), e.imageDir, "rest", e.accel)
	require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "rest.toml"), []byte(fmt.Sprintf(`backend = "restic"
target = "rest://{client}@%s:%d/{client}"
append_only = true

[encryption]
passphrase_file = "secrets/{client}.pass"

[retention]
keep_last = 1

[rest]
password_file = "secrets/{client}.rest"
ca_file = "secrets/rest-ca.pem"

[maintenance]
password_file = "secrets/{client}.rest-prune"
port = %d
`, guestHost, srv.backupPort, srv.prunePort)), 0o600))
	trees := map[string]string{}
	for _, c := range []string{"ra", "rb"} {
		trees[c] = filepath.Join(dir, "host", c)
		require.NoError(t, os.MkdirAll(trees[c], 0o755))
		require.NoError(t, fixtureFiles(trees[c], 10))
		require.NoError(t, os.WriteFile(filepath.Join(etc, "clients", c+".toml"), []byte(fmt.Sprintf("type = \"self\"\npaths = [%q]\n", trees[c])), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(etc, "secrets", c+".pass"), []byte(c+"'s passphrase\n"), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(etc, "secrets", "rest-ca.pem"), srv.caPEM, 0o600))

	code, out, stderr := hostctl(t, ctx, "keygen", "rest", "rest", "-c", cfgPath)
	require.Equal(t, 0, code, stderr)
	secret := func(name string) string {
		b, err := os.ReadFile(filepath.Join(etc, "secrets", name))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	for _, f := range []string{"ra.rest", "rb.rest", "ra.rest-prune", "rb.rest-prune"} {
		require.Contains(t, out, "wrote  "+filepath.Join(etc, "secrets", f)+" (new random password)")
	}
	require.NotEqual(t, secret("ra.rest"), secret("rb.rest"), "a password per client")

	// target setup prints the server's side; the server's administrator
	// installs it as printed.
	code, out, stderr = hostctl(t, ctx, "target", "setup", "rest", "-c", cfgPath)
	require.Equal(t, 0, code, "target setup: %s\n%s", out, stderr)
	t.Logf("target setup:\n%s", out)
	backupPart, prunePart, ok := strings.Cut(out, "2. The maintenance server")
	require.True(t, ok, out)
	require.Contains(t, backupPart, fmt.Sprintf("--listen :%d --tls --tls-cert CERT --tls-key KEY --append-only --private-repos --htpasswd-file", srv.backupPort))
	require.Contains(t, prunePart, fmt.Sprintf("--listen :%d --tls --tls-cert CERT --tls-key KEY --private-repos --htpasswd-file", srv.prunePort))
	htpasswd := func(part string) []byte {
		lines := regexp.MustCompile(`(?m)^\s+(r[ab]:\$2a\$\S+)$`).FindAllStringSubmatch(part, -1)
		require.Len(t, lines, 2, part)
		return []byte(lines[0][1] + "\n" + lines[1][1] + "\n")
	}
	require.NoError(t, os.WriteFile(srv.backupHT, htpasswd(backupPart), 0o600))
	require.NoError(t, os.WriteFile(srv.pruneHT, htpasswd(prunePart), 0o600))
	return cfgPath, trees, secret
}

// TestAppendOnlyRESTTarget: two clients of a restic profile on restic's
// REST server, each with its own user and password (keygen rest), the
// backup server run with --append-only --private-repos as target setup
// prints it, and a maintenance server on the same data without
// --append-only. check --connect shows each client authenticated, the
// server refusing deletions, the maintenance password deleting, and that
// ra's user cannot reach rb's repository. Backup jobs never forget (two
// snapshots with keep_last = 1). Then ra's appliance is taken over and,
// with its credential, forgets every snapshot, prunes, replaces the key
// and reads rb's repository: all refused, every file of the repository
// still there unchanged (locks aside) and readable with the passphrase; PUT over a file and DELETE of a snapshot
// with that credential are refused too. hostctl prune then applies
// keep_last = 1 through the maintenance server, restic check passes, and
// hostctl verify reads the backup that is left.
func TestAppendOnlyRESTTarget(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	needTools(t, "restic")
	ctx := context.Background()
	srv := newRESTServers(t, e)
	cfgPath, trees, secret := restProfile(t, ctx, e, srv)
	etc := filepath.Dir(cfgPath)
	srv.start(t)

	code, out, stderr := hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 0, code, out)
	row := func(c, check string) string { return connectRow(t, out, "profile rest (client "+c+")", check) }
	require.Contains(t, row("ra", "authenticated"), "as ra with "+filepath.Join(etc, "secrets", "ra.rest"))
	require.Contains(t, row("ra", "repository"), "none yet")
	require.Contains(t, row("ra", "append-only"), "the server refuses deletions (HTTP 403")
	require.Contains(t, row("ra", "prune key"), "deletes (a snapshot no repository has)")
	require.Contains(t, row("ra", "isolation"), "OK client rb's repository /rb: the server refuses user ra there (HTTP 401")
	require.Contains(t, row("rb", "isolation"), "OK client ra's repository /ra: the server refuses user rb there (HTTP 401")
	code, out, _ = hostctl(t, ctx, "check", "-c", cfgPath)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "(append-only: the REST server must run with --append-only; hostctl prune deletes with "+filepath.Join(etc, "secrets", "ra.rest-prune")+fmt.Sprintf(" on port %d)", srv.prunePort))

	// Backup jobs add and never forget: keep_last = 1, two snapshots.
	passFile := filepath.Join(etc, "secrets", "ra.pass")
	for i := range 2 {
		require.NoError(t, os.WriteFile(filepath.Join(trees["ra"], "night"), []byte(strconv.Itoa(i)), 0o644))
		code, out, stderr = hostctl(t, ctx, "run", "-c", cfgPath, "ra")
		require.Equal(t, 0, code, "backup %d: %s\n%s\n%s", i+1, out, stderr, jobLogIn(out))
	}
	snaps := srv.snapshotIDs(t, srv.backupPort, "ra", secret("ra.rest"), passFile)
	require.Len(t, snaps, 2, "an append-only profile's backups do not forget")
	out, err := srv.restic(t, srv.backupPort, "ra", secret("ra.rest"), passFile, "cat", "config")
	require.NoError(t, err, out)
	configBefore := out
	before := repoFiles(t, filepath.Join(srv.data, "ra"))

	// The appliance is taken over.
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	script := strings.NewReplacer("USER", "ra", "OTHER", "rb", "PORT", strconv.Itoa(srv.backupPort)).Replace(restAttack)
	log, attack := takeOverBackup(t, ctx, e, cfg, "ra", script, map[string][]byte{
		job.SecretFile(target.RESTPassword): []byte(secret("ra.rest") + "\n"), job.SecretFile(target.RESTCA): srv.caPEM,
		job.SecretPrefix + "passphrase": []byte(secret("ra.pass") + "\n")})
	require.Equal(t, "0", attack["list"], "the credential reads: %v", attack)
	for _, a := range []string{"forget-all", "key-passwd", "other-client"} {
		require.Contains(t, attack, a, "the attacker tried %s", a)
		require.NotEqual(t, "0", attack[a], "%s is refused: %v", a, attack)
	}
	require.Contains(t, log, "Remove(<snapshot/", "forget tried to delete")
	require.Contains(t, log, "Remove(<key/", "key passwd tried to delete the old key")
	require.Contains(t, log, "blob not removed, server response: 403 Forbidden")
	require.Contains(t, log, "to delete:             0 blobs", "prune finds nothing to delete: every snapshot stays")
	require.Regexp(t, `(?m)^ATTACK left: 2$`, log, "every snapshot is still there, to the attacker's eyes too")
	after := repoFiles(t, filepath.Join(srv.data, "ra"))
	for f, sum := range before {
		if !strings.HasPrefix(f, "locks/") {
			require.Equal(t, sum, after[f], "repository file %s after the attack", f)
		}
	}
	require.Equal(t, snaps, srv.snapshotIDs(t, srv.backupPort, "ra", secret("ra.rest"), passFile), "every snapshot is still there")
	out, err = srv.restic(t, srv.backupPort, "ra", secret("ra.rest"), passFile, "cat", "config")
	require.NoError(t, err, "the passphrase still opens the repository: %s", out)
	require.Equal(t, configBefore, out)

	// The same credential over plain HTTP: no overwrite, no delete.
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(srv.caPEM))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	send := func(method, p string, body []byte) int {
		req, err := http.NewRequest(method, fmt.Sprintf("https://127.0.0.1:%d%s", srv.backupPort, p), bytes.NewReader(body))
		require.NoError(t, err)
		req.SetBasicAuth("ra", secret("ra.rest"))
		resp, err := hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusForbidden, send(http.MethodPost, "/ra/config", []byte("overwritten")), "the config is not overwritten")
	require.Equal(t, http.StatusForbidden, send(http.MethodDelete, "/ra/snapshots/"+snaps[0], nil), "a snapshot is not deleted")
	require.Equal(t, http.StatusUnauthorized, send(http.MethodGet, "/rb/config", nil), "rb's repository is not ra's")
	require.Equal(t, snaps, srv.snapshotIDs(t, srv.backupPort, "ra", secret("ra.rest"), passFile))

	// The maintenance password applies keep_last = 1.
	code, out, stderr = hostctl(t, ctx, "prune", "-c", cfgPath, "ra")
	require.Equal(t, 0, code, "prune: %s\n%s\n%s", out, stderr, jobLogIn(out))
	require.Regexp(t, `(?m)^ra \(prune\)\s+ok\s.*removed 1, kept 1$`, out)
	require.Contains(t, stderr, "ra: pruned "+snaps[0]+"; 1 backup(s) kept")
	require.Equal(t, snaps[1:], srv.snapshotIDs(t, srv.backupPort, "ra", secret("ra.rest"), passFile), "the newest stays")
	out, err = srv.restic(t, srv.prunePort, "ra", secret("ra.rest-prune"), passFile, "check")
	require.NoError(t, err, "restic check after the prune: %s", out)
	require.Contains(t, out, "no errors were found")
	rec, err := os.ReadFile(filepath.Join(cfg.Host.StateDir, "archives", "ra"))
	require.NoError(t, err)
	require.Equal(t, snaps[1]+"\n", string(rec), "the record holds what the prune kept")

	// What is left restores: verify reads the newest backup back through
	// the append-only server with the backup password.
	code, out, stderr = hostctl(t, ctx, "verify", "-c", cfgPath, "ra")
	require.Equal(t, 0, code, "verify: %s\n%s\n%s", out, stderr, jobLogIn(out))
	require.Regexp(t, `(?m)^ra \(verify\)\s+ok\s`, out)
	require.Empty(t, appliances(t, cfg.Host.StateDir, false), "appliance left")
}

// TestRESTCheckFindsAnOpenServer: the backup server of an append-only
// rest:// profile runs without --append-only and without --private-repos
// (no appliance needed). check --connect fails: the server deletes with
// the backup password, and ra's user reaches rb's repository. A
// certificate other than the pinned one fails the connection.
func TestRESTCheckFindsAnOpenServer(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	srv := newRESTServers(t, e)
	cfgPath, _, _ := restProfile(t, ctx, e, srv)
	srv.start(t, []string{}...) // neither --append-only nor --private-repos
	code, out, _ := hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 1, code, out)
	row := func(c, check string) string { return connectRow(t, out, "profile rest (client "+c+")", check) }
	require.Contains(t, row("ra", "authenticated"), "OK ")
	require.Contains(t, row("ra", "append-only"), "FAIL ")
	require.Contains(t, row("ra", "append-only"), "it does not run with --append-only")
	require.Contains(t, row("ra", "prune key"), "OK ")
	require.Contains(t, row("ra", "isolation"), "FAIL ")
	require.Contains(t, row("ra", "isolation"), "user ra reaches /rb (HTTP 404): run rest-server with --private-repos")

	other := newRESTServers(t, e) // another certificate
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(cfgPath), "secrets", "rest-ca.pem"), other.caPEM, 0o600))
	code, out, _ = hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 1, code, out)
	require.Contains(t, row("ra", "reachable"), "certificate signed by unknown authority")
}

// TestS3AppendOnlyCheck: an append-only restic profile on an S3 bucket
// without the README's policy (the test server has no policies), no
// appliance needed. check --connect signs a DELETE of an object no
// repository has among the repository's data with the backup key: the
// bucket takes it, so the append-only row fails, naming the policy; the
// locks row, which restic needs, is OK. check says the bucket's owner
// prunes.
func TestS3AppendOnlyCheck(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	s3 := startS3(t, e)
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	cfgPath := writeHostConfig(t, etc, filepath.Join(dir, "state"), e.imageDir, "s3", e.accel)
	require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "s3.toml"), []byte(fmt.Sprintf(`backend = "restic"
target = "s3://%s/hv1/{client}"
append_only = true
[encryption]
passphrase_file = "secrets/web.pass"
[retention]
keep_daily = 7
[s3]
endpoint = "http://%s:%d"
path_style = true
access_key_file = "secrets/s3.access"
secret_key_file = "secrets/s3.secret"
`, s3Bucket, guestHost, s3.port)), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "clients", "web.toml"), []byte("type = \"self\"\npaths = [\"/etc\"]\n"), 0o600))
	for name, v := range map[string]string{"web.pass": "p", "s3.access": "sb-test-access", "s3.secret": "sb-test-secret"} {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "secrets", name), []byte(v+"\n"), 0o600))
	}
	code, out, _ := hostctl(t, ctx, "check", "--connect", "-c", cfgPath)
	require.Equal(t, 1, code, out)
	row := connectRow(t, out, "profile s3", "append-only")
	require.True(t, strings.HasPrefix(row, "FAIL s3://"+s3Bucket+"/hv1/web/data/00/"+strings.Repeat("0", 64)), row)
	require.Contains(t, row, "the backup key may delete the repository's data")
	require.Contains(t, row, `README "S3 bucket policy"`)
	require.Contains(t, connectRow(t, out, "profile s3", "locks"), "OK s3://"+s3Bucket+"/hv1/web/locks/")
	code, out, _ = hostctl(t, ctx, "check", "-c", cfgPath)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "nothing here deletes: prune on the server")
}
