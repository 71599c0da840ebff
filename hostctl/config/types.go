// Package config loads the host configuration, the backup profiles and the
// clients from TOML, strictly: an unknown key, a wrong type, a missing
// required field or a bad duration or size is an error naming the file, the
// line and the key.
package config

import "github.com/snapshot-backup/snapshot-backup/internal/job"

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
}

// Host is hostctl.toml.
type Host struct {
	LibvirtURI     string       `toml:"libvirt_uri"`     // default "qemu:///system"
	StateDir       string       `toml:"state_dir"`       // default DefaultStateDir
	ProfilesDir    string       `toml:"profiles_dir"`    // default <dir of hostctl.toml>/profiles
	ClientsDir     string       `toml:"clients_dir"`     // default <dir of hostctl.toml>/clients
	ImageDir       string       `toml:"image_dir"`       // default <state_dir>/image
	DefaultProfile string       `toml:"default_profile"` // used by clients without profile
	Nice           int          `toml:"nice"`            // default 19
	IONice         string       `toml:"ionice"`          // "idle" (default), "best-effort", "realtime"
	TimeLimit      job.Duration `toml:"time_limit"`      // per job, default 6h
	RunTimeLimit   job.Duration `toml:"run_time_limit"`  // whole run; default none
	Report         Report       `toml:"report"`
	Appliance      Appliance    `toml:"appliance"`
	Cache          Cache        `toml:"cache"`
}

// Appliance sizes the per-job appliance VM.
type Appliance struct {
	MemoryMiB int    `toml:"memory_mib"` // default 1024
	VCPUs     int    `toml:"vcpus"`      // default 2
	Accel     string `toml:"accel"`      // "auto" (default: KVM if it works, else TCG), "kvm", "tcg"
}

// Cache is the persistent cache volume given to every appliance as vdy.
type Cache struct {
	Type string `toml:"type"` // "file" (default) or "lvm"
	// Path of the cache image for type "file" (default <state_dir>/cache.qcow2),
	// or "vg/lv" for type "lvm".
	Path string `toml:"path"`
	Size Size   `toml:"size"` // default 8G
}

// Profile is one profiles/NAME.toml: how and where clients are backed up.
type Profile struct {
	Name       string     `toml:"-"`
	File       string     `toml:"-"`
	Backend    string     `toml:"backend"` // required: "borg" ("duplicity", "restic" later)
	Target     string     `toml:"target"`  // required: file:///srv/backup/{client}; {client} is replaced
	Encryption Encryption `toml:"encryption"`
	Borg       Borg       `toml:"borg"`
}

// Encryption of the repository.
type Encryption struct {
	Mode           string `toml:"mode"`            // "none" or "repokey" (default "repokey" when passphrase_file is set)
	PassphraseFile string `toml:"passphrase_file"` // required for repokey; must be mode 0600 or stricter
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
	Name      string       `toml:"-"`
	File      string       `toml:"-"`
	Type      string       `toml:"type"`   // default TypeLVMLibvirt
	Domain    string       `toml:"domain"` // libvirt domain; default the client name
	Profile   string       `toml:"profile"`
	OfflineOK *bool        `toml:"offline_ok"` // default true
	TimeLimit job.Duration `toml:"time_limit"` // default Host.TimeLimit
	Hooks     Hooks        `toml:"hooks"`
	Backup    ClientBackup `toml:"backup"`
}

// ClientBackup says what of the client is backed up.
type ClientBackup struct {
	// Mount and Mounts are what backup.mount says (MountSpec): one
	// selector ("auto" (default), "vda", "vda2", "vg/lv", "LABEL=…",
	// "UUID=…", "fstab") or a table of mount point = selector.
	Mount     string           `toml:"-"`
	Mounts    []job.MountPoint `toml:"-"`
	MountSpec MountSpec        `toml:"mount"`
	Source  []string `toml:"source"`  // absolute paths, default ["/"]
	Exclude []string `toml:"exclude"` // absolute paths or patterns
}

// Size is a byte count written as "512M", "8G", "1T" or a plain number of bytes.
type Size int64
