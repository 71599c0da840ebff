package backend

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// DuplicityURL is duplicity's target URL for a job. sftp goes through
// paramiko (duplicity's default); with a ProxyCommand, which paramiko's
// backend ignores, relay is the local address of the supervisor's relay
// that runs the ProxyCommand. ftp(s) goes through lftp.
func DuplicityURL(r job.Repo, local, relay string) (string, error) {
	t := r.Target
	user := ""
	if t.User != "" {
		user = t.User + "@"
	}
	switch t.Scheme {
	case target.File:
		return "file://" + local, nil
	case target.SFTP, target.SSH:
		hp := hostPort(t.Host, t.PortOrDefault())
		if relay != "" {
			hp = relay
		}
		// Two slashes after the host: an absolute path on the server.
		return "paramiko+sftp://" + user + hp + "/" + t.Path, nil
	case target.FTP, target.FTPS:
		return "lftp+" + string(t.Scheme) + "://" + user + hostPort(t.Host, t.Port) + t.Path, nil
	}
	return "", fmt.Errorf("duplicity in the appliance cannot write to %s:// targets", t.Scheme)
}

// DuplicityCommon are the options every duplicity run gets: per-client
// archive dir and temp dir on the cache volume, the ephemeral keyring,
// encryption to the recipients and signing.
func DuplicityCommon(j *job.Job, d Dirs, knownHosts string) []string {
	r := j.Repo
	argv := []string{
		"--name", safeName(r.CacheName(j.Client)),
		"--archive-dir", path.Join(d.Cache, "duplicity"),
		"--tempdir", path.Join(d.Cache, "tmp"),
		"--allow-source-mismatch",
		"--verbosity", "notice",
		// A dead target must not hang the job: duplicity retries a few
		// times (5 s apart, not its default 30 s), then gives up; lftp
		// gets the same timeout and retry count.
		"--num-retries", "3",
		"--backend-retry-delay", "5",
		"--timeout", "60",
	}
	switch r.Encryption {
	case "none":
		argv = append(argv, "--no-encryption")
	case "gpg":
		for _, k := range r.GPG.EncryptKeys {
			argv = append(argv, "--encrypt-key", k)
		}
		if r.GPG.SignKey != "" {
			argv = append(argv, "--sign-key", r.GPG.SignKey)
		}
		argv = append(argv, "--gpg-options", "--homedir="+d.GnuPGHome()+" --trust-model=always --pinentry-mode=loopback")
	default: // repokey: symmetric with the passphrase
		argv = append(argv, "--gpg-options", "--homedir="+d.GnuPGHome()+" --pinentry-mode=loopback")
	}
	if knownHosts != "" {
		argv = append(argv, "--ssh-options", "-oUserKnownHostsFile="+knownHosts)
	}
	if j.Backup != nil && !j.Backup.Time.IsZero() {
		argv = append(argv, "--current-time", strconv.FormatInt(j.Backup.Time.Unix(), 10))
	}
	return argv
}

// GnuPGHome is the ephemeral keyring, on the work tmpfs.
func (d Dirs) GnuPGHome() string { return path.Join(d.Work, "gnupg") }

// DuplicitySelection maps sources and excludes to duplicity's file
// selection below the snapshot dir: excludes first (first match wins),
// then the sources, then everything else excluded.
func DuplicitySelection(b job.Backup, snapshot string) ([]string, error) {
	src, err := SourceArgs(b.Source)
	if err != nil {
		return nil, err
	}
	argv := ExcludeArgs(b.Exclude, snapshot, func(e string) string { return "**/" + e })
	if len(src) == 1 && src[0] == "." {
		return argv, nil
	}
	for _, s := range src {
		argv = append(argv, "--include", path.Join(snapshot, s))
	}
	return append(argv, "--exclude", "**"), nil
}

// DuplicityBackupArgs builds duplicity's backup command. full forces a
// full backup (duplicity's "full"); otherwise "incremental" when a chain
// exists, with --full-if-older-than starting a new chain when due.
func DuplicityBackupArgs(common []string, j *job.Job, snapshot, url string) ([]string, error) {
	sel, err := DuplicitySelection(*j.Backup, snapshot)
	if err != nil {
		return nil, err
	}
	argv := append([]string{"duplicity"}, common...)
	if j.Repo.FullIfOlderThan != "" {
		argv = append(argv, "--full-if-older-than", j.Repo.FullIfOlderThan)
	}
	argv = append(argv, sel...)
	argv = append(argv, j.Repo.ExtraOptions...)
	return append(argv, snapshot, url), nil
}

var dupStat = regexp.MustCompile(`(?m)^(SourceFiles|SourceFileSize|TotalDestinationSizeChange|Errors) (-?[0-9]+)`)

// ParseDuplicityStats reads the "Backup Statistics" block.
func ParseDuplicityStats(out []byte) (job.Stats, error) {
	var rec job.Stats
	found := false
	for _, m := range dupStat.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		found = true
		switch m[1] {
		case "SourceFiles":
			rec.Files = n
		case "SourceFileSize":
			rec.OriginalSize = n
		case "TotalDestinationSizeChange":
			rec.DedupSize, rec.CompressedSize = n, n
		}
	}
	if !found {
		return rec, fmt.Errorf("duplicity: no backup statistics in the output")
	}
	return rec, nil
}

var dupChain = regexp.MustCompile(`(?m)^\s*(Full|Incremental)\s+(\w{3} \w{3} [ 0-9]\d \d\d:\d\d:\d\d \d{4})\s+\d+`)

// ParseDuplicityStatus lists the backup sets of collection-status output.
func ParseDuplicityStatus(out []byte) ([]Snapshot, error) {
	var s []Snapshot
	for _, m := range dupChain.FindAllStringSubmatch(string(out), -1) {
		t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", m[2], time.UTC)
		if err != nil {
			return nil, fmt.Errorf("duplicity collection-status: time %q: %w", m[2], err)
		}
		kind := job.KindIncr
		if m[1] == "Full" {
			kind = job.KindFull
		}
		s = append(s, Snapshot{ID: t.Format(time.RFC3339), Time: t, Full: m[1] == "Full", Kind: kind, Files: -1})
	}
	return s, nil
}

var dupFile = regexp.MustCompile(`^(\w{3} \w{3} [ 0-9]\d \d\d:\d\d:\d\d \d{4}) (.+)$`)

// ParseDuplicityFiles reads list-current-files: a time and a path a line.
func ParseDuplicityFiles(out []byte) ([]Entry, error) {
	var es []Entry
	for _, line := range strings.Split(string(out), "\n") {
		m := dupFile.FindStringSubmatch(line)
		if m == nil || m[2] == "." {
			continue
		}
		t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", m[1], time.Local)
		if err != nil {
			return nil, fmt.Errorf("duplicity list-current-files: time %q: %w", m[1], err)
		}
		es = append(es, Entry{Path: m[2], MTime: t, Size: -1})
	}
	return es, nil
}
