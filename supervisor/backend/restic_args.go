package backend

import (
	"encoding/json"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/retention"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// ResticRepo is the restic repository location for a job, plus the -o
// options it needs (sftp command, S3 addressing).
func ResticRepo(r job.Repo, local string, d Dirs) (string, []string, error) {
	t := r.Target
	switch t.Scheme {
	case target.File:
		return local, nil, nil
	case target.SFTP, target.SSH:
		// restic takes host and path from the repository string; user,
		// port, keys, known_hosts and a ProxyCommand from the ssh config.
		cmd := fmt.Sprintf("ssh -F %s %s -s sftp", d.SSHConfigPath(), t.Host)
		return "sftp:" + t.Host + ":" + t.Path, []string{"-o", "sftp.command=" + cmd}, nil
	case target.S3:
		endpoint := "s3.amazonaws.com"
		if r.S3.Endpoint != "" {
			endpoint = r.S3.Endpoint
		}
		opts := []string{}
		if r.S3.PathStyle {
			opts = append(opts, "-o", "s3.bucket-lookup=path")
		}
		if r.S3.Region != "" {
			opts = append(opts, "-o", "s3.region="+r.S3.Region)
		}
		return "s3:" + strings.TrimSuffix(endpoint, "/") + "/" + t.Host + t.Path, opts, nil
	case target.REST:
		// The URL carries the password: restic reads it from a file in
		// the work dir (prepareTarget), so it is in no argv and no log.
		// The server's certificate is the only one restic trusts.
		return "", []string{"--repository-file", d.ResticRepositoryFile(), "--cacert", d.secret(r.Secrets[target.RESTCA])}, nil
	}
	return "", nil, fmt.Errorf("restic cannot write to %s:// targets", t.Scheme)
}

// ResticRepositoryFile is where prepareTarget writes a rest:// target's
// repository URL, with its password.
func (d Dirs) ResticRepositoryFile() string { return path.Join(d.Work, "restic-repository") }

// ResticRESTURL is restic's repository URL for a rest:// target, always
// HTTPS: rest:https://USER:PASSWORD@HOST:PORT/PATH.
func ResticRESTURL(t target.Target, password string) string {
	u := url.URL{Scheme: "https", User: url.UserPassword(t.User, password), Host: hostPort(t.Host, t.PortOrDefault()), Path: t.Path}
	return "rest:" + u.String()
}

// ResticEnv is the environment of every restic run: the password from its
// file on the job disk (restic reads the file; its content is never in the
// environment), the cache per client on the cache volume, S3 credentials
// from a file in the work dir.
func ResticEnv(client, passFile string, d Dirs) []string {
	env := []string{
		"RESTIC_CACHE_DIR=" + path.Join(d.Cache, "restic", safeName(client)),
		"TMPDIR=" + path.Join(d.Cache, "tmp"),
		"HOME=" + d.Home(),
		"AWS_SHARED_CREDENTIALS_FILE=" + path.Join(d.Work, "aws-credentials"),
		"RESTIC_PROGRESS_FPS=0.5",
	}
	if passFile != "" {
		env = append(env, "RESTIC_PASSWORD_FILE="+passFile)
	}
	return env
}

// ResticGlobal are the options before the subcommand; repo "" when opts
// name a --repository-file.
func ResticGlobal(repo string, opts []string, r job.Repo) []string {
	argv := []string{"restic"}
	if repo != "" {
		argv = append(argv, "--repo", repo)
	}
	if r.BandwidthLimit > 0 {
		argv = append(argv, "--limit-upload", strconv.FormatInt(max(1, r.BandwidthLimit/1024), 10))
	}
	return append(argv, opts...)
}

// ResticBackupArgs builds restic backup (run with cwd at the snapshot).
// Paths are given absolute below the snapshot mount: restic 0.14 stores
// absolute paths, and the restore strips the mount point again.
func ResticBackupArgs(global []string, j *job.Job, snapshot string) ([]string, error) {
	src, err := SourceArgs(j.Backup.Source)
	if err != nil {
		return nil, err
	}
	argv := append(append([]string(nil), global...), "backup", "--json", "--host", j.Client, "--tag", retention.ResticTag)
	if !j.Backup.Time.IsZero() {
		argv = append(argv, "--time", j.Backup.Time.UTC().Format("2006-01-02 15:04:05"))
	}
	// restic matches a pattern without a slash against every name.
	argv = append(argv, ExcludeArgs(j.Backup.Exclude, snapshot, func(e string) string { return e })...)
	argv = append(argv, j.Repo.ExtraOptions...)
	argv = append(argv, "--")
	for _, s := range src {
		argv = append(argv, path.Join(snapshot, s))
	}
	return argv, nil
}

// resticSummary is restic backup --json's last line.
type resticSummary struct {
	MessageType string  `json:"message_type"`
	FilesNew    int64   `json:"files_new"`
	DataAdded   int64   `json:"data_added"`
	Files       int64   `json:"total_files_processed"`
	Bytes       int64   `json:"total_bytes_processed"`
	SnapshotID  string  `json:"snapshot_id"`
	Duration    float64 `json:"total_duration"`
}

// ParseResticBackup finds the summary in restic backup --json output.
func ParseResticBackup(out []byte) (job.Stats, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var s resticSummary
		if json.Unmarshal([]byte(lines[i]), &s) == nil && s.MessageType == "summary" {
			return job.Stats{Archive: s.SnapshotID, OriginalSize: s.Bytes,
				DedupSize: s.DataAdded, Files: s.Files}, nil
		}
	}
	return job.Stats{}, fmt.Errorf("restic backup --json: no summary in the output")
}

// ParseResticError reads one of restic backup --json's error messages on
// stderr: the item it could not archive and why ("read: input/output
// error"). Scan errors are left out: the archiver reports the same item
// again.
func ParseResticError(line string) (item, why string, ok bool) {
	if !strings.Contains(line, `"message_type":"error"`) {
		return "", "", false
	}
	var e struct {
		MessageType string `json:"message_type"`
		Error       struct {
			Op  string          `json:"Op"`
			Err json.RawMessage `json:"Err"`
		} `json:"error"`
		During string `json:"during"`
		Item   string `json:"item"`
	}
	if json.Unmarshal([]byte(line), &e) != nil || e.MessageType != "error" || e.During == "scan" || e.Item == "" {
		return "", "", false
	}
	// An *fs.PathError: the errno as a number (Go's syscall.Errno).
	var errno int
	var text string
	switch {
	case json.Unmarshal(e.Error.Err, &errno) == nil && errno > 0:
		text = syscall.Errno(errno).Error()
	case json.Unmarshal(e.Error.Err, &text) == nil:
	}
	if e.Error.Op != "" && text != "" {
		why = e.Error.Op + ": " + text
	}
	return e.Item, why, true
}

// ParseResticSnapshots reads restic snapshots --json.
func ParseResticSnapshots(out []byte) ([]Snapshot, error) {
	var l []struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
		Tags []string  `json:"tags"`
	}
	if err := json.Unmarshal(out, &l); err != nil {
		return nil, fmt.Errorf("parse restic snapshots --json: %w", err)
	}
	// A VM record snapshot is no backup: it names its backup by a tag.
	records := map[string]string{}
	isRecord := func(tags []string) (of string, ok bool) {
		if !slices.Contains(tags, vmrecord.ResticTag) {
			return "", false
		}
		for _, t := range tags {
			if strings.HasPrefix(t, vmrecord.ResticOf) {
				of = strings.TrimPrefix(t, vmrecord.ResticOf)
			}
		}
		return of, true
	}
	for _, x := range l {
		if of, ok := isRecord(x.Tags); ok && of != "" {
			records[of] = x.ID
		}
	}
	var s []Snapshot
	for _, x := range l {
		if _, ok := isRecord(x.Tags); ok {
			continue
		}
		vm := records[x.ID]
		if vm == "" && len(x.ID) >= 8 {
			vm = records[x.ID[:8]] // restic 0.14's backup --json names the short id
		}
		s = append(s, Snapshot{ID: x.ID, Time: x.Time, Full: true, Kind: job.KindSnapshot, Files: -1, VM: vm})
	}
	return s, nil
}

// ParseResticLs reads restic ls --json: the nodes below the snapshot
// mount point root, with paths relative to it.
func ParseResticLs(out []byte, root string) ([]Entry, error) {
	var es []Entry
	prefix := strings.TrimSuffix(root, "/") + "/"
	for n, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var it struct {
			StructType string      `json:"struct_type"`
			Type       string      `json:"type"`
			Path       string      `json:"path"`
			Size       int64       `json:"size"`
			Mode       fs.FileMode `json:"mode"`
			MTime      time.Time   `json:"mtime"`
		}
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			return nil, fmt.Errorf("parse restic ls --json line %d: %w", n+1, err)
		}
		if it.StructType != "node" || !strings.HasPrefix(it.Path, prefix) {
			continue
		}
		e := Entry{Path: strings.TrimPrefix(it.Path, prefix), Size: it.Size, Mode: it.Mode.Perm(), MTime: it.MTime}
		switch it.Type {
		case "file":
			e.Type = EntryFile
		case "dir":
			e.Type = EntryDir
		case "symlink":
			e.Type = EntrySymlink
		default:
			e.Type = EntryOther
		}
		es = append(es, e)
	}
	return es, nil
}
