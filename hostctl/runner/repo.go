package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// Names of the secret files on the job disk (job.SecretPrefix + …)
// besides the target's (job.SecretFile).
const (
	secretPassphrase = job.SecretPrefix + "passphrase"
	secretGPGKey     = job.SecretPrefix + "gpg-key-" // + index
)

// clientRepo turns a profile's target for a client into the job's repo
// description and, for a file:// target, the host directory shared with the
// appliance (a zero ShareSpec for network targets).
func clientRepo(p *config.Profile, client string) (job.Repo, virt.ShareSpec, error) {
	t, err := p.TargetFor(client)
	if err != nil {
		return job.Repo{}, virt.ShareSpec{}, err
	}
	repo := job.Repo{
		Backend:         p.Backend,
		Target:          t,
		Encryption:      p.Encryption.Mode,
		Compression:     p.Borg.Compression,
		Retention:       job.Retention(p.Retention),
		FullIfOlderThan: p.Duplicity.FullIfOlderThan,
		Verify:          p.Duplicity.Verify,
		CheckEvery:      p.CheckEvery,
		BandwidthLimit:  int64(p.BandwidthLimit),
		ExtraOptions:    p.ExtraOptions,
	}
	if p.Encryption.PassphraseFile != "" {
		repo.PassphraseFile = secretPassphrase
	}
	if p.Encryption.Mode == "gpg" {
		repo.GPG = job.GPG{EncryptKeys: p.Encryption.EncryptKeys, SignKey: p.Encryption.SignKey}
		for i := range p.Encryption.KeyFiles {
			repo.GPG.KeyFiles = append(repo.GPG.KeyFiles, fmt.Sprintf("%s%d", secretGPGKey, i))
		}
	}
	if !t.NeedsNetwork() {
		// Only this client's repository directory is shared, never its
		// parent: an appliance must not see other clients' backups.
		return repo, virt.ShareSpec{Dir: t.Path, Tag: job.TagTarget}, nil
	}
	for _, s := range t.Scheme.Secrets() {
		if repo.Secrets == nil {
			repo.Secrets = map[target.Secret]string{}
		}
		repo.Secrets[s] = job.SecretFile(s)
	}
	if t.Scheme.OverSSH() {
		repo.SSH = job.SSH{ProxyCommand: p.SSH.ProxyCommand}
	}
	if t.Scheme == target.S3 {
		repo.S3 = job.S3{Endpoint: p.S3.Endpoint, Region: p.S3.Region, PathStyle: p.S3.PathStyle}
	}
	return repo, virt.ShareSpec{}, nil
}

// jobNet is the appliance's network for a job whose target needs one.
func jobNet(h config.Host, repo job.Repo) *job.Net {
	if !repo.Target.NeedsNetwork() {
		return nil
	}
	n := h.Network
	mode := n.Mode
	if mode == "static" {
		mode = "" // the job format's default
	}
	return &job.Net{Mode: mode, Address: n.Address, Gateway: n.Gateway, DNS: slices.Clone(n.DNS)}
}

// clientSecrets reads the secret files a client's profile (ClientProfile:
// {client} resolved) names, for the job disk: only what this profile's
// target and encryption need.
func clientSecrets(p *config.Profile, client string) (map[string][]byte, error) {
	files := map[string]string{}
	if p.Encryption.Mode != "none" && p.Encryption.PassphraseFile != "" {
		files[secretPassphrase] = p.Encryption.PassphraseFile
	}
	if p.Encryption.Mode == "gpg" {
		for i, f := range p.Encryption.KeyFiles {
			files[fmt.Sprintf("%s%d", secretGPGKey, i)] = f
		}
	}
	t, err := p.TargetFor("client")
	if err != nil {
		return nil, err
	}
	for _, s := range t.Scheme.Secrets() {
		_, files[job.SecretFile(s)] = p.SecretFile(s)
	}
	out := map[string][]byte{}
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("client %s, profile %s: secret for the job disk: %w", client, p.Name, err)
		}
		out[name] = data
	}
	return out, nil
}

// repoMode says how a job uses the client's repository.
type repoMode int

const (
	// repoWrite creates a file:// target directory when missing (a backup
	// starts a repository).
	repoWrite repoMode = iota
	// repoExisting requires the repository to exist (restore, list,
	// verify): a missing one is the operator's mistake, not an empty list.
	repoExisting
)

// clientJob resolves c's profile into a job for the appliance: the job
// with the fields every mode shares (client, run, time limit, nice, repo,
// network), the secrets for the job disk, the target share, and the job
// directory (created) under name ("" = the client's name). Callers add
// their mode's table and what else it needs (disks).
func (r *Runner) clientJob(c *config.Client, mode, name string, rm repoMode) (applianceJob, error) {
	// Only this client's secrets: with {client} in the profile's secret
	// paths, no other client's appliance ever holds them.
	prof := r.Cfg.ClientProfile(c)
	if prof == nil {
		return applianceJob{}, fmt.Errorf("client %s: no profile", c.Name)
	}
	repo, share, err := clientRepo(prof, c.Name)
	if err != nil {
		return applianceJob{}, err
	}
	var shares []virt.ShareSpec
	if share.Dir != "" {
		switch rm {
		case repoWrite:
			if err := os.MkdirAll(share.Dir, 0o700); err != nil {
				return applianceJob{}, fmt.Errorf("target directory: %w", err)
			}
		case repoExisting:
			if _, err := os.Stat(share.Dir); err != nil {
				return applianceJob{}, fmt.Errorf("client %s has no repository at %s: %w", c.Name, share.Dir, err)
			}
		}
		// Writable even to read: borg takes its repository lock there.
		shares = append(shares, share)
	}
	secrets, err := clientSecrets(prof, c.Name)
	if err != nil {
		return applianceJob{}, err
	}
	if name == "" {
		name = c.Name
	}
	dir := r.jobDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return applianceJob{}, err
	}
	j := &job.Job{
		Version:     job.Version,
		Mode:        mode,
		Client:      c.Name,
		RunID:       r.RunID,
		TimeLimit:   c.TimeLimit,
		Nice:        r.Cfg.Host.Nice,
		IONiceClass: r.Cfg.Host.IONice,
		Repo:        &repo,
		Net:         jobNet(r.Cfg.Host, repo),
	}
	return applianceJob{dir: dir, job: j, secrets: secrets, shares: shares, cache: c.Name}, nil
}

// logPath is where the appliance's log of a job is kept on the host.
func (aj applianceJob) logPath() string { return filepath.Join(aj.dir, job.FileLog) }
