package backend

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
)

// Borg is borg 1.2 as found in the appliance userland.
type Borg struct {
	Run  Runner
	Sink Sink
	// ProgressEvery throttles progress records (default 2 s).
	ProgressEvery time.Duration
}

var _ Backend = (*Borg)(nil)

// Backup creates the repository when it does not exist yet, then the
// archive. Exit status 1 (borg's warnings: a file it could not read or
// that changed while read) is a record with Warning and the paths.
func (b *Borg) Backup(ctx context.Context, req Request) (job.Stats, error) {
	j := req.Job
	if err := checkSources(req); err != nil {
		return job.Stats{}, err
	}
	req, err := b.resolve(req)
	if err != nil {
		return job.Stats{}, err
	}
	if err := b.ensureRepo(ctx, req); err != nil {
		return job.Stats{}, err
	}
	argv, err := BorgCreateArgs(CreateOpts{Repo: req.Repo, Archive: j.Backup.Archive, Compression: j.Repo.Compression,
		Source: j.Backup.Source, Exclude: j.Backup.Exclude, Time: j.Backup.Time, RateLimit: j.Repo.BandwidthLimit, Extra: j.Repo.ExtraOptions})
	if err != nil {
		return job.Stats{}, err
	}
	at := j.Backup.Time
	if at.IsZero() {
		at = time.Now()
	}
	unread := &unreadable{}
	r, err := b.run(ctx, req, argv, req.Dirs.Snapshot, true, unread)
	if err != nil {
		return job.Stats{}, err
	}
	rec, err := ParseBorgCreate(r.out)
	if err != nil {
		return rec, err
	}
	if err := emptyArchive("borg create", rec, 0); err != nil {
		return rec, err
	}
	if r.warned {
		rec.Warning = warning("borg create", 1, unread, r.tail)
		unread.record(&rec)
	}
	if req.VMDir != "" {
		VMWarning(&rec, storedVM(b.Sink, func() error { return b.storeVM(ctx, req, j.Backup.Archive, at) }))
	}
	return rec, nil
}

// Restore extracts the archive (the latest when Archive is empty).
func (b *Borg) Restore(ctx context.Context, req Request) (string, error) {
	req, err := b.resolve(req)
	if err != nil {
		return "", err
	}
	archive := req.Archive
	if archive == "" {
		out, err := b.borg(ctx, req, BorgLastArgs(req.Repo), "/", false)
		if err != nil {
			return "", err
		}
		if archive, err = ParseBorgLast(out); err != nil {
			return "", fmt.Errorf("latest archive in %s: %w", req.Repo, err)
		}
		b.Sink.Logf("restoring latest archive %s", archive)
	}
	paths, err := job.CleanPaths(req.Paths)
	if err != nil {
		return "", err
	}
	r, err := b.run(ctx, req, BorgExtractArgs(req.Repo, archive, paths), req.Dirs.Restore, true, nil)
	if err == nil && r.warned {
		b.Sink.Logf("borg extract finished with warnings: %s", r.tail)
		return archive, &Incomplete{Warning: warning("borg extract", 1, &unreadable{}, r.tail)}
	}
	return archive, err
}

// ensureRepo runs borg init when Repo holds no repository. A directory with
// other content is left alone: borg init refuses it with a clear message.
// On an ssh server borg init is tried and "already exists" is fine.
func (b *Borg) ensureRepo(ctx context.Context, req Request) error {
	remote := strings.HasPrefix(req.Repo, "ssh://")
	if !remote {
		host := filepath.Join(req.Root, req.Repo)
		if _, err := os.Stat(filepath.Join(host, "config")); err == nil {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(host), 0o700); err != nil {
			return fmt.Errorf("create repository parent: %w", err)
		}
	}
	argv, err := BorgInitArgs(req.Repo, req.Job.Repo.Encryption)
	if err != nil {
		return err
	}
	if !remote {
		b.Sink.Logf("initialising borg repository %s (%s)", req.Repo, req.Job.Repo.Encryption)
	}
	_, err = b.borg(ctx, req, argv, "/", false)
	if remote && err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	return err
}

// borg runs one borg command whose warnings (exit status 1) are logged
// and do not matter: listing, info, init, prune, compact. (extract's do:
// Restore.)
func (b *Borg) borg(ctx context.Context, req Request, argv []string, dir string, priority bool) ([]byte, error) {
	r, err := b.run(ctx, req, argv, dir, priority, nil)
	if r.warned {
		b.Sink.Logf("borg %s finished with warnings: %s", argv[1], r.tail)
	}
	return r.out, err
}

// borgRun is one borg command's outcome.
type borgRun struct {
	out []byte
	// warned: exit status 1, borg's "finished with warnings"; tail is the
	// one-line distillate of its warnings.
	warned bool
	tail   string
}

// run runs one borg command. Exit status 1 is warned; 2 and up are errors
// whose text is borg's own last messages. unread (nil: not wanted)
// collects the paths of borg create --list's E and C lines.
func (b *Borg) run(ctx context.Context, req Request, argv []string, dir string, priority bool, unread *unreadable) (borgRun, error) {
	d := req.Dirs
	env := BorgEnv(req.Job.Client, d.Cache)
	if strings.HasPrefix(req.Repo, "ssh://") {
		env = append(env, "BORG_RSH=ssh -F "+d.SSHConfigPath())
	}
	var extra []*os.File
	if req.Passphrase != nil {
		r, err := passPipe(req.Passphrase)
		if err != nil {
			return borgRun{}, err
		}
		defer r.Close()
		extra = []*os.File{r}
		env = append(env, PassphraseEnv())
	}
	mkdirs(req.Root, path.Join(d.Cache, "borg"), path.Join(d.Cache, "tmp"))
	every := b.ProgressEvery
	if every == 0 {
		every = 2 * time.Second
	}
	st := &borgStderr{sink: b.Sink, every: every, unread: unread}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() { st.consume(pr); close(done) }()
	out, err := b.Run.Run(ctx, chroot.Cmd{Argv: argv, Dir: dir, Env: env, Stderr: pw, ExtraFiles: extra, Priority: priority})
	pw.Close()
	<-done
	name := "borg " + argv[1]
	if err != nil && execx.ExitCode(err) == 1 && ctx.Err() == nil {
		return borgRun{out: out, warned: true, tail: st.tail()}, nil
	}
	if err != nil {
		return borgRun{out: out}, toolError(ctx, name, err, st.tail())
	}
	return borgRun{out: out}, nil
}

// passPipe returns the read end of a pipe that holds the passphrase, one
// line, so it reaches borg neither through argv nor the environment.
func passPipe(p []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("passphrase pipe: %w", err)
	}
	defer w.Close()
	line := append([]byte(strings.TrimRight(string(p), "\r\n")), '\n')
	if _, err := w.Write(line); err != nil { // far below the pipe buffer
		r.Close()
		return nil, fmt.Errorf("passphrase pipe: %w", err)
	}
	return r, nil
}
