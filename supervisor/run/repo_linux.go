package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
)

// repo is the job's repository as a mode works with it: the backend and
// the request every call to it takes.
type repo struct {
	backend.Backend
	req backend.Request
}

// openRepo sets up everything a backend needs besides the data, once per
// job: the backend named in the job (refused before anything is mounted),
// the cache, the network, the target's 9p share for a file target, the
// passphrase, and (Repo.BreakLock) the lock a stopped appliance left.
func (s *supervisor) openRepo(ctx context.Context, j *job.Job) (repo, error) {
	if err := s.prepareRepos(ctx, j); err != nil {
		return repo{}, err
	}
	return s.destination(ctx, j, 0)
}

// prepareRepos does, once per job, what every destination needs: the
// backends named (all refused before anything is mounted), the cache,
// the work directory and the network.
func (s *supervisor) prepareRepos(ctx context.Context, j *job.Job) error {
	needNet := false
	for _, r := range j.Destinations() {
		if _, err := backend.New(r.Backend, s.runner, s.rep); err != nil {
			return err
		}
		needNet = needNet || r.Target.NeedsNetwork()
	}
	if err := s.rep.Step("mount cache")(s.mountCache(ctx)); err != nil {
		return err
	}
	if err := os.MkdirAll(backend.WorkDir, 0o700); err != nil {
		return err
	}
	if j.Net != nil {
		return s.rep.Step("network")(s.setupNetwork(ctx, j.Net))
	}
	if needNet {
		return fmt.Errorf("repository %s: a network target, but the job gives the appliance no network", j.Repo.Target)
	}
	return nil
}

// destination opens destination i of the job (0 Job.Repo, i Also[i-1])
// once prepareRepos ran: its backend, its target's share, its passphrase
// and (Repo.BreakLock) the lock a stopped appliance left. The request's
// job is j with that destination as its only repository, so backends
// read Job.Repo as they always do.
func (s *supervisor) destination(ctx context.Context, j *job.Job, i int) (repo, error) {
	if i > 0 {
		d := *j
		d.Repo, d.Also = &j.Also[i-1], nil
		j = &d
	}
	b, err := backend.New(j.Repo.Backend, s.runner, s.rep)
	if err != nil {
		return repo{}, err
	}
	req := backend.Request{Job: j, Root: Sysroot, Dirs: backend.ApplianceDirs()}
	if !j.Repo.Target.NeedsNetwork() {
		// The host shares the client's repository directory itself.
		tag, dir := j.Repo.ShareTag(), backend.TargetDir
		if i > 0 {
			dir = fmt.Sprintf("%s%d", backend.TargetDir, i)
		}
		if err := s.rep.Step("mount target")(s.mount9p(tag, dir)); err != nil {
			return repo{}, s.shareErr(tag, err)
		}
		req.Repo = dir
	}
	if j.Repo.PassphraseFile != "" {
		p, err := readJobFile(j.Repo.PassphraseFile)
		if err != nil {
			return repo{}, fmt.Errorf("read passphrase file %w", err)
		}
		req.Passphrase = p
	} else if j.Repo.Encryption == "repokey" {
		return repo{}, fmt.Errorf("repository encryption %q needs a passphrase file", j.Repo.Encryption)
	}
	if j.Repo.BreakLock {
		s.rep.Logf("an earlier appliance of %s was stopped while it used the repository: removing the lock it may have left", j.Client)
		if err := s.rep.Step("break the stopped appliance's lock")(b.BreakLock(ctx, req)); err != nil {
			return repo{}, err
		}
	}
	return repo{b, req}, nil
}

// readJobFile reads a file (a secret) from the job disk; rel cannot name
// anything outside it.
func readJobFile(rel string) ([]byte, error) {
	clean := filepath.Clean("/" + rel)
	b, err := os.ReadFile(filepath.Join(jobDir, clean))
	if err != nil {
		return nil, fmt.Errorf("%s from the job disk: %w", clean, err)
	}
	return b, nil
}

// shareErr is the error of mounting the 9p share tag: it names the shares
// the host does offer.
func (s *supervisor) shareErr(tag string, err error) error {
	return fmt.Errorf("mount 9p share %q (offered: %s): %w", tag, strings.Join(s.b.tags, " "), err)
}
