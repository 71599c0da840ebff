package backend

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// BorgEnv is the environment of every borg run. The base dir (cache,
// security dir, keys) is per client on the persistent cache volume, so the
// files cache hits and repeated backups only read changed files.
func BorgEnv(client, cacheDir string) []string {
	return []string{
		"BORG_BASE_DIR=" + path.Join(cacheDir, "borg", safeName(client)),
		"TMPDIR=" + path.Join(cacheDir, "tmp"),
		"BORG_RELOCATED_REPO_ACCESS_IS_OK=yes",
		"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes",
		"BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO",
		"BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO",
		"BORG_HOSTNAME_IS_UNIQUE=yes",
	}
}

// passFD is the fd number of the passphrase pipe (ExtraFiles[0]).
const passFD = 3

// PassphraseEnv tells borg where to read the passphrase.
func PassphraseEnv() string { return fmt.Sprintf("BORG_PASSPHRASE_FD=%d", passFD) }

func safeName(s string) string {
	if s == "" {
		return "default"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// CreateOpts are the inputs of BorgCreateArgs.
type CreateOpts struct {
	Repo        string
	Archive     string
	Compression string
	Source      []string
	Exclude     []string
	Time        time.Time // --timestamp; zero: now
	RateLimit   int64     // bytes/s towards a remote repository; 0 unlimited
	Extra       []string  // the profile's extra_options
}

// BorgCreateArgs builds the borg create argv (run with cwd SnapshotDir).
func BorgCreateArgs(o CreateOpts) ([]string, error) {
	if o.Archive == "" {
		return nil, fmt.Errorf("borg create: no archive name")
	}
	src, err := SourceArgs(o.Source)
	if err != nil {
		return nil, err
	}
	ex, err := ExcludePatterns(o.Exclude)
	if err != nil {
		return nil, err
	}
	// --list --filter=EC: a machine-readable line for every file borg
	// could not read (E) or that changed while it read it (C).
	argv := []string{"borg", "create", "--log-json", "--progress", "--json", "--numeric-ids", "--list", "--filter=EC"}
	if o.Compression != "" {
		argv = append(argv, "--compression", o.Compression)
	}
	for _, p := range ex {
		argv = append(argv, "--exclude", p)
	}
	if !o.Time.IsZero() {
		argv = append(argv, "--timestamp", o.Time.UTC().Format("2006-01-02T15:04:05"))
	}
	if o.RateLimit > 0 && strings.HasPrefix(o.Repo, "ssh://") {
		argv = append(argv, "--upload-ratelimit", strconv.FormatInt(max(1, o.RateLimit/1024), 10))
	}
	argv = append(argv, o.Extra...)
	argv = append(argv, "--", o.Repo+"::"+o.Archive)
	return append(argv, src...), nil
}

// BorgInitArgs builds the borg init argv; it creates the repository's
// parent directories (on an ssh server too, where the supervisor cannot).
func BorgInitArgs(repo, encryption string) ([]string, error) {
	switch encryption {
	case "none", "repokey", "repokey-blake2", "authenticated", "authenticated-blake2":
	case "":
		encryption = "repokey"
	default:
		return nil, fmt.Errorf("borg init: unsupported encryption %q", encryption)
	}
	return []string{"borg", "init", "--log-json", "--encryption=" + encryption, "--make-parent-dirs", "--", repo}, nil
}

// BorgLastArgs lists the archives as JSON (ParseBorgLast picks the
// newest backup: the newest archive can be a VM record).
func BorgLastArgs(repo string) []string {
	return []string{"borg", "list", "--log-json", "--json", "--", repo}
}

// BorgExtractArgs builds the borg extract argv (run with cwd RestoreDir):
// the whole archive, or only paths (as stored: relative) and below.
// --sparse: all-zero chunks become holes, so a sparse file (a VM image, a
// database's preallocated file) takes on the restored filesystem about
// the room it took on the backed-up one, not its full size.
func BorgExtractArgs(repo, archive string, paths []string) []string {
	return append([]string{"borg", "extract", "--log-json", "--progress", "--numeric-ids", "--sparse", "--", repo + "::" + archive}, paths...)
}

// BorgEntriesArgs lists an archive's items as JSON lines with their
// content hash: borg reads (and authenticates) every chunk to compute it.
func BorgEntriesArgs(repo, archive string) []string {
	return []string{"borg", "list", "--log-json", "--json-lines", "--format", "{size}{mtime}{sha256}", "--", repo + "::" + archive}
}

// BorgInfoArgs describes every archive with its sizes.
func BorgInfoArgs(repo string) []string {
	return []string{"borg", "info", "--log-json", "--json", "--glob-archives", "*", "--", repo}
}
