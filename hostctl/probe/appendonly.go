package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// BorgServeOptions are the authorized_keys options that limit a key to
// borg serve on the given repositories, append-only or not: no shell, no
// sftp, no forwarding (restrict). The repositories' paths are checked by
// config (absolute, no spaces or quotes).
func BorgServeOptions(repos []string, appendOnly bool) string {
	cmd := []string{"borg", "serve"}
	if appendOnly {
		cmd = append(cmd, "--append-only")
	}
	for _, r := range repos {
		cmd = append(cmd, "--restrict-to-repository", r)
	}
	return fmt.Sprintf("command=%q,restrict", strings.Join(cmd, " "))
}

// forcedCommand logs in with c's key and asks for a shell command that
// prints a random word (seen once: borg serve printing the command it was
// asked for in its error report, so the word is not in the command). A key limited by a forced command (borg serve)
// does not print it; a key that opens a shell does. It says what the
// server ran instead, for the record.
func forcedCommand(c *ssh.Client) (forced bool, detail string, err error) {
	s, err := c.NewSession()
	if err != nil {
		return false, "", fmt.Errorf("open a session: %w", err)
	}
	defer s.Close()
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	n := hex.EncodeToString(nonce)
	// A shell prints the word; the command's text is not the word, so a
	// borg serve that quotes SSH_ORIGINAL_COMMAND in an error does not.
	word := "hostctl-" + n + "-check"
	var out bytes.Buffer
	s.Stdout, s.Stderr = &out, &out
	_ = s.Run("printf 'hostctl-%s-check\\n' " + n) // borg serve ends on EOF, whatever its status
	got := out.String()
	switch {
	case strings.Contains(got, word):
		return false, "", nil
	case strings.Contains(got, "borg: not found") || strings.Contains(got, "command not found"):
		return true, "", fmt.Errorf("the forced command did not run: %s", firstLine(got))
	}
	return true, "the key runs only its forced command (no shell, no sftp)", nil
}

// checkRestricted is the "append-only" (or "prune key") row of a key
// that target setup limited to borg serve.
func checkRestricted(ctx context.Context, e Endpoint, check, identity string, hk ssh.HostKeyCallback, item string) Result {
	auth, _, err := identityAuth(identity)
	if err != nil {
		return Result{Check: check, Item: identity, Err: err}
	}
	c, err := dial(ctx, e, []ssh.AuthMethod{auth}, hk)
	if err != nil {
		return Result{Check: check, Item: item, Err: fmt.Errorf("log in with %s: %w", identity, err)}
	}
	defer c.Close()
	forced, detail, err := forcedCommand(c)
	switch {
	case err != nil:
		return Result{Check: check, Item: item, Err: fmt.Errorf("%s: %w", identity, err)}
	case !forced:
		return Result{Check: check, Item: item, Err: fmt.Errorf("%s opens a shell on the server: its authorized_keys line has no forced borg serve (run hostctl target setup)", identity)}
	}
	return Result{Check: check, Item: item, Detail: identity + ": " + detail}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// CrossRead is the "isolation" row of an append-only borg profile with a
// key per client: client a's credential (its profile: key and passphrase)
// tries to list the repository of another client at dir, with this host's
// borg. OK is either barrier (borg serve refuses a's key there, or the
// repository does not open with a's passphrase); a listing is a failure.
//
// For a rest:// target it is crossReadREST, for a key with sftp (no
// forced command) crossReadSFTP.
func CrossRead(ctx context.Context, a *config.Profile, t target.Target, gateway, item, dir string) Result {
	switch {
	case t.Scheme == target.REST:
		return crossReadREST(ctx, a, t, gateway, item, dir)
	case !a.AppendOnly:
		return crossReadSFTP(ctx, a, t, gateway, item, dir)
	}
	r := Result{Check: "isolation", Item: item}
	_, err := hostBorgList(ctx, a, EndpointFor(t, gateway), dir)
	switch {
	case errors.Is(err, errNoBorg):
		r.Detail = "not checked: borg is not installed on this host"
	case err == nil:
		r.Err = fmt.Errorf("%s and its passphrase list %s: the clients share credentials", a.SSH.IdentityFile, dir)
	case strings.Contains(err.Error(), "not allowed"):
		r.Detail = "borg serve refuses " + a.SSH.IdentityFile + " there"
	case strings.Contains(err.Error(), "passphrase") && strings.Contains(err.Error(), "incorrect"):
		r.Detail = "it does not open with this client's passphrase (its key reaches it: give ssh.identity_file a {client})"
	default:
		r.Err = err
	}
	return r
}

// crossReadSFTP is the "isolation" row of an sftp:// or ssh:// profile
// whose keys have sftp: client a's key logs in as a's account and lists
// the directory of another client at dir. Refused (permission denied, or
// no such directory for a's account) is OK; a listing is a failure: a's
// appliance could read, and delete, that client's backups.
func crossReadSFTP(ctx context.Context, a *config.Profile, t target.Target, gateway, item, dir string) Result {
	r := Result{Check: "isolation", Item: item}
	e := EndpointFor(t, gateway)
	auth, _, err := identityAuth(a.SSH.IdentityFile)
	if err != nil {
		r.Err = err
		return r
	}
	hk, err := pinnedHostKey(e, a.SSH.KnownHosts)
	if err != nil {
		r.Err = err
		return r
	}
	c, err := dial(ctx, e, []ssh.AuthMethod{auth}, hk)
	if err != nil {
		r.Err = err
		return r
	}
	defer c.Close()
	fc, err := sftp.NewClient(c)
	if err != nil {
		r.Err = fmt.Errorf("no sftp: %w", err)
		return r
	}
	defer fc.Close()
	_, err = fc.ReadDir(dir)
	switch {
	case err == nil:
		r.Err = fmt.Errorf("%s as %s lists %s: give each client its own account (sftp://{client}@…) and key, its directory mode 0700 (target setup makes it so)", a.SSH.IdentityFile, e.User, dir)
	case errors.Is(err, os.ErrPermission):
		r.Detail = fmt.Sprintf("%s as %s: permission denied", a.SSH.IdentityFile, e.User)
	case errors.Is(err, os.ErrNotExist):
		r.Detail = fmt.Sprintf("%s as %s: not there for this account (a chroot, or not made yet: this row cannot tell)", a.SSH.IdentityFile, e.User)
	default:
		r.Err = err
	}
	return r
}
