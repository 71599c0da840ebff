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
	// Dirs are made (with parents) on the target, mode 0700.
	Dirs []string
	Log  io.Writer
}

// Setup logs in with the password, installs the identity's public key,
// pins the host key, makes the directories, and then logs in again with
// the identity and the pinned key alone, as the appliance will. Running it
// again changes nothing that is already in place.
func Setup(ctx context.Context, o SetupOptions) error {
	auth, signer, err := identityAuth(o.Identity)
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
	err = authorize(fc, signer.PublicKey(), o.Log)
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
	fc, err = sftp.NewClient(c)
	if err != nil {
		return fmt.Errorf("sftp on %s: %w", o.Endpoint, err)
	}
	defer fc.Close()
	for _, d := range o.Dirs {
		if err := fc.MkdirAll(d); err != nil {
			return fmt.Errorf("make %s on %s: %w", d, o.Endpoint, err)
		}
		fmt.Fprintf(o.Log, "directory %s:%s ready\n", o.Endpoint.Name, d)
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

// authorize appends key to ~/.ssh/authorized_keys on the server unless it
// is there, with .ssh 0700 and the file 0600 (sshd's StrictModes).
func authorize(fc *sftp.Client, key ssh.PublicKey, log io.Writer) error {
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
	want := bytes.TrimSpace(ssh.MarshalAuthorizedKey(key))
	for _, l := range bytes.Split(old, []byte("\n")) {
		if k, _, _, _, err := ssh.ParseAuthorizedKey(l); err == nil && bytes.Equal(k.Marshal(), key.Marshal()) {
			fmt.Fprintf(log, "the key is in ~/%s already\n", ak)
			return nil
		}
	}
	f, err := fc.OpenFile(ak, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
	if err != nil {
		return fmt.Errorf("open ~/%s: %w", ak, err)
	}
	line := string(want) + " hostctl\n"
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.Write([]byte(line)); err != nil {
		f.Close()
		return fmt.Errorf("write ~/%s: %w", ak, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write ~/%s: %w", ak, err)
	}
	if err := fc.Chmod(ak, 0o600); err != nil {
		return fmt.Errorf("chmod ~/%s: %w", ak, err)
	}
	fmt.Fprintf(log, "added the key to ~/%s\n", ak)
	return nil
}
