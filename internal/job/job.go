// Package job is the contract between hostctl (on the hypervisor) and the
// supervisor (PID 1 of the backup appliance): the job descriptor that the host
// writes to the job disk as job.toml, the result records the appliance writes
// back, and the names (virtio serials, 9p tags, file names) both sides use to
// find things. Both binaries import this one package so the two ends cannot
// drift apart.
package job

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// Version is bumped whenever Job or Record change incompatibly. The
// supervisor refuses a job whose version it does not know; hostctl refuses
// an appliance image whose supervisor speaks another (its manifest says).
//
// Version 2: the repository's target is a table (target.Target), not a
// URL to parse again, with the secrets its scheme needs by kind; a table
// per mode; records with typed payloads. FormatMark changes with it.
const Version = 2

// Virtio serials by which the supervisor finds its disks. Guest device names
// (vda, vdb, …) depend on PCI order and are never relied upon. A virtio-blk
// serial holds at most 20 bytes.
const (
	SerialAppliance = "sb-appliance" // the appliance image: p1 ESP, p2 squashfs root
	SerialCache     = "sb-cache"     // persistent cache volume (vdy)
	SerialJob       = "sb-job"       // this job's FAT32 job disk
	SerialRestore   = "sb-restore"   // restore destination disk (mode restore, RestoreDisk)
	// Snapshot disks are DiskSerialPrefix + index: sb-disk0, sb-disk1, …
	DiskSerialPrefix = "sb-disk"
)

// 9p mount tags of host directories handed to the appliance.
const (
	// TagTarget is a file target's directory: the client's repository
	// itself, never its parent (further destinations: TargetTag).
	TagTarget  = "sbtarget"
	TagRestore = "sbrestore" // restore destination directory on the host
)

// Files on the job disk.
const (
	FileJob    = "job.toml"
	FileResult = "result.jsonl" // Record per line; valid only when the last is a "done" record
	FileLog    = "job.log"      // the supervisor's and the backend's output
	// FileVMRecord is the VM record a list job was asked for (List.Record),
	// as the repository holds it (vmrecord's layout.json).
	FileVMRecord = "vmrecord.json"
	// SecretPrefix starts the names of this client's secret files (e.g.
	// secret-passphrase). They sit at the top level: go-diskfs 1.9.4 writes
	// FAT32 subdirectories that fsck.vfat rejects.
	SecretPrefix = "secret-"
)

// SecretFile is the name on the job disk of a secret a target needs.
func SecretFile(s target.Secret) string { return SecretPrefix + string(s) }

// MaxDestinations bounds a backup's destinations (Repo and Also).
const MaxDestinations = 8

// TargetTag is the 9p tag of destination i's file target: TagTarget for
// the first (Job.Repo), TagTarget+i for Also[i-1].
func TargetTag(i int) string {
	if i == 0 {
		return TagTarget
	}
	return fmt.Sprintf("%s%d", TagTarget, i)
}

// DestPrefix begins the names of destination i's secret files: "" for
// the first, "d1-" for Also[0], so that no two destinations share one.
func DestPrefix(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf("d%d-", i)
}

// Destinations are a backup's repositories in order: Repo, then Also.
func (j *Job) Destinations() []*Repo {
	if j.Repo == nil {
		return nil
	}
	out := []*Repo{j.Repo}
	for i := range j.Also {
		out = append(out, &j.Also[i])
	}
	return out
}

// CacheName is what the repository's caches are named by (Repo.Cache).
func (r *Repo) CacheName(client string) string {
	if r.Cache == "" {
		return client
	}
	return r.Cache
}

// cacheName is what Repo.Cache may be: a file name, no path.
var cacheName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ShareTag is the 9p tag of the repository's file target.
func (r *Repo) ShareTag() string {
	if r.Tag == "" {
		return TagTarget
	}
	return r.Tag
}

// Kernel command-line keys the supervisor understands. Nothing secret ever
// goes on the command line.
const (
	// CmdlineMode is "job" for the per-job appliances hostctl boots (a
	// missing job disk is then a failure, never an interactive shell that
	// would wait for nobody), "shell" for the rescue appliance; without it,
	// no job disk means the rescue shell.
	CmdlineMode    = "sb.mode"
	CmdlineModeJob = "job"
)

// VirtioPortProgress is the name of the virtio-serial port on which the
// supervisor streams Record lines while it works (/dev/virtio-ports/NAME).
const VirtioPortProgress = "org.snapshot-backup.progress"

// Modes of a job; each has its table in the job (modes.go).
const (
	ModeBackup  = "backup"
	ModeRestore = "restore"
	ModeShell   = "shell"
	ModeExec    = "exec"
	ModeList    = "list"
	ModeVerify  = "verify"
	ModePrune   = "prune"
)

// Job is what one appliance boot has to do. It is written by hostctl and read
// by the supervisor; it contains no secret, only paths to secret files on the
// job disk. The common part is here; what a mode needs is in its own table,
// and a job carries its mode's table and no other.
type Job struct {
	Version   int      `toml:"version"`
	Mode      string   `toml:"mode"`
	Client    string   `toml:"client"`
	RunID     string   `toml:"run_id"`
	TimeLimit Duration `toml:"time_limit"`
	// Nice and IONiceClass apply to the backend process ("idle", "best-effort", "realtime").
	Nice        int    `toml:"nice"`
	IONiceClass string `toml:"ionice_class"`

	// Repo is the client's repository: modes backup, restore, verify and
	// list have one, exec and shell none.
	Repo *Repo `toml:"repo,omitempty"`
	// Also are a backup's further destinations (a client with several
	// profiles): the same data, after Repo, each written by its own
	// backend with its own secrets. One failing does not stop the others;
	// each gets a RecDestination record. Only mode backup has them.
	Also []Repo `toml:"also,omitempty"`
	// Net configures the appliance's network; nil means no network (file
	// targets). Only a network target gets a network interface.
	Net *Net `toml:"net,omitempty"`
	// Disks are the client's disks the host attached: the snapshots of a
	// backup, its own disks for a recovery or a rescue shell, exec's.
	Disks []Disk `toml:"disks,omitempty"`

	// The mode's table: exactly one, the one Mode names.
	Backup  *Backup  `toml:"backup,omitempty"`
	Restore *Restore `toml:"restore,omitempty"`
	Verify  *Verify  `toml:"verify,omitempty"`
	List    *List    `toml:"list,omitempty"`
	Exec    *Exec    `toml:"exec,omitempty"`
	Shell   *Shell   `toml:"shell,omitempty"`
	Prune   *Prune   `toml:"prune,omitempty"`
}

// Net is the appliance's network configuration. The host attaches one
// virtio NIC; the supervisor configures it with ip(8) from the userland.
type Net struct {
	// Mode is "static" (or "") for Address/Gateway/DNS as given, "dhcp"
	// for a lease from the network's DHCP server (DNS, when set, then
	// overrides the lease's name servers).
	Mode string `toml:"mode,omitempty"`
	// Address in CIDR form, e.g. "10.0.2.15/24" (libvirt user networking).
	Address string   `toml:"address"`
	Gateway string   `toml:"gateway"`
	DNS     []string `toml:"dns"`
}

// Disk is one snapshot (or offline) disk of the client, attached with Serial.
type Disk struct {
	Serial string `toml:"serial"`
	// Dev is the disk's name in the client domain (vda, sdb, …), so that
	// backup.mount = "vda2" means the same thing on both sides.
	Dev string `toml:"dev"`
}

// Repo is where the backend repository lives and how it is protected.
type Repo struct {
	// Profile names the destination in logs and records (the profile's
	// name); set when the job has several (Job.Also).
	Profile string `toml:"profile,omitempty"`
	Backend string `toml:"backend"` // "borg", "duplicity" or "restic"
	// Target is where the repository is. A file target (one that needs no
	// network) is a directory of the host, shared with the appliance as
	// 9p share Tag; its Path is the host's, for the record.
	Target target.Target `toml:"target"`
	// Tag is the 9p tag of a file target's share: "" is TagTarget (the
	// first destination's), TargetTag(i) the i-th further one's.
	Tag string `toml:"tag,omitempty"`
	// Cache names the destination's caches on the cache volume
	// (duplicity's --name and archive dir, the check_every counter): ""
	// is the client's name (its first destination's, as before there
	// were several), CLIENT.PROFILE a further destination's.
	Cache string `toml:"cache,omitempty"`
	// Encryption: "none", "repokey" (borg, restic) or "gpg" (duplicity).
	Encryption string `toml:"encryption"`
	// PassphraseFile is relative to the job disk, e.g. "secret-passphrase".
	PassphraseFile string `toml:"passphrase_file"`
	Compression    string `toml:"compression"`

	// Secrets name the files on the job disk (SecretFile) that hold the
	// credentials the target's scheme needs (target.Scheme.Secrets),
	// never their contents.
	Secrets map[target.Secret]string `toml:"secrets,omitempty"`
	// SSH and S3 are the settings of targets over ssh and of s3 targets.
	SSH SSH `toml:"ssh,omitempty"`
	S3  S3  `toml:"s3,omitempty"`

	// GPG (duplicity): recipients, signer and the key files to import into
	// an ephemeral keyring.
	GPG GPG `toml:"gpg,omitempty"`

	Retention Retention `toml:"retention,omitempty"`
	// FullIfOlderThan is duplicity's --full-if-older-than ("1M", "7D").
	FullIfOlderThan string `toml:"full_if_older_than,omitempty"`
	// Verify runs duplicity verify (borg/restic: check) after the backup.
	Verify bool `toml:"verify,omitempty"`
	// CheckEvery runs the backend's consistency check every N backups
	// (counted on the cache volume); 0 never.
	CheckEvery int `toml:"check_every,omitempty"`
	// BandwidthLimit in bytes per second towards the target; 0 unlimited.
	BandwidthLimit int64 `toml:"bandwidth_limit,omitempty"`
	// ExtraOptions are appended to the backend's backup command as given.
	ExtraOptions []string `toml:"extra_options,omitempty"`
	// BreakLock: an earlier appliance of this client was stopped while it
	// used the repository (destroyed, or its hostctl killed), so the
	// repository may hold that appliance's lock, which no one will
	// release. The supervisor removes the repository's locks before
	// anything else. Only the host sets it, and only because its run lock
	// says that no other job of this client runs.
	BreakLock bool `toml:"break_lock,omitempty"`
}

// SSH client settings for targets over ssh (the identity and known_hosts
// are Repo.Secrets).
type SSH struct {
	ProxyCommand string `toml:"proxy_command,omitempty"`
}

// S3 settings for s3:// targets (s3://BUCKET/PREFIX; the keys are
// Repo.Secrets).
type S3 struct {
	Endpoint  string `toml:"endpoint,omitempty"` // e.g. "https://s3.example.net"; "" = AWS
	Region    string `toml:"region,omitempty"`
	PathStyle bool   `toml:"path_style,omitempty"`
}

// GPG is duplicity's public-key encryption and signing.
type GPG struct {
	EncryptKeys []string `toml:"encrypt_keys,omitempty"`
	SignKey     string   `toml:"sign_key,omitempty"`
	KeyFiles    []string `toml:"key_files,omitempty"` // on the job disk
}

// Retention is the policy applied after a successful backup. Zero values
// keep everything.
type Retention struct {
	// MaxAge removes backups older than this ("2M", "30D", "1Y"; duplicity
	// syntax, also understood for borg and restic).
	MaxAge            string `toml:"max_age,omitempty"`
	MaxFullBackups    int    `toml:"max_fullbackups,omitempty"`
	MaxFullsWithIncrs int    `toml:"max_fulls_with_incrs,omitempty"`
	KeepLast          int    `toml:"keep_last,omitempty"`
	KeepDaily         int    `toml:"keep_daily,omitempty"`
	KeepWeekly        int    `toml:"keep_weekly,omitempty"`
	KeepMonthly       int    `toml:"keep_monthly,omitempty"`
}

// Empty says whether the policy keeps everything.
func (r Retention) Empty() bool { return r == (Retention{}) }

// Duration is a time.Duration that reads and writes as "90m", "2h", "30s".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Marshal renders the job as TOML. It refuses a job that Parse would
// refuse: hostctl finds its own mistakes before an appliance boots.
func (j *Job) Marshal() ([]byte, error) {
	if err := j.check(); err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(j); err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	return b.Bytes(), nil
}

// Parse reads a job descriptor strictly: unknown keys and versions, a
// missing mode table or another mode's are errors, because a supervisor
// that ignored part of its job would do the wrong thing silently.
func Parse(data []byte) (*Job, error) {
	// The version first: a job of another format is refused as such,
	// not for the keys this format does not know.
	var v struct {
		Version int `toml:"version"`
	}
	if _, err := toml.Decode(string(data), &v); err != nil {
		return nil, fmt.Errorf("parse %s: %w", FileJob, err)
	}
	if v.Version != Version {
		return nil, fmt.Errorf("parse %s: version %d, this supervisor understands %d", FileJob, v.Version, Version)
	}
	var j Job
	md, err := toml.Decode(string(data), &j)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", FileJob, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, fmt.Errorf("parse %s: unknown key %q", FileJob, u[0].String())
	}
	if err := j.check(); err != nil {
		return nil, fmt.Errorf("parse %s: %w", FileJob, err)
	}
	return &j, nil
}

// check checks what Parse cannot leave to the decoder: the version, the
// mode and its table, the repository of the modes that read one.
func (j *Job) check() error {
	if j.Version != Version {
		return fmt.Errorf("version %d, this format is %d", j.Version, Version)
	}
	i := slices.IndexFunc(modeTables, func(m modeTable) bool { return m.mode == j.Mode })
	if i < 0 {
		return fmt.Errorf("unknown mode %q", j.Mode)
	}
	mode := modeTables[i]
	for _, m := range modeTables {
		if m.mode != j.Mode && m.set(j) {
			return fmt.Errorf("mode %q with a [%s] table: a job carries its own mode's table only", j.Mode, m.mode)
		}
	}
	switch {
	case !mode.set(j):
		return fmt.Errorf("mode %q without its [%s] table", j.Mode, j.Mode)
	case mode.repo && j.Repo == nil:
		return fmt.Errorf("mode %q without a [repo]", j.Mode)
	case !mode.repo && j.Repo != nil:
		return fmt.Errorf("mode %q reads no repository: a [repo] is not for it", j.Mode)
	case j.Mode == ModePrune && j.Repo.Retention.Empty():
		return fmt.Errorf("mode %q without a retention policy: nothing to prune", j.Mode)
	case len(j.Also) > 0 && j.Mode != ModeBackup:
		return fmt.Errorf("mode %q with [[also]] destinations: only a backup writes to several", j.Mode)
	case len(j.Also) >= MaxDestinations:
		return fmt.Errorf("%d destinations: at most %d", len(j.Also)+1, MaxDestinations)
	case mode.repo:
		return checkDestinations(j.Destinations())
	}
	return nil
}

// checkDestinations checks each repository and that no two share a
// secret file or a share: each destination reads its own secrets only.
func checkDestinations(repos []*Repo) error {
	files, tags := map[string]int{}, map[string]int{}
	for i, r := range repos {
		if err := r.check(); err != nil {
			if len(repos) > 1 {
				return fmt.Errorf("destination %d: %w", i, err)
			}
			return err
		}
		if len(repos) > 1 && r.Profile == "" {
			return fmt.Errorf("destination %d: no profile name (a job with several destinations names each)", i)
		}
		for _, f := range r.secretFiles() {
			if o, dup := files[f]; dup {
				return fmt.Errorf("destinations %d and %d share secret file %s", o, i, f)
			}
			files[f] = i
		}
		if !r.Target.NeedsNetwork() {
			if o, dup := tags[r.ShareTag()]; dup {
				return fmt.Errorf("destinations %d and %d share 9p tag %s", o, i, r.ShareTag())
			}
			tags[r.ShareTag()] = i
		}
	}
	return nil
}

// secretFiles are the job disk's files the repository reads.
func (r *Repo) secretFiles() []string {
	var out []string
	if r.PassphraseFile != "" {
		out = append(out, r.PassphraseFile)
	}
	out = append(out, r.GPG.KeyFiles...)
	for _, f := range r.Secrets {
		out = append(out, f)
	}
	return out
}

// check checks the repository's target and that the job names exactly the
// secret files its scheme needs, on the job disk's top level.
func (r *Repo) check() error {
	if err := r.Target.Check(); err != nil {
		return fmt.Errorf("repo: %w", err)
	}
	if r.Cache != "" && (!cacheName.MatchString(r.Cache) || strings.Contains(r.Cache, "..")) {
		return fmt.Errorf("repo: cache name %.64q: want letters, digits, '.', '_', '-'", r.Cache)
	}
	if r.Tag != "" && !strings.HasPrefix(r.Tag, TagTarget) {
		return fmt.Errorf("repo: 9p tag %.64q: want %s…", r.Tag, TagTarget)
	}
	need := r.Target.Scheme.Secrets()
	for _, s := range need {
		name := r.Secrets[s]
		if !strings.HasPrefix(name, SecretPrefix) || strings.Contains(name, "/") {
			return fmt.Errorf("repo: a %s:// target needs secret %s, a %s… file on the job disk (got %q)", r.Target.Scheme, s, SecretPrefix, name)
		}
	}
	for s := range r.Secrets {
		if !slices.Contains(need, s) {
			return fmt.Errorf("repo: secret %s is not one a %s:// target needs", s, r.Target.Scheme)
		}
	}
	return nil
}
