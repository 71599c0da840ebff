package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/keygen"
)

func newKeygenCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keygen passphrase|gpg|ssh|rest PROFILE",
		Short: "Create the keys a profile refers to: per-client passphrases, GnuPG encryption + signing keys, the ssh target identity, REST server passwords",
		Long: `keygen creates the key files a profile names, never overwriting one:

  hostctl keygen passphrase PROFILE   (encryption.passphrase_file, per client with {client})
  hostctl keygen gpg PROFILE          (duplicity, encryption.mode = "gpg")
  hostctl keygen ssh PROFILE          (sftp:// and ssh:// targets)
  hostctl keygen rest PROFILE         (rest:// targets: the REST server passwords)

See "hostctl keygen passphrase --help", "hostctl keygen gpg --help",
"hostctl keygen ssh --help" and "hostctl keygen rest --help".

` + exitCodeHelp,
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return flagError{fmt.Errorf("keygen needs a kind: passphrase, gpg, ssh or rest")}
			}
			return flagError{fmt.Errorf("keygen %q: unknown kind: want passphrase, gpg, ssh or rest", args[0])}
		},
	}
	cmd.AddCommand(newKeygenPassphraseCmd(g), newKeygenGPGCmd(g), newKeygenSSHCmd(g), newKeygenRESTCmd(g))
	return cmd
}

type keygenGPGOptions struct {
	keygen.GPGOptions
}

func newKeygenGPGCmd(g *Globals) *cobra.Command {
	var o keygenGPGOptions
	cmd := &cobra.Command{
		Use:   "gpg PROFILE",
		Short: "Create (or take) the GnuPG encryption and signing keys of a duplicity profile",
		Long: `keygen gpg makes two keys with gpg in a throwaway GNUPGHOME (removed
afterwards), or takes existing ones (--encrypt-key/--sign-key, from --import
files or --gnupghome), and exports them to the files of the profile's
encryption.key_files, mode 0600:
  key_files[0]   the recipient's PUBLIC key (encrypts the backups)
  key_files[1]   the signing key's SECRET part (signs every volume;
                 the appliance needs it; with one key file, both go there)
and the recipient's SECRET key to --recipient-secret-out (default
secrets/PROFILE-recipient-SECRET.asc next to the key files). That key is the
only way to read the backups: print it or copy it to a password manager, keep
it off this host (a stolen hypervisor should not be able to read its own
backups) and delete the file here. Restores need it (gpg --import it on the
machine that restores, or add it to key_files for hostctl restore).

Then it sets encrypt_keys and sign_key in the profile to the new
fingerprints (the one edit it makes to an existing file) and prints them.
No existing file is overwritten: with a key file already there, keygen stops
before making anything. The keys have no passphrase: the appliance signs
unattended.

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeygenGPG(cmd.Context(), g, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *keygenGPGOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.EncryptKey, "encrypt-key", "", "use this existing key (fingerprint) as the recipient instead of a new one")
	f.StringVar(&o.SignKey, "sign-key", "", "use this existing key (fingerprint) to sign instead of a new one")
	f.StringArrayVar(&o.Import, "import", nil, "key file to take --encrypt-key/--sign-key from (repeatable)")
	f.StringVar(&o.FromHome, "gnupghome", "", "GnuPG home to take --encrypt-key/--sign-key from (only read)")
	f.StringVar(&o.UID, "uid", "", `user id of new keys (default "hostctl backup <host>")`)
	f.StringVar(&o.RecipientSecretOut, "recipient-secret-out", "", "where the recipient's secret key goes (default secrets/PROFILE-recipient-SECRET.asc)")
}

// loadProfile loads the configuration, secret files allowed to be missing,
// and returns the named profile.
func loadProfile(g *Globals, name string) (*config.Config, *config.Profile, error) {
	cfg, err := config.LoadAllowMissing(g.ConfigPath)
	if err != nil {
		return nil, nil, &UsageError{err}
	}
	p := cfg.Profiles[name]
	if p == nil {
		var known []string
		for n := range cfg.Profiles {
			known = append(known, n)
		}
		return nil, nil, &UsageError{fmt.Errorf("no profile %q in %s (known: %s)", name, cfg.Host.ProfilesDir, strings.Join(known, ", "))}
	}
	return cfg, p, nil
}

func runKeygenGPG(ctx context.Context, g *Globals, o keygenGPGOptions, name string) error {
	_, p, err := loadProfile(g, name)
	if err != nil {
		return err
	}
	kf := p.Encryption.KeyFiles
	switch {
	case p.Encryption.Mode != "gpg":
		return &UsageError{fmt.Errorf("%s: encryption.mode is %q: gpg keys are for duplicity profiles with mode \"gpg\"", p.File, p.Encryption.Mode)}
	case len(kf) == 0 || len(kf) > 2:
		return &UsageError{fmt.Errorf("%s: key \"encryption.key_files\": want one or two files (the recipient's public key, the signing secret key), not %d", p.File, len(kf))}
	case strings.Contains(strings.Join(kf, ""), config.ClientPlaceholder):
		// encrypt_keys and sign_key name one key pair for the whole profile.
		return &UsageError{fmt.Errorf("%s: key \"encryption.key_files\" has %s: keygen gpg makes one key pair per profile (encrypt_keys and sign_key name it); for keys per client, use a profile per client", p.File, config.ClientPlaceholder)}
	}
	o.PublicOut, o.SignOut = kf[0], kf[len(kf)-1]
	if o.RecipientSecretOut == "" {
		o.RecipientSecretOut = filepath.Join(filepath.Dir(kf[0]), name+"-recipient-SECRET.asc")
	}
	if o.UID == "" {
		host, _ := os.Hostname()
		o.UID = "hostctl backup " + host
	}
	keys, err := keygen.GPG(ctx, o.GPGOptions)
	if err != nil {
		return err
	}
	w := g.Stdout
	for _, f := range keys.Written {
		fmt.Fprintf(w, "wrote  %s\n", f)
	}
	fmt.Fprintf(w, "\nencryption key (recipient): %s\nsigning key:                %s\n", keys.Encrypt, keys.Sign)
	if err := setProfileKeys(p.File, keys.Encrypt, keys.Sign); err != nil {
		fmt.Fprintf(w, "\n%s not updated (%v): set in its [encryption]\n  encrypt_keys = [%q]\n  sign_key = %q\n", p.File, err, keys.Encrypt, keys.Sign)
	} else {
		fmt.Fprintf(w, "\nupdated %s: encrypt_keys, sign_key\n", p.File)
	}
	secretWritten := false
	for _, f := range keys.Written {
		secretWritten = secretWritten || f == o.RecipientSecretOut
	}
	if secretWritten {
		fmt.Fprintf(w, `
IMPORTANT: %s is the recipient's SECRET key, the only way
to read these backups. Make a paper backup (e.g. paperkey, or print the file)
and/or store it in a password manager, then keep it OFF this host:
  shred -u %s
To restore, import it where you restore: gpg --import FILE.
`, o.RecipientSecretOut, o.RecipientSecretOut)
	} else {
		fmt.Fprintf(w, "\nThe recipient's secret key is not here: keep it where it is; restores need it.\n")
	}
	return nil
}

var (
	encryptKeysLine = regexp.MustCompile(`(?m)^(\s*encrypt_keys\s*=\s*)\[[^\]\n]*\](.*)$`)
	signKeyLine     = regexp.MustCompile(`(?m)^(\s*sign_key\s*=\s*)"[^"\n]*"(.*)$`)
	encryptionTable = regexp.MustCompile(`(?m)^\[encryption\][^\n]*\n`)
)

// setProfileKeys writes the fingerprints into the profile's encrypt_keys
// and sign_key lines (one-line forms), adding sign_key after encrypt_keys
// when it is missing; the rest of the file (comments) is kept.
func setProfileKeys(file, enc, sign string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(data)
	if !encryptKeysLine.MatchString(s) {
		if !encryptionTable.MatchString(s) {
			return fmt.Errorf("no [encryption] table")
		}
		loc := encryptionTable.FindStringIndex(s)
		s = s[:loc[1]] + fmt.Sprintf("encrypt_keys = [%q]\n", enc) + s[loc[1]:]
	} else {
		s = encryptKeysLine.ReplaceAllString(s, fmt.Sprintf("${1}[%q]${2}", enc))
	}
	if signKeyLine.MatchString(s) {
		s = signKeyLine.ReplaceAllString(s, fmt.Sprintf("${1}%q${2}", sign))
	} else {
		loc := encryptKeysLine.FindStringIndex(s)
		s = s[:loc[1]] + fmt.Sprintf("\nsign_key = %q", sign) + s[loc[1]:]
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	tmp := file + ".hostctl-tmp"
	if err := os.WriteFile(tmp, []byte(s), fi.Mode().Perm()); err != nil {
		return err
	}
	if _, err := config.LoadProfileFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("the edited profile would not load: %w", err)
	}
	return os.Rename(tmp, file)
}

func newKeygenSSHCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh PROFILE",
		Short: "Create the ed25519 identity the appliance logs in to the profile's ssh target with",
		Long: `keygen ssh writes a new ed25519 key to the profile's ssh.identity_file (mode
0600, OpenSSH format, no passphrase: the appliance logs in unattended) and its
public half to the same name + ".pub", and prints the fingerprint. Neither
file may exist. "hostctl target setup PROFILE" then installs the public key
on the target. With {client} in ssh.identity_file every client of the
profile gets its own key; the ones that exist are kept.

An append-only profile's maintenance.identity_file (the key of prune jobs,
which backup appliances never receive) is made too, unless it exists.

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeygenSSH(g, args[0])
		},
	}
	return cmd
}

// runKeygenSSH has no options (keygen ssh takes no flags) and no context:
// it writes local files only.
func runKeygenSSH(g *Globals, profile string) error {
	cfg, p, err := loadProfile(g, profile)
	if err != nil {
		return err
	}
	if p.SSH.IdentityFile == "" {
		return &UsageError{fmt.Errorf("%s: key \"ssh.identity_file\" is not set: name the file the key should go to", p.File)}
	}
	host, _ := os.Hostname()
	files, perClient := clientFiles(cfg, p, p.SSH.IdentityFile)
	if len(files) == 0 {
		return &UsageError{fmt.Errorf("%s: ssh.identity_file has %s but no client uses the profile: no key to make", p.File, config.ClientPlaceholder)}
	}
	for _, f := range files {
		if _, err := os.Stat(f); err == nil && perClient {
			fmt.Fprintf(g.Stdout, "kept   %s (exists)\n", f)
			continue
		}
		if err := writeSSHKey(g, f, "hostctl@"+host); err != nil {
			return err
		}
	}
	// An append-only profile's maintenance key: another key, for prune
	// jobs only. One that exists is kept.
	if m := p.Maintenance.IdentityFile; m != "" {
		mfiles, _ := clientFiles(cfg, p, m)
		for _, f := range mfiles {
			if _, err := os.Stat(f); err == nil {
				fmt.Fprintf(g.Stdout, "kept   %s (exists)\n", f)
				continue
			}
			if err := writeSSHKey(g, f, "hostctl-maintenance@"+host); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(g.Stdout, "\nNext: hostctl target setup %s\n", profile)
	return nil
}

// writeSSHKey makes the ed25519 key file f (never over one that exists)
// and shows its fingerprint and public line.
func writeSSHKey(g *Globals, f, comment string) error {
	k, err := keygen.SSH(f, comment)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "wrote  %s\nwrote  %s\n%s  %s\n", k.Path, k.PubPath, k.Fingerprint, strings.TrimSpace(k.AuthorizedKey))
	return nil
}

func newKeygenPassphraseCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "passphrase PROFILE",
		Short: "Create the random repository passphrase of every client of a profile",
		Long: `keygen passphrase writes a new random passphrase (32 bytes, base64, mode
0600) to the profile's encryption.passphrase_file. With {client} in that path
(as "hostctl init" writes it: secrets/local-borg-{client}.passphrase) every
client of the profile gets its own: one client's appliance then holds no
other client's passphrase. Files that exist are kept, so rerun it after adding
a client. Keep a copy of each passphrase off this host: without it the
client's backups cannot be read.

` + exitCodeHelp,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeygenPassphrase(g, args[0])
		},
	}
}

// runKeygenPassphrase has no options (no flags) and no context: it writes
// local files only.
func runKeygenPassphrase(g *Globals, profile string) error {
	cfg, p, err := loadProfile(g, profile)
	if err != nil {
		return err
	}
	if p.Encryption.PassphraseFile == "" {
		return &UsageError{fmt.Errorf("%s: key \"encryption.passphrase_file\" is not set: name the file (e.g. \"secrets/%s-%s.passphrase\")", p.File, p.Name, config.ClientPlaceholder)}
	}
	files, _ := clientFiles(cfg, p, p.Encryption.PassphraseFile)
	if len(files) == 0 {
		return &UsageError{fmt.Errorf("%s: encryption.passphrase_file has %s but no client uses the profile: no passphrase to make", p.File, config.ClientPlaceholder)}
	}
	wrote, err := makePassphrases(g.Stdout, files, keygen.Passphrase, "passphrase")
	if err != nil {
		return err
	}
	if wrote > 0 {
		fmt.Fprintf(g.Stdout, "\nKeep a copy of each new passphrase somewhere else (a password manager, paper):\nwithout it the backups cannot be read.\n")
	}
	return nil
}

// clientFiles expands a secret file path of profile p for the clients that
// use it: one file per client with {client} (perClient), else the path.
func clientFiles(cfg *config.Config, p *config.Profile, file string) (files []string, perClient bool) {
	if !strings.Contains(file, config.ClientPlaceholder) {
		return []string{file}, false
	}
	for _, cl := range cfg.UsersOf(p) {
		files = append(files, strings.ReplaceAll(file, config.ClientPlaceholder, cl.Name))
	}
	return files, true
}

// makePassphrases writes a random passphrase or password (what; made
// by mk: keygen.Passphrase or keygen.Password) to each of files that does not exist yet and says
// which it wrote and kept; it returns how many it wrote.
func makePassphrases(w io.Writer, files []string, mk func(string) error, what string) (int, error) {
	wrote := 0
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			fmt.Fprintf(w, "kept   %s (exists)\n", f)
			continue
		}
		if err := mk(f); err != nil {
			return wrote, err
		}
		wrote++
		fmt.Fprintf(w, "wrote  %s (new random %s)\n", f, what)
	}
	return wrote, nil
}
