package runner

import (
	"fmt"
	"os"
	"strings"

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

// slotName is the job disk's name of a secret of the destination in
// place slot of the job (0: Job.Repo, whose names are the ones above;
// i: Also[i-1], whose names carry job.DestPrefix(i)).
func slotName(slot int, name string) string {
	return job.SecretPrefix + job.DestPrefix(slot) + strings.TrimPrefix(name, job.SecretPrefix)
}

// clientRepo turns a client's destination c (its profile and target) into
// the description of the job's repository in place slot (0 Job.Repo, i
// Also[i-1]) and, for a file:// target, the host directory shared with
// the appliance (a zero ShareSpec for network targets).
func clientRepo(c *config.Resolved, slot int) (job.Repo, virt.ShareSpec) {
	p, t := c.Profile, c.Target
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
	if p.AppendOnly {
		// The appliance's key can only add; retention is the maintenance
		// key's (hostctl prune) or the server's.
		repo.Retention = job.Retention{}
	}
	if c.Index > 0 {
		// A further destination's caches are its own (duplicity's
		// archive dir above all), whichever job uses it.
		repo.Cache = c.Name + "." + p.Name
	}
	if p.Encryption.PassphraseFile != "" {
		repo.PassphraseFile = slotName(slot, secretPassphrase)
	}
	if p.Encryption.Mode == "gpg" {
		repo.GPG = job.GPG{EncryptKeys: p.Encryption.EncryptKeys, SignKey: p.Encryption.SignKey}
		for i := range p.Encryption.KeyFiles {
			repo.GPG.KeyFiles = append(repo.GPG.KeyFiles, slotName(slot, fmt.Sprintf("%s%d", secretGPGKey, i)))
		}
	}
	if !t.NeedsNetwork() {
		// Only this client's repository directory is shared, never its
		// parent: an appliance must not see other clients' backups.
		tag := job.TargetTag(slot)
		if slot > 0 {
			repo.Tag = tag
		}
		return repo, virt.ShareSpec{Dir: t.Path, Tag: tag}
	}
	for _, s := range t.Scheme.Secrets() {
		if repo.Secrets == nil {
			repo.Secrets = map[target.Secret]string{}
		}
		repo.Secrets[s] = slotName(slot, job.SecretFile(s))
	}
	if t.Scheme.OverSSH() {
		repo.SSH = job.SSH{ProxyCommand: p.SSH.ProxyCommand}
	}
	if t.Scheme == target.S3 {
		repo.S3 = job.S3{Endpoint: p.S3.Endpoint, Region: p.S3.Region, PathStyle: p.S3.PathStyle}
	}
	return repo, virt.ShareSpec{}
}

// clientSecrets reads the secret files of a client's job disk
// (config.Secrets: {client} resolved, only what its target and encryption
// need), by their names on the job disk.
func clientSecrets(c *config.Resolved, slot int) (map[string][]byte, error) {
	files := map[string]string{}
	if f := c.Secrets.Passphrase; f != "" {
		files[slotName(slot, secretPassphrase)] = f
	}
	for i, f := range c.Secrets.GPGKeys {
		files[slotName(slot, fmt.Sprintf("%s%d", secretGPGKey, i))] = f
	}
	for s, f := range c.Secrets.Target {
		files[slotName(slot, job.SecretFile(s))] = f
	}
	out := map[string][]byte{}
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("client %s, profile %s: secret for the job disk: %w", c.Name, c.Profile.Name, err)
		}
		out[name] = data
	}
	return out, nil
}

// withGPGKeys adds key files the operator gives for this one job (hostctl
// restore/verify/recover --gpg-key: the recipient's secret key, which a
// duplicity profile keeps off this host) to the job's throwaway keyring,
// after the profile's own key_files.
func withGPGKeys(c *config.Resolved, files []string) jobOption {
	return func(aj *applianceJob) error {
		if len(files) == 0 {
			return nil
		}
		if c.Profile.Encryption.Mode != "gpg" || aj.job.Repo == nil {
			return fmt.Errorf("--gpg-key: profile %s does not encrypt with gpg (encryption.mode %q)", c.Profile.Name, c.Profile.Encryption.Mode)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("--gpg-key: %w", err)
			}
			name := fmt.Sprintf("%s%d", secretGPGKey, len(aj.job.Repo.GPG.KeyFiles))
			aj.job.Repo.GPG.KeyFiles = append(aj.job.Repo.GPG.KeyFiles, name)
			aj.secrets[name] = data
		}
		return nil
	}
}
