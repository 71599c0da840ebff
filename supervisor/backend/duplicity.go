package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// Duplicity is duplicity 0.8 as found in the appliance userland.
type Duplicity struct {
	Run  Runner
	Sink Sink
}

var _ Backend = (*Duplicity)(nil)

// dupSession is what one duplicity operation needs: URL, common options,
// environment, and the relay to stop afterwards.
type dupSession struct {
	url    string
	common []string
	env    []string
	stop   func()
}

// open prepares the keyring, ssh files and (for a ProxyCommand) the relay.
func (b *Duplicity) open(ctx context.Context, req Request) (*dupSession, error) {
	j, d := req.Job, req.Dirs
	if err := prepareTarget(req); err != nil {
		return nil, err
	}
	mkdirs(req.Root, path.Join(d.Cache, "tmp"), path.Join(d.Cache, "duplicity"))
	s := &dupSession{stop: func() {}}
	if err := b.keyring(ctx, req); err != nil {
		return nil, err
	}
	t := j.Repo.Target
	relay, knownHosts := "", ""
	var err error
	if t.Scheme.OverSSH() {
		knownHosts = req.secret(j.Repo.Secrets[target.SSHKnownHosts])
		if j.Repo.SSH.ProxyCommand != "" {
			// paramiko ignores ProxyCommand: the supervisor runs it behind
			// a local relay, and the pinned host key is re-labelled for
			// the relay's address so it is still checked.
			addr, stop, err := startRelay(ctx, b.Run, b.Sink, j.Repo.SSH.ProxyCommand, t.Host, t.PortOrDefault(), []string{"HOME=" + d.Home()})
			if err != nil {
				return nil, err
			}
			s.stop = stop
			relay = addr
			data, err := os.ReadFile(filepath.Join(req.Root, knownHosts))
			if err != nil {
				stop()
				return nil, fmt.Errorf("known_hosts: %w", err)
			}
			host, port := splitRelay(addr)
			alias, err := AliasKnownHosts(data, t.Host, t.PortOrDefault(), "["+host+"]:"+port)
			if err != nil {
				stop()
				return nil, err
			}
			knownHosts = path.Join(d.Work, "known_hosts.relay")
			if err := os.WriteFile(filepath.Join(req.Root, knownHosts), alias, 0o600); err != nil {
				stop()
				return nil, err
			}
		}
	}
	if s.url, err = DuplicityURL(*j.Repo, req.Repo, relay); err != nil {
		s.stop()
		return nil, err
	}
	s.common = DuplicityCommon(j, d, knownHosts)
	pass := ""
	if req.Passphrase != nil {
		pass = strings.TrimRight(string(req.Passphrase), "\r\n")
	}
	// duplicity takes passphrases only from its environment (or a tty);
	// the environment of this one process, inside the appliance, never
	// logged.
	s.env = []string{"HOME=" + d.Home(), "TMPDIR=" + path.Join(d.Cache, "tmp"), "GNUPGHOME=" + d.GnuPGHome(), "PASSPHRASE=" + pass}
	if j.Repo.GPG.SignKey != "" {
		// The signing key's passphrase (empty for a key without one):
		// without it duplicity asks on a terminal there is none of.
		s.env = append(s.env, "SIGN_PASSPHRASE="+pass)
	}
	if f := j.Repo.Secrets[target.FTPPassword]; f != "" {
		pw, err := os.ReadFile(filepath.Join(req.Root, req.secret(f)))
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("ftp password: %w", err)
		}
		s.env = append(s.env, "FTP_PASSWORD="+strings.TrimRight(string(pw), "\r\n"))
	}
	return s, nil
}

// keyring creates the ephemeral GnuPG home and imports the job's keys.
func (b *Duplicity) keyring(ctx context.Context, req Request) error {
	d := req.Dirs
	home := filepath.Join(req.Root, d.GnuPGHome())
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("gnupg home: %w", err)
	}
	if err := os.WriteFile(filepath.Join(home, "gpg.conf"), []byte("batch\nno-tty\npinentry-mode loopback\ntrust-model always\n"), 0o600); err != nil {
		return err
	}
	for _, kf := range req.Job.Repo.GPG.KeyFiles {
		argv := []string{"gpg", "--homedir", d.GnuPGHome(), "--batch", "--import", req.secret(kf)}
		if _, err := runTool(ctx, b.Run, b.Sink, toolCmd{argv: argv, env: []string{"HOME=" + d.Home()}, dir: "/"}); err != nil {
			return fmt.Errorf("import gpg key %s: %w", kf, err)
		}
	}
	// A key id that is not in the keyring fails here, in one line, not
	// deep in a duplicity traceback.
	ids := append([]string(nil), req.Job.Repo.GPG.EncryptKeys...)
	if req.Job.Repo.GPG.SignKey != "" {
		ids = append(ids, req.Job.Repo.GPG.SignKey)
	}
	for _, id := range ids {
		argv := []string{"gpg", "--homedir", d.GnuPGHome(), "--batch", "--list-keys", id}
		if _, err := runTool(ctx, b.Run, b.Sink, toolCmd{argv: argv, env: []string{"HOME=" + d.Home()}, dir: "/"}); err != nil {
			return fmt.Errorf("gpg key missing: %s is not in the job's key files (encryption.key_files)", id)
		}
	}
	return nil
}

func (b *Duplicity) run(ctx context.Context, s *dupSession, dir string, argv []string) ([]byte, error) {
	return runTool(ctx, b.Run, b.Sink, toolCmd{argv: argv, env: s.env, dir: dir, priority: true})
}

// Backup implements Backend. duplicity ends with exit status 0 after
// files it could not read: its log file's warnings name them, and make
// the record's Warning.
func (b *Duplicity) Backup(ctx context.Context, req Request) (job.Stats, error) {
	if err := checkSources(req); err != nil {
		return job.Stats{}, err
	}
	s, err := b.open(ctx, req)
	if err != nil {
		return job.Stats{}, err
	}
	defer s.stop()
	if err := b.checkPassphrase(ctx, req); err != nil {
		return job.Stats{}, err
	}
	d := req.Dirs
	logFile := path.Join(d.Work, "duplicity-backup.log")
	host := filepath.Join(req.Root, logFile)
	if err := os.Remove(host); err != nil && !errors.Is(err, os.ErrNotExist) {
		return job.Stats{}, fmt.Errorf("duplicity log file: %w", err)
	}
	common := append(append([]string(nil), s.common...), "--log-file", logFile)
	argv, err := DuplicityBackupArgs(common, req.Job, d.Snapshot, s.url)
	if err != nil {
		return job.Stats{}, err
	}
	out, err := b.run(ctx, s, d.Snapshot, argv)
	if err != nil {
		return job.Stats{}, err
	}
	if err := b.writePassCheck(ctx, req); err != nil {
		return job.Stats{}, err
	}
	rec, err := ParseDuplicityStats(out)
	if err != nil {
		b.Sink.Logf("%v", err)
	}
	rec.Archive = req.Job.Backup.Archive
	// The backed-up root counts as one of SourceFiles.
	if err := emptyArchive("duplicity", rec, 1); err != nil {
		return rec, err
	}
	unread := &unreadable{snapshot: d.Snapshot}
	warned := 0
	if f, err := os.Open(host); err == nil {
		warned = ParseDuplicityLog(f, unread, b.Sink.LogWriter())
		f.Close()
	} else {
		b.Sink.Logf("duplicity log file: %v", err)
	}
	if n := duplicityErrors(out); warned > 0 || n > 0 {
		rec.Warning = warning("duplicity", -1, unread, fmt.Sprintf("%d error(s) in its statistics", n))
		unread.record(&rec)
	}
	if req.Job.Repo.Verify {
		if err := b.verify(ctx, req, s); err != nil {
			return rec, err
		}
	}
	if req.VMDir != "" {
		VMWarning(&rec, storedVM(b.Sink, func() error { return b.storeVM(ctx, req, s) }))
	}
	return rec, nil
}

// Restore implements Backend: the latest backup, or the one at Job.Archive
// when that is a time duplicity understands.
func (b *Duplicity) Restore(ctx context.Context, req Request) (string, error) {
	s, err := b.open(ctx, req)
	if err != nil {
		return "", err
	}
	defer s.stop()
	paths, err := job.CleanPaths(req.Paths)
	if err != nil {
		return "", err
	}
	var at []string
	name := "latest"
	if a := req.Archive; a != "" {
		at = []string{"--time", a}
		name = a
	}
	dest := req.Dirs.Restore
	if len(paths) == 0 {
		argv := append(append(append([]string{"duplicity", "restore"}, s.common...), at...), "--force", s.url, dest)
		if _, err := b.run(ctx, s, "/", argv); err != nil {
			return name, err
		}
		if req.Verify {
			// Compares the restored tree with the backup: each file's
			// data with the hash recorded at backup time, and metadata.
			argv := append(append(append([]string{"duplicity", "verify", "--compare-data"}, s.common...), at...), s.url, dest)
			if _, err := b.run(ctx, s, "/", argv); err != nil {
				return name, fmt.Errorf("the restored tree differs from the backup: %w", err)
			}
		}
		return name, nil
	}
	// duplicity restores one path per run, to the path it is given.
	for _, p := range paths {
		to := path.Join(dest, p)
		mkdirs(req.Root, path.Dir(to))
		argv := append(append(append([]string{"duplicity", "restore"}, s.common...), at...), "--file-to-restore", p, "--force", s.url, to)
		if _, err := b.run(ctx, s, "/", argv); err != nil {
			return name, err
		}
	}
	return name, nil
}
