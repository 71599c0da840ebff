// Package config loads the host configuration, the backup profiles and the
// clients from TOML, strictly: an unknown key, a wrong type, a missing
// required field or a bad duration or size is an error naming the file, the
// line and the key.
package config

import (
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// Default locations.
const (
	DefaultPath     = "/etc/hostctl/hostctl.toml"
	DefaultStateDir = "/var/lib/hostctl"
)

// Config is everything hostctl knows about this host.
type Config struct {
	Path     string // the host config file this was loaded from
	Host     Host
	Profiles map[string]*Profile // by name (file name without .toml)
	Clients  map[string]*Client  // by name (file name without .toml)

	// lines holds, per file, the line of every key that was set, for
	// validation messages; nil for a Config built in code.
	lines map[string]keyLines
	// resolved holds every client resolved (Resolve), by name.
	resolved map[string]*Resolved
}

// Host is hostctl.toml.
type Host struct {
	LibvirtURI string `toml:"libvirt_uri"` // the libvirt connection of the clients' domains
	StateDir   string `toml:"state_dir"`   // ledger, run logs, reports, the clients' cache images
	// Where each job's job disk, which carries the client's secrets, lives
	// while the job runs: <run_dir>/RUN_ID/CLIENT/job.img, removed after the
	// job (and by the next run after a crash). Keep it on a tmpfs (/run is
	// one on systemd hosts; `hostctl check` warns when it is not) so the
	// secrets never reach a disk.
	RunDir string `toml:"run_dir"`
	// The free space the state dir's filesystem must have before a backup
	// job takes its snapshot ("0": no check), else the job is refused: the
	// overlays that receive a running guest's writes during its backup live
	// there, and a guest whose overlay cannot grow is paused by QEMU until
	// there is room.
	MinFreeSpace   Size         `toml:"min_free_space"`
	ProfilesDir    string       `toml:"profiles_dir"`    // default <dir of hostctl.toml>/profiles
	ClientsDir     string       `toml:"clients_dir"`     // default <dir of hostctl.toml>/clients
	ImageDir       string       `toml:"image_dir"`       // default <state_dir>/image
	DefaultProfile string       `toml:"default_profile"` // used by clients without profile
	Nice           int          `toml:"nice"`            // default 19
	IONice         string       `toml:"ionice"`          // "idle" (default), "best-effort", "realtime"
	TimeLimit      job.Duration `toml:"time_limit"`      // per job, default 6h, at most 30 days
	RunTimeLimit   job.Duration `toml:"run_time_limit"`  // whole run; default none, at most 30 days
	VerifyEvery    int          `toml:"verify_every"`    // hostctl run verifies a client (hostctl verify) after every Nth successful backup; 0 never (default); clients may override
	VerifySample   int          `toml:"verify_sample"`   // such a verify restores this many files chosen at random; 0 all (default); clients may override
	Report         Report       `toml:"report"`
	Appliance      Appliance    `toml:"appliance"`
	Network        Network      `toml:"network"`
	Cache          Cache        `toml:"cache"`
	LVM            LVM          `toml:"lvm"`
}

// Appliance sizes the per-job appliance VM.
type Appliance struct {
	MemoryMiB int    `toml:"memory_mib"` // default 1024; 256 .. 65536
	VCPUs     int    `toml:"vcpus"`      // default 2; 1 .. 64, and check refuses more than the host's CPUs
	Accel     string `toml:"accel"`      // "auto" (default: KVM if it works, else TCG), "kvm", "tcg"
}

// Network is the appliance's address for targets that need a network
// (sftp, ftp, s3). The appliance gets a virtio NIC on libvirt user-mode
// networking (outgoing connections only, NATed by QEMU); file:// targets
// get no NIC at all.
type Network struct {
	// "static" (default) or "dhcp": address, gateway and DNS from the
	// network's DHCP server (QEMU's user-mode networking has one); dns, when
	// set, overrides the lease's.
	Mode    string   `toml:"mode"`
	Address string   `toml:"address"` // CIDR, default "10.0.2.15/24" (static only)
	Gateway string   `toml:"gateway"` // default "10.0.2.2" (QEMU's user-mode gateway: the host; static only)
	DNS     []string `toml:"dns"`     // default ["10.0.2.3"] for static, the lease's for dhcp
}

// Cache is where the clients' persistent cache volumes live: each client
// has its own (borg's and restic's caches, duplicity's archive dir, the
// check counter, a plain client's files), created on first use and given
// to that client's appliances only, as vdy.
type Cache struct {
	// Type "file" (default): a qcow2 image per client, <dir>/<client>.qcow2;
	// "lvm": a logical volume per client, <vg>/hostctl-cache-<client>.
	Type string `toml:"type"`
	Dir  string `toml:"dir"`  // type "file": where the images are; default <state_dir>/caches
	VG   string `toml:"vg"`   // type "lvm": the volume group of the cache LVs (required then)
	Size Size   `toml:"size"` // of each client's cache volume; default 8G; 256M .. 64T
	// Path named the one cache volume that all clients shared in earlier
	// versions; it is refused with what to do instead (the old volume can
	// be deleted: each client's cache is rebuilt by its next backup).
	Path string `toml:"path"`
}

// Profile is one profiles/NAME.toml: how and where clients are backed up.
type Profile struct {
	Name       string     `toml:"-"`
	File       string     `toml:"-"`
	Backend    string     `toml:"backend"` // required: "borg", "duplicity" or "restic"
	Target     string     `toml:"target"`  // required: file:///srv/backup/{client}; {client} is replaced
	Encryption Encryption `toml:"encryption"`
	Retention  Retention  `toml:"retention"`
	SSH        SSH        `toml:"ssh"`
	S3         S3         `toml:"s3"`
	FTP        FTP        `toml:"ftp"`
	REST       REST       `toml:"rest"`
	Borg       Borg       `toml:"borg"`
	Duplicity  Duplicity  `toml:"duplicity"`
	// CheckEvery runs borg check / restic check / duplicity verify after
	// every Nth ok backup of a client; 0 (default) never.
	CheckEvery int `toml:"check_every"`
	// BandwidthLimit caps the upload rate in bytes per second ("2M",
	// 1K .. 100G); 0 unlimited.
	BandwidthLimit Size `toml:"bandwidth_limit"`
	// ExtraOptions are appended to the backend's backup command.
	ExtraOptions []string `toml:"extra_options"`
	// AppendOnly: backup jobs can add backups to the target but not delete or rewrite them: borg over ssh, whose key target setup installs with the forced command borg serve --append-only, restic to a rest:// server run with --append-only, or restic to an s3:// bucket whose policy refuses deletions (README: S3 bucket policy); backup jobs then never prune, retention is the maintenance credential's or the backup server's.
	AppendOnly  bool        `toml:"append_only"`
	Maintenance Maintenance `toml:"maintenance"`

	sample target.Target // Sample
}

// Maintenance is the credential of an append-only profile's retention,
// which backup appliances never receive.
type Maintenance struct {
	// IdentityFile: the ssh key of prune jobs, which may delete (target setup installs it with borg serve restricted to the clients' repositories, without --append-only); mode 0600; {client} allowed.
	IdentityFile string `toml:"identity_file"`
	// PasswordFile: rest:// targets: the password of the target's user on the maintenance REST server (the same --path, without --append-only), which prune jobs use; mode 0600; {client} allowed.
	PasswordFile string `toml:"password_file"`
	// Port: rest:// targets: the maintenance REST server's port, on the target's host (required with password_file).
	Port int `toml:"port"`
}

// Encryption of the repository.
type Encryption struct {
	// "none", "repokey" (borg, restic; default when passphrase_file is set)
	// or "gpg" (duplicity; default when encrypt_keys is set).
	Mode string `toml:"mode"`
	// PassphraseFile: the repository passphrase (repokey), or for gpg the
	// signing key's passphrase (optional). Must be mode 0600 or stricter.
	// {client} is replaced by the client's name, as in every secret file
	// path of a profile: each client gets its own passphrase.
	PassphraseFile string `toml:"passphrase_file"`
	// EncryptKeys are the gpg recipients (fingerprints) every volume is
	// encrypted to (hostctl keygen gpg makes one).
	EncryptKeys []string `toml:"encrypt_keys"`
	// SignKey is the fingerprint of the gpg key that signs every volume;
	// its secret part must be in key_files.
	SignKey string `toml:"sign_key"`
	// KeyFiles are imported into the appliance's throwaway keyring (mode
	// 0600 each): the recipients' public keys, the signing secret key, and
	// a recipient's secret key when restores or verify should work;
	// {client} allowed.
	KeyFiles []string `toml:"key_files"`
}

// Retention is what survives after each backup; unset keeps everything.
type Retention struct {
	MaxAge            string `toml:"max_age"`              // remove backups older than this, never the newest: "2M", "30D", "1Y", "12h" (s m h D W M Y; 1h .. 100Y)
	MaxFullBackups    int    `toml:"max_fullbackups"`      // duplicity: keep this many full chains (at most 100000, as every count)
	MaxFullsWithIncrs int    `toml:"max_fulls_with_incrs"` // duplicity: keep incrementals of this many newest chains
	KeepLast          int    `toml:"keep_last"`            // borg, restic: keep the newest N backups (1 with max_age alone)
	KeepDaily         int    `toml:"keep_daily"`           // borg, restic: keep the last backup of each of N days
	KeepWeekly        int    `toml:"keep_weekly"`          // borg, restic: … of N weeks
	KeepMonthly       int    `toml:"keep_monthly"`         // borg, restic: … of N months
}

// SSH options for sftp:// and ssh:// targets.
type SSH struct {
	IdentityFile string `toml:"identity_file"` // required; mode 0600; {client} allowed
	KnownHosts   string `toml:"known_hosts"`   // required: the pinned host key(s); {client} allowed
	ProxyCommand string `toml:"proxy_command"` // optional, as in ssh_config (%h, %p)
}

// S3 options for s3://BUCKET/PREFIX targets.
type S3 struct {
	Endpoint      string `toml:"endpoint"`        // "http(s)://host:port"; empty for AWS
	Region        string `toml:"region"`          // e.g. "us-east-1"
	PathStyle     bool   `toml:"path_style"`      // bucket in the path (self-hosted S3)
	AccessKeyFile string `toml:"access_key_file"` // required; mode 0600; {client} allowed
	SecretKeyFile string `toml:"secret_key_file"` // required; mode 0600; {client} allowed
}

// FTP options for ftp:// and ftps:// targets.
type FTP struct {
	PasswordFile string `toml:"password_file"` // required; mode 0600; {client} allowed
}

// REST options for rest://USER@HOST[:PORT]/PATH targets (restic's REST
// server, over HTTPS).
type REST struct {
	PasswordFile string `toml:"password_file"` // required: the user's password; mode 0600; {client} allowed
	CAFile       string `toml:"ca_file"`       // required: the server's certificate or its CA, the only one the appliance trusts (PEM); mode 0600; {client} allowed
}

// Duplicity options.
type Duplicity struct {
	FullIfOlderThan string `toml:"full_if_older_than"` // e.g. "1M": a full backup when the last is older (1h .. 100Y)
	Verify          bool   `toml:"verify"`             // duplicity verify after every backup
}

// Borg options.
type Borg struct {
	Compression string `toml:"compression"` // default "lz4"
}

// Client types.
const (
	TypeLVMLibvirt = "lvm_libvirt"
	TypeLVMHost    = "lvm_host"
	TypeSelf       = "self"
	TypePlain      = "plain"
)

// Client is one clients/NAME.toml: one thing to back up.
type Client struct {
	Name    string `toml:"-"`
	File    string `toml:"-"`
	Type    string `toml:"type"`    // "lvm_libvirt", "lvm_host", "self" or "plain"
	Domain  string `toml:"domain"`  // libvirt domain; default the client name; no control characters, not starting with "-"
	Profile string `toml:"profile"` // the profile's name; default default_profile of hostctl.toml
	// Profiles are the client's destinations when it has more than one
	// (instead of profile): every backup goes to each, from one snapshot.
	Profiles     []string     `toml:"profiles"`
	OfflineOK    *bool        `toml:"offline_ok"`    // back up a shut-off domain from its disks; false skips it (exit 3)
	TimeLimit    job.Duration `toml:"time_limit"`    // of the job; default time_limit of hostctl.toml; at most 30 days
	VerifyEvery  int          `toml:"verify_every"`  // verify after every Nth successful backup; default verify_every of hostctl.toml
	VerifySample int          `toml:"verify_sample"` // files a scheduled verify restores (0 all); default verify_sample of hostctl.toml
	Hooks        Hooks        `toml:"hooks"`
	// SnapshotSize overrides [lvm] snapshot_size for this client's LVs.
	SnapshotSize SnapshotSize `toml:"snapshot_size"`
	// Settings of the other client types (clienttypes.go).
	Paths        []string     `toml:"paths"`         // self: absolute host directories, shared read-only
	PlainDir     string       `toml:"plain_dir"`     // plain: a directory on the client's own cache volume
	HostDevice   string       `toml:"host_device"`   // lvm_host: the host's LV, "vg/lv"
	TargetDevice string       `toml:"target_device"` // lvm_host: how the appliance sees it, default "vda"
	Backup       ClientBackup `toml:"backup"`
}

// ClientBackup says what of the client is backed up.
type ClientBackup struct {
	// Which filesystem(s) of the client: "auto" (default), "vda",
	// "vda2", "vg/lv", "LABEL=…", "UUID=…", "fstab", or a table of
	// mount point = selector.
	Mount   MountSpec `toml:"mount"`
	Source  []string  `toml:"source"`  // absolute paths, default ["/"]
	Exclude []string  `toml:"exclude"` // absolute paths or patterns
}

// Size is a byte count written as "512M", "8G", "1T" or a plain number of bytes.
type Size int64
