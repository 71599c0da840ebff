package backend

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// duplicity with a symmetric passphrase does not notice a wrong one when
// its local cache (the archive dir on the cache volume) is in sync: it
// warns that it cannot read the remote manifest and then appends an
// incremental encrypted with the wrong passphrase, which breaks the chain.
// So the first backup leaves a small file encrypted with the passphrase in
// the client's archive dir, and every later run must decrypt it first. The
// file lives and dies with the cache: without a cache duplicity has to
// decrypt the remote signatures itself, and fails on a wrong passphrase.

// passCheckFile is the check file (inside the chroot) for a job.
func passCheckFile(req Request) string {
	return path.Join(req.Dirs.Cache, "duplicity", safeName(req.Job.Repo.CacheName(req.Job.Client)), "passphrase-check.gpg")
}

const passCheckText = "snapshot-backup: duplicity passphrase check\n"

// checkPassphrase decrypts the check file with the job's passphrase; a
// missing file passes (first backup, or a cache from before this check).
func (b *Duplicity) checkPassphrase(ctx context.Context, req Request) error {
	if req.Job.Repo.Encryption != "repokey" {
		return nil
	}
	f := passCheckFile(req)
	if _, err := os.Stat(filepath.Join(req.Root, f)); err != nil {
		return nil
	}
	d := req.Dirs
	argv := []string{"gpg", "--homedir", d.GnuPGHome(), "--batch", "--no-symkey-cache", "--pinentry-mode", "loopback",
		"--passphrase-fd", "0", "--output", "-", "--decrypt", f}
	out, err := runTool(ctx, b.Run, b.Sink, toolCmd{argv: argv, env: []string{"HOME=" + d.Home()}, dir: "/", in: passReader(req.Passphrase)})
	if err != nil || string(out) != passCheckText {
		return fmt.Errorf("wrong passphrase: it does not decrypt %s, which the first backup into this repository wrote with its passphrase (the repository is left unchanged)", f)
	}
	return nil
}

// writePassCheck leaves the check file after a successful backup.
func (b *Duplicity) writePassCheck(ctx context.Context, req Request) error {
	if req.Job.Repo.Encryption != "repokey" {
		return nil
	}
	f := passCheckFile(req)
	host := filepath.Join(req.Root, f)
	if _, err := os.Stat(host); err == nil {
		return nil
	}
	d := req.Dirs
	plain := path.Join(d.Work, "passphrase-check")
	if err := os.WriteFile(filepath.Join(req.Root, plain), []byte(passCheckText), 0o600); err != nil {
		return fmt.Errorf("passphrase check file: %w", err)
	}
	argv := []string{"gpg", "--homedir", d.GnuPGHome(), "--batch", "--no-symkey-cache", "--pinentry-mode", "loopback",
		"--passphrase-fd", "0", "--symmetric", "--cipher-algo", "AES256", "--output", f + ".tmp", plain}
	_ = os.Remove(host + ".tmp")
	if _, err := runTool(ctx, b.Run, b.Sink, toolCmd{argv: argv, env: []string{"HOME=" + d.Home()}, dir: "/", in: passReader(req.Passphrase)}); err != nil {
		return fmt.Errorf("passphrase check file: %w", err)
	}
	return os.Rename(host+".tmp", host)
}

func passReader(p []byte) *strings.Reader {
	return strings.NewReader(strings.TrimRight(string(p), "\r\n") + "\n")
}
