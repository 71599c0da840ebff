package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SetupOptions say how to set up an ssh target.
type SetupOptions struct {
	Endpoint Endpoint
	Password string // the account's password, used once
	// Identity is the private key file the appliance will log in with;
	// its public half is appended to ~/.ssh/authorized_keys there.
	Identity string
	// KnownHosts is the profile's known_hosts file: the server's key is
	// pinned there (added when missing, checked when present).
	KnownHosts string
	// AcceptHostKey decides about a host key that is not pinned yet; it
	// gets the key's SHA256 fingerprint. nil refuses.
	AcceptHostKey func(fingerprint string) bool
	// Dirs are made (with parents) on the target.
	Dirs []string
	// PrivateDirs: each of Dirs is one client's, made mode 0700, so that
	// clients with accounts of their own cannot read each other's.
	PrivateDirs bool
	Log         io.Writer
	// Options, when set, are the authorized_keys options of Identity
	// (BorgServeOptions: a forced borg serve --append-only). Such a key
	// has no sftp, so Dirs are made in the password's session, and the
	// login that follows checks that it runs its forced command only.
	Options string
	// Also are further keys to install with their options (the
	// maintenance key), each checked the same way.
	Also []AuthorizedKey
}

// AuthorizedKey is a key to install in ~/.ssh/authorized_keys: the
// private key file (its public half goes there) and the line's options.
type AuthorizedKey struct {
	Identity, Options string
}

// Setup logs in with the password, installs the identity's public key,
// pins the host key, makes the directories, and then logs in again with
// the identity and the pinned key alone, as the appliance will. Running it
// again changes nothing that is already in place.
func Setup(ctx context.Context, o SetupOptions) error {
	auth, _, err := identityAuth(o.Identity)
	if err != nil {
		return err
	}
	var seen ssh.PublicKey
	hostKey, err := setupHostKey(o, &seen)
	if err != nil {
		return err
	}
	pw := []ssh.AuthMethod{
		ssh.Password(o.Password),
		ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			a := make([]string, len(qs))
			for i := range a {
				a[i] = o.Password
			}
			return a, nil
		}),
	}
	c, err := dial(ctx, o.Endpoint, pw, hostKey)
	if err != nil {
		return fmt.Errorf("log in to %s with the password: %w", o.Endpoint, err)
	}
	fc, err := sftp.NewClient(c)
	if err != nil {
		c.Close()
		return fmt.Errorf("sftp on %s: %w", o.Endpoint, err)
	}
	keys := append([]AuthorizedKey{{o.Identity, o.Options}}, o.Also...)
	err = authorizeAll(fc, keys, o.Log)
	if err == nil && o.Options != "" {
		err = makeDirs(fc, o, o.Log)
	}
	fc.Close()
	c.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", o.Endpoint, err)
	}
	if seen != nil {
		if err := appendKnownHost(o.KnownHosts, o.Endpoint.Name, seen); err != nil {
			return err
		}
		fmt.Fprintf(o.Log, "pinned the host key of %s (%s) in %s\n", o.Endpoint.Name, ssh.FingerprintSHA256(seen), o.KnownHosts)
	}

	// From here on exactly what the appliance has: the identity and the pin.
	pinned, err := pinnedHostKey(o.Endpoint, o.KnownHosts)
	if err != nil {
		return err
	}
	c, err = dial(ctx, o.Endpoint, []ssh.AuthMethod{auth}, pinned)
	if err != nil {
		return fmt.Errorf("log in to %s with %s: %w", o.Endpoint, o.Identity, err)
	}
	defer c.Close()
	fmt.Fprintf(o.Log, "logged in to %s with %s\n", o.Endpoint, o.Identity)
	if o.Options != "" {
		for _, k := range keys {
			r := checkRestricted(ctx, o.Endpoint, "restricted", k.Identity, pinned, o.Endpoint.String())
			if r.Err != nil {
				return r.Err
			}
			fmt.Fprintf(o.Log, "%s\n", r.Detail)
		}
		return nil
	}
	fc, err = sftp.NewClient(c)
	if err != nil {
		return fmt.Errorf("sftp on %s: %w", o.Endpoint, err)
	}
	defer fc.Close()
	return makeDirs(fc, o, o.Log)
}

func makeDirs(fc *sftp.Client, o SetupOptions, log io.Writer) error {
	e := o.Endpoint
	for _, d := range o.Dirs {
		if err := fc.MkdirAll(d); err != nil {
			return fmt.Errorf("make %s on %s: %w", d, e, err)
		}
		mode := ""
		if o.PrivateDirs {
			fi, err := fc.Stat(d)
			if err == nil && fi.Mode().Perm()&0o077 != 0 {
				err = fc.Chmod(d, 0o700)
			}
			if err != nil {
				return fmt.Errorf("make %s on %s mode 0700 (only its account may read it): %w", d, e, err)
			}
			mode = " (mode 0700)"
		}
		fmt.Fprintf(log, "directory %s:%s ready%s\n", e.Name, d, mode)
	}
	return nil
}

// setupHostKey checks the server's key against known_hosts when it pins
// one for the endpoint, and otherwise asks AcceptHostKey, recording the
// accepted key in *seen (written to known_hosts once login worked).
func setupHostKey(o SetupOptions, seen *ssh.PublicKey) (ssh.HostKeyCallback, error) {
	if data, err := os.ReadFile(o.KnownHosts); err == nil && knownHostsHas(data, o.Endpoint.Name) {
		return pinnedHostKey(o.Endpoint, o.KnownHosts)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		fpr := ssh.FingerprintSHA256(key)
		fmt.Fprintf(o.Log, "host key of %s: %s %s\n", o.Endpoint.Name, key.Type(), fpr)
		if o.AcceptHostKey == nil || !o.AcceptHostKey(fpr) {
			return &hostKeyError{fmt.Sprintf("host key %s of %s not accepted", fpr, o.Endpoint.Name)}
		}
		*seen = key
		return nil
	}, nil
}

// knownHostsHas says whether a known_hosts file has a line for name.
func knownHostsHas(data []byte, name string) bool {
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if strings.HasPrefix(f[0], "@") {
			f = f[1:]
		}
		for _, h := range strings.Split(f[0], ",") {
			if h == name {
				return true
			}
		}
	}
	return false
}

// appendKnownHost adds "name key" to the file (created 0600).
func appendKnownHost(file, name string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, knownhosts.Line([]string{name}, key)); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	return f.Close()
}

// authorizeAll installs each key in ~/.ssh/authorized_keys on the server
// with its options, with .ssh 0700 and the file 0600 (sshd's
// StrictModes). A key that is there with exactly these options stays; a
// key that is there with others (an unrestricted line from before the
// profile was append-only) is replaced, so that no line grants it more.
func authorizeAll(fc *sftp.Client, keys []AuthorizedKey, log io.Writer) error {
	if err := fc.MkdirAll(".ssh"); err != nil {
		return fmt.Errorf("make ~/.ssh: %w", err)
	}
	if err := fc.Chmod(".ssh", 0o700); err != nil {
		return fmt.Errorf("chmod ~/.ssh: %w", err)
	}
	const ak = ".ssh/authorized_keys"
	var old []byte
	if f, err := fc.Open(ak); err == nil {
		old, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read ~/%s: %w", ak, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open ~/%s: %w", ak, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(old), "\n"), "\n")
	if len(old) == 0 {
		lines = nil
	}
	var added []string
	rewrite := false
	for _, k := range keys {
		pub, err := publicKey(k.Identity)
		if err != nil {
			return err
		}
		var kept []string
		have, dropped := false, 0
		for _, l := range lines {
			key, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(l))
			if err != nil || !bytes.Equal(key.Marshal(), pub.Marshal()) {
				kept = append(kept, l)
				continue
			}
			// A key wanted without options keeps whatever the server's
			// administrator limited it to.
			if !have && (k.Options == "" || strings.Join(opts, ",") == k.Options) {
				have = true
				kept = append(kept, l)
				continue
			}
			if k.Options == "" {
				kept = append(kept, l)
				continue
			}
			dropped++
		}
		if !have {
			line := string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(pub))) + " hostctl"
			if k.Options != "" {
				line = k.Options + " " + line
			}
			kept = append(kept, line)
		}
		switch {
		case have && dropped == 0:
			fmt.Fprintf(log, "the key of %s is in ~/%s already\n", k.Identity, ak)
		case dropped > 0:
			fmt.Fprintf(log, "replaced the key of %s in ~/%s (%d line(s) with other options)\n", k.Identity, ak, dropped)
		default:
			fmt.Fprintf(log, "added the key of %s to ~/%s\n", k.Identity, ak)
		}
		if k.Options != "" && (!have || dropped > 0) {
			fmt.Fprintf(log, "  limited to: %s\n", k.Options)
		}
		if !have {
			added = append(added, kept[len(kept)-1])
		}
		rewrite = rewrite || dropped > 0
		lines = kept
	}
	switch {
	case rewrite:
		return writeRemote(fc, ak, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	case len(added) > 0:
		return appendRemote(fc, ak, old, added)
	}
	return nil
}

// appendRemote appends lines to the file name on the server (made 0600).
func appendRemote(fc *sftp.Client, name string, old []byte, lines []string) error {
	f, err := fc.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
	if err != nil {
		return fmt.Errorf("open ~/%s: %w", name, err)
	}
	data := strings.Join(lines, "\n") + "\n"
	if len(old) > 0 && old[len(old)-1] != '\n' {
		data = "\n" + data
	}
	if _, err := f.Write([]byte(data)); err != nil {
		f.Close()
		return fmt.Errorf("write ~/%s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write ~/%s: %w", name, err)
	}
	if err := fc.Chmod(name, 0o600); err != nil {
		return fmt.Errorf("chmod ~/%s: %w", name, err)
	}
	return nil
}

// publicKey is the public half of a private key file.
func publicKey(identity string) (ssh.PublicKey, error) {
	_, s, err := identityAuth(identity)
	if err != nil {
		return nil, err
	}
	return s.PublicKey(), nil
}

// writeRemote replaces the file name on the server with data: written
// beside it, then renamed over it, so that sshd never reads half of it.
func writeRemote(fc *sftp.Client, name string, data []byte, mode os.FileMode) error {
	tmp := name + ".hostctl-new"
	f, err := fc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("write ~/%s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write ~/%s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write ~/%s: %w", tmp, err)
	}
	if err := fc.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("chmod ~/%s: %w", tmp, err)
	}
	if err := fc.PosixRename(tmp, name); err != nil {
		fc.Remove(tmp)
		return fmt.Errorf("rename ~/%s to ~/%s: %w", tmp, name, err)
	}
	return nil
}
