package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/target"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// validator collects semantic problems, each at the line of its key.
type validator struct {
	c    *Config
	errs Errors
}

func (v *validator) at(file, key, format string, args ...any) {
	v.errs = append(v.errs, &ConfigError{File: file, Line: v.c.lines[file][key], Key: key, Msg: fmt.Sprintf(format, args...), MissingFile: missingArg(args)})
}

// missingArg says whether one of args is a secret file that does not exist
// (see LoadAllowMissing).
func missingArg(args []any) bool {
	for _, a := range args {
		var m *missingFileError
		if err, ok := a.(error); ok && errors.As(err, &m) {
			return true
		}
	}
	return false
}

// missingFileError is a secret file that does not exist (yet).
type missingFileError struct{ name string }

func (e *missingFileError) Error() string { return e.name + " does not exist" }
func (e *missingFileError) Unwrap() error { return fs.ErrNotExist }

// atOr is at for a key that may be missing: the line is that of key, or of
// near when key was not written.
func (v *validator) atOr(file, key, near, format string, args ...any) {
	line := v.c.lines[file][key]
	if line == 0 {
		line = v.c.lines[file][near]
	}
	v.errs = append(v.errs, &ConfigError{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// set says whether key was written in file; for a Config built in code
// (no line information) everything counts as written.
func (v *validator) set(file, key string) bool {
	kl := v.c.lines[file]
	return kl == nil || kl.has(key)
}

// Validate checks the meaning of a loaded (or hand-built) configuration:
// known names and types, existing profiles, target URLs, secret file
// permissions, mount selectors, limits. Load calls it; it returns Errors.
//
// Parts of the design that this version does not implement yet (client types
// other than lvm_libvirt, backends other than borg, targets other than
// file://) parse fine but are reported here as "not supported yet".
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.host()
	v.lvm()
	v.report()
	v.bounds() // durations, sizes and counts: bounds.go
	for _, name := range sortedKeys(c.Profiles) {
		v.profile(c.Profiles[name])
	}
	for _, name := range sortedKeys(c.Clients) {
		v.client(c.Clients[name])
		v.clientType(c.Clients[name])
		v.hooks(c.Clients[name])
	}
	return v.errs.errOrNil()
}

var (
	ioniceClasses = []string{"idle", "best-effort", "realtime"}
	accels        = []string{"auto", "kvm", "tcg"}
	cacheTypes    = []string{"file", "lvm"}
	networkModes  = []string{"static", "dhcp"}
	lvName        = regexp.MustCompile(`^[A-Za-z0-9+_.-]+/[A-Za-z0-9+_.-]+$`)
)

// Bounds of the appliance's size: the kernel, the squashfs overlay in RAM
// and borg's caches need the minimum; the maxima catch typos (a size in KiB,
// a core count of the whole cluster) before libvirt refuses the domain at
// the first backup.
const (
	minMemoryMiB = 256
	maxMemoryMiB = 65536
	maxVCPUs     = 64
)

func (v *validator) host() {
	h, f := &v.c.Host, v.c.Path
	if u, err := url.Parse(h.LibvirtURI); err != nil || u.Scheme == "" {
		v.at(f, "libvirt_uri", "%q is not a libvirt URI like \"qemu:///system\"", h.LibvirtURI)
	}
	for _, k := range []struct{ key, val string }{
		{"state_dir", h.StateDir}, {"profiles_dir", h.ProfilesDir}, {"clients_dir", h.ClientsDir}, {"image_dir", h.ImageDir},
	} {
		if !path.IsAbs(k.val) {
			v.at(f, k.key, "%q is not an absolute path", k.val)
		}
	}
	if h.RunDir != "" && !path.IsAbs(h.RunDir) { // "" in a Config built in code: the default
		v.at(f, "run_dir", "%q is not an absolute path", h.RunDir)
	}
	if h.MinFreeSpace < 0 {
		v.at(f, "min_free_space", "%d: want a size >= 0 (0: no check)", h.MinFreeSpace)
	}
	if h.DefaultProfile != "" && v.c.Profiles[h.DefaultProfile] == nil {
		v.at(f, "default_profile", "%s", v.noProfile(h.DefaultProfile))
	}
	if h.Nice < -20 || h.Nice > 19 {
		v.at(f, "nice", "%d is out of range: want -20 (highest priority) .. 19 (lowest)", h.Nice)
	}
	if !slices.Contains(ioniceClasses, h.IONice) {
		v.at(f, "ionice", "unknown class %q: want one of %s", h.IONice, quoted(ioniceClasses))
	}
	v.verify(f, h.VerifyEvery, h.VerifySample)
	if h.TimeLimit.Duration <= 0 {
		v.at(f, "time_limit", "%s: want a duration > 0", h.TimeLimit.Duration)
	}
	if h.Appliance.MemoryMiB < minMemoryMiB {
		v.at(f, "appliance.memory_mib", "%d is too small: the appliance needs at least %d MiB", h.Appliance.MemoryMiB, minMemoryMiB)
	}
	if h.Appliance.MemoryMiB > maxMemoryMiB {
		v.at(f, "appliance.memory_mib", "%d is too large: at most %d MiB (64 GiB)", h.Appliance.MemoryMiB, maxMemoryMiB)
	}
	if h.Appliance.VCPUs < 1 {
		v.at(f, "appliance.vcpus", "%d: want at least 1", h.Appliance.VCPUs)
	} else if h.Appliance.VCPUs > maxVCPUs {
		v.at(f, "appliance.vcpus", "%d: at most %d", h.Appliance.VCPUs, maxVCPUs)
	}
	if !slices.Contains(accels, h.Appliance.Accel) {
		v.at(f, "appliance.accel", "unknown accelerator %q: want one of %s", h.Appliance.Accel, quoted(accels))
	}
	v.cache()
	switch h.Network.Mode {
	case "", "static":
	case "dhcp":
		if h.Network.Address != "" {
			v.at(f, "network.address", `set, but network.mode is "dhcp": the lease gives the address; remove one of them`)
		}
		if h.Network.Gateway != "" {
			v.at(f, "network.gateway", `set, but network.mode is "dhcp": the lease gives the gateway; remove one of them`)
		}
	default:
		v.at(f, "network.mode", "unknown mode %q: want %s", h.Network.Mode, quoted(networkModes))
	}
	if _, _, err := net.ParseCIDR(h.Network.Address); err != nil && h.Network.Address != "" {
		v.at(f, "network.address", "%q: want an address with prefix length, e.g. \"10.0.2.15/24\"", h.Network.Address)
	}
	for _, ip := range append([]string{h.Network.Gateway}, h.Network.DNS...) {
		if ip != "" && net.ParseIP(ip) == nil {
			v.at(f, "network", "%q is not an IP address", ip)
		}
	}
	if h.Cache.Size <= 0 {
		v.at(f, "cache.size", "%d: want a size > 0", h.Cache.Size)
	}
}

var (
	backends        = []string{"borg", "duplicity", "restic"}
	backendsLater   = []string{}
	compressions    = []string{"none", "lz4", "zstd", "zlib", "lzma", "auto", "obfuscate"}
	encryptionModes = map[string][]string{
		"borg":      {"repokey", "none"},
		"restic":    {"repokey"}, // restic always encrypts
		"duplicity": {"gpg", "repokey", "none"},
	}
)

func (v *validator) profile(p *Profile) {
	f := p.File
	if err := checkName(p.Name); err != nil {
		v.at(f, "", "profile name %q (from the file name): %v", p.Name, err)
	}
	switch {
	case p.Backend == "":
		v.at(f, "backend", "missing (required): want %s", quoted(backends))
	case slices.Contains(backendsLater, p.Backend):
		v.at(f, "backend", "backend %q is not supported yet: this version implements %s", p.Backend, quoted(backends))
	case !slices.Contains(backends, p.Backend):
		v.at(f, "backend", "unknown backend %q: want %s", p.Backend, quoted(backends))
	}
	if p.Target == "" {
		v.at(f, "target", "missing (required): want e.g. \"file:///srv/backup/{client}\"")
	} else if t, err := p.targetFor("client"); err != nil {
		v.at(f, "target", "%v", err)
	} else {
		if ok, why := target.BackendSchemes(p.Backend); ok != nil && !slices.Contains(ok, t.Scheme) {
			v.at(f, "target", "backend %q cannot write to %s:// targets%s: want %s", p.Backend, t.Scheme, why, quoted(ok))
		}
		v.targetOptions(p, t.Scheme)
		if !strings.Contains(p.Target, ClientPlaceholder) {
			if users := v.usersOf(p); len(users) > 1 {
				v.at(f, "target", "has no {client} placeholder but clients %s use this profile: they would share one repository", strings.Join(users, ", "))
			}
		}
	}
	v.encryption(p)
	v.retention(p)
	v.appendOnly(p)
	algo, _, _ := strings.Cut(p.Borg.Compression, ",")
	if !slices.Contains(compressions, algo) {
		v.at(f, "borg.compression", "unknown compression %q: want borg's syntax, e.g. \"lz4\", \"zstd,6\", \"none\"", p.Borg.Compression)
	}
	if p.CheckEvery < 0 {
		v.at(f, "check_every", "%d: want 0 (never) or a number of backups", p.CheckEvery)
	}
	if p.BandwidthLimit < 0 {
		v.at(f, "bandwidth_limit", "%d: want a rate in bytes per second, e.g. \"2M\"", p.BandwidthLimit)
	}
}

func (v *validator) encryption(p *Profile) {
	f, e := p.File, p.Encryption
	modes := encryptionModes[p.Backend]
	switch {
	case e.Mode == "":
		v.at(f, "encryption.mode", `missing (required): set passphrase_file for "repokey" (or encrypt_keys for duplicity's "gpg"), or mode = "none" to store backups unencrypted`)
		return
	case !slices.Contains([]string{"none", "repokey", "gpg"}, e.Mode):
		v.at(f, "encryption.mode", `unknown mode %q: want "repokey", "gpg" or "none"`, e.Mode)
		return
	case modes != nil && !slices.Contains(modes, e.Mode):
		v.at(f, "encryption.mode", "mode %q is not available with backend %q: want %s", e.Mode, p.Backend, quoted(modes))
		return
	}
	switch e.Mode {
	case "none":
		if e.PassphraseFile != "" {
			v.at(f, "encryption.passphrase_file", `set, but encryption.mode is "none": remove one of them`)
		}
	case "repokey":
		if e.PassphraseFile == "" {
			v.at(f, "encryption.passphrase_file", `missing: required with mode "repokey"`)
		} else {
			v.secretFile(p, "encryption.passphrase_file", e.PassphraseFile)
		}
	case "gpg":
		if len(e.EncryptKeys) == 0 {
			v.at(f, "encryption.encrypt_keys", `missing: mode "gpg" needs at least one recipient key id`)
		}
		if len(e.KeyFiles) == 0 {
			v.at(f, "encryption.key_files", `missing: mode "gpg" needs the recipients' public keys (and the signing secret key) as files`)
		}
		for _, kf := range e.KeyFiles {
			v.secretFile(p, "encryption.key_files", kf)
		}
		if e.PassphraseFile != "" {
			v.secretFile(p, "encryption.passphrase_file", e.PassphraseFile)
		}
	default:
		v.at(f, "encryption.mode", `unknown mode %q: want "repokey", "gpg" or "none"`, e.Mode)
	}
	if e.Mode != "gpg" && (len(e.EncryptKeys) > 0 || e.SignKey != "" || len(e.KeyFiles) > 0) {
		v.at(f, "encryption.mode", `encrypt_keys, sign_key and key_files need mode "gpg" (duplicity)`)
	}
}

func (v *validator) retention(p *Profile) {
	f, r := p.File, p.Retention
	for _, k := range []struct {
		key string
		n   int
	}{{"max_fullbackups", r.MaxFullBackups}, {"max_fulls_with_incrs", r.MaxFullsWithIncrs}, {"keep_last", r.KeepLast},
		{"keep_daily", r.KeepDaily}, {"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}} {
		if k.n < 0 {
			v.at(f, "retention."+k.key, "%d: want a count >= 0", k.n)
		}
	}
	duplicityOnly := r.MaxFullBackups > 0 || r.MaxFullsWithIncrs > 0
	keeps := r.KeepLast > 0 || r.KeepDaily > 0 || r.KeepWeekly > 0 || r.KeepMonthly > 0
	switch {
	case p.Backend == "duplicity" && keeps:
		v.at(f, "retention", "keep_last/daily/weekly/monthly are borg and restic policies: duplicity keeps chains, use max_age, max_fullbackups or max_fulls_with_incrs")
	case p.Backend != "duplicity" && duplicityOnly:
		v.at(f, "retention", "max_fullbackups and max_fulls_with_incrs are duplicity policies: for %s use keep_last/daily/weekly/monthly or max_age", p.Backend)
	}
}

// appendOnly checks append_only and the maintenance credential: only a
// server that enforces it makes a target append-only, and so far that is
// borg serve --append-only behind a forced ssh command, or a REST server
// run with --append-only.
func (v *validator) appendOnly(p *Profile) {
	f, m := p.File, p.Maintenance
	if !p.AppendOnly {
		for _, s := range []struct {
			key string
			set bool
		}{{"maintenance.identity_file", m.IdentityFile != ""}, {"maintenance.password_file", m.PasswordFile != ""}, {"maintenance.port", m.Port != 0}} {
			if s.set {
				v.at(f, s.key, "set, but append_only is not: backup jobs apply the retention with the target's own credential; set append_only = true or remove it")
			}
		}
		return
	}
	t, err := p.targetFor("client")
	switch {
	case err != nil:
		return // the target's own error says it
	case t.Scheme == target.REST && p.Backend == "restic":
		v.appendOnlyREST(p, t)
		return
	case t.Scheme == target.S3 && p.Backend == "restic":
		// The bucket's policy enforces it (README: S3 bucket policy;
		// check --connect asks the bucket); the bucket's owner prunes.
		if m != (Maintenance{}) {
			v.at(f, "maintenance", "is not for s3:// targets: prune with the bucket owner's keys (README: S3 bucket policy)")
		}
		return
	case p.Backend != "borg" || !t.Scheme.OverSSH():
		v.at(f, "append_only", "only borg over ssh:// (or sftp://) and restic to rest:// or s3:// targets can be append-only, where the server enforces it (borg serve --append-only, rest-server --append-only, the bucket's policy); this profile is %s to %s://", p.Backend, t.Scheme)
		return
	case !strings.HasPrefix(t.Path, "/"):
		v.at(f, "target", "append_only needs an absolute repository path (borg serve --restrict-to-repository takes it), not %q", t.Path)
	case strings.ContainsAny(p.Target, " \t\"'\\"):
		v.at(f, "target", "append_only: the repository path goes into the server's authorized_keys; spaces, quotes and backslashes cannot")
	}
	if m.PasswordFile != "" || m.Port != 0 {
		v.at(f, "maintenance", "password_file and port are for rest:// targets; a borg target's maintenance credential is identity_file")
	}
	if m.IdentityFile == "" {
		return
	}
	v.secretFile(p, "maintenance.identity_file", m.IdentityFile)
	if m.IdentityFile == p.SSH.IdentityFile {
		v.at(f, "maintenance.identity_file", "is ssh.identity_file: the maintenance key must be another key, one that backup appliances never receive")
	}
}

// appendOnlyREST checks the maintenance credential of an append-only
// rest:// profile: a password for the target's user on a second REST
// server, on the same host and data, without --append-only.
func (v *validator) appendOnlyREST(p *Profile, t target.Target) {
	f, m := p.File, p.Maintenance
	if m.IdentityFile != "" {
		v.at(f, "maintenance.identity_file", "is for borg over ssh; a rest:// target's maintenance credential is password_file and port")
	}
	switch {
	case m.PasswordFile == "" && m.Port == 0:
		return // pruned on the server
	case m.PasswordFile == "":
		v.at(f, "maintenance.password_file", "missing: maintenance.port is set; prune jobs log in to that server with this password")
		return
	case m.Port == 0:
		v.atOr(f, "maintenance.port", "maintenance.password_file", "missing: the port of the REST server prune jobs use (the same --path without --append-only)")
	case m.Port < 1 || m.Port > 65535:
		v.at(f, "maintenance.port", "%d: want 1 to 65535", m.Port)
	case m.Port == t.PortOrDefault():
		v.at(f, "maintenance.port", "%d is the target's port: the append-only server cannot prune; run a second rest-server without --append-only on another port", m.Port)
	}
	v.secretFile(p, "maintenance.password_file", m.PasswordFile)
	if m.PasswordFile == p.REST.PasswordFile {
		v.at(f, "maintenance.password_file", "is rest.password_file: the maintenance password must be another, one that backup appliances never receive")
	}
}

// targetOptions checks that a network target has what it needs to log in.
func (v *validator) targetOptions(p *Profile, scheme target.Scheme) {
	f := p.File
	for _, s := range scheme.Secrets() {
		key, file := p.SecretFile(s)
		if file == "" {
			v.atOr(f, key, "target", "missing: required for %s:// targets (%s)", scheme, s.Why())
		} else {
			v.secretFile(p, key, file)
		}
	}
	if e := p.S3.Endpoint; e != "" && scheme == target.S3 {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.at(f, "s3.endpoint", "%q: want http(s)://host[:port]", e)
		}
	}
	if !scheme.NeedsNetwork() && (p.SSH != (SSH{}) || p.S3 != (S3{}) || p.FTP != (FTP{}) || p.REST != (REST{})) {
		v.at(f, "target", "ssh, s3, ftp and rest options are set but the target is a file:// directory")
	}
}

// checkSecretFile checks a secret file the way ssh checks a private key: it
// must exist and nobody but its owner may read or write it.
func checkSecretFile(name string) error {
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &missingFileError{name}
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", name)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o, open to group or others; run: chmod 600 %s", name, perm, name)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%s is empty", name)
	}
	return nil
}

var (
	clientTypes      = []string{TypeLVMLibvirt, TypeLVMHost, TypeSelf, TypePlain}
	clientTypesLater = []string{}
	wholeDisk        = regexp.MustCompile(`^(vd|sd|hd|xvd)[a-z]{1,3}$`)
	// A disk of the client domain (target dev as in the domain XML), with
	// an optional partition number.
	mountDisk = regexp.MustCompile(`^(vd|sd|hd|xvd)[a-z]{1,3}([1-9][0-9]{0,2})?$`)
	mountUUID = regexp.MustCompile(`^[0-9A-Fa-f-]+$`)
)

func (v *validator) client(cl *Client) {
	f := cl.File
	if err := checkName(cl.Name); err != nil {
		v.at(f, "", "client name %q (from the file name): %v", cl.Name, err)
	}
	switch {
	case slices.Contains(clientTypesLater, cl.Type):
		v.at(f, "type", "client type %q is not supported yet: this version implements %s", cl.Type, quoted(clientTypes))
	case !slices.Contains(clientTypes, cl.Type):
		v.at(f, "type", "unknown client type %q: want one of %s", cl.Type, quoted(append(slices.Clone(clientTypes), clientTypesLater...)))
	}
	if cl.Domain == "" {
		v.at(f, "domain", "empty: want the libvirt domain name (leave the key out for the client name)")
	} else if err := checkDomain(cl.Domain); err != nil && v.set(f, "domain") { // else the client name, checked above
		v.at(f, "domain", "%v", err)
	}
	switch {
	case cl.Profiles != nil && cl.Profile != "":
		v.at(f, "profiles", "set together with profile: name the destinations in profiles alone")
	case cl.Profiles != nil:
		v.destinations(cl)
	case cl.Profile != "":
		if v.c.Profiles[cl.Profile] == nil {
			v.at(f, "profile", "%s", v.noProfile(cl.Profile))
		}
	case v.c.Host.DefaultProfile == "":
		v.at(f, "profile", "missing: set profile here or default_profile in %s", v.c.Path)
	}
	if v.set(f, "verify_every") || v.set(f, "verify_sample") { // else inherited, checked there
		v.verify(f, cl.VerifyEvery, cl.VerifySample)
	}
	if v.set(f, "time_limit") && cl.TimeLimit.Duration <= 0 {
		v.at(f, "time_limit", "%s: want a duration > 0", cl.TimeLimit.Duration)
	}
	if len(cl.Backup.Mount.Table) > 0 {
		if err := checkMountTable(cl.Backup.Mount.Table); err != nil {
			v.at(f, "backup.mount", "%v", err)
		}
	} else if err := checkMount(cl.Backup.Mount.Single); err != nil {
		v.at(f, "backup.mount", "%v", err)
	}
	if len(cl.Backup.Source) == 0 {
		v.at(f, "backup.source", "empty: nothing would be backed up (leave it out to back up \"/\")")
	}
	for _, s := range cl.Backup.Source {
		if err := checkGuestPath(s); err != nil {
			v.at(f, "backup.source", "%v", err)
		}
	}
	for _, s := range cl.Backup.Exclude {
		if err := checkGuestPath(s); err != nil {
			v.at(f, "backup.exclude", "%v", err)
		}
	}
}

// destinations checks a client's profiles = [...]: known profiles, each
// once, and no two of them writing to the same repository.
func (v *validator) destinations(cl *Client) {
	f := cl.File
	if len(cl.Profiles) == 0 {
		v.at(f, "profiles", "empty: name at least one profile (or leave it out for default_profile)")
		return
	}
	targets := map[string]string{} // the client's target → the profile
	for i, name := range cl.Profiles {
		p := v.c.Profiles[name]
		switch {
		case slices.Index(cl.Profiles, name) < i:
			v.at(f, "profiles", "profile %q is named twice", name)
			continue
		case p == nil:
			v.at(f, "profiles", "%s", v.noProfile(name))
			continue
		}
		t, err := p.targetFor(cl.Name)
		if err != nil {
			continue // the profile's own error
		}
		if other, dup := targets[t.String()]; dup {
			v.at(f, "profiles", "profiles %q and %q both write to %s: two destinations must be two repositories", other, name, t)
		}
		targets[t.String()] = name
	}
}

// noProfile explains a reference to a profile that does not exist.
func (v *validator) noProfile(name string) string {
	known := sortedKeys(v.c.Profiles)
	if len(known) == 0 {
		return fmt.Sprintf("profile %q not found: %s has no *.toml profiles", name, v.c.Host.ProfilesDir)
	}
	return fmt.Sprintf("profile %q not found in %s (known: %s)", name, v.c.Host.ProfilesDir, strings.Join(known, ", "))
}

// checkMount checks a backup.mount selector: "auto", a disk ("vda"), a
// partition ("vda2", "sdb1"), "LABEL=…" or "UUID=…".
func checkMount(m string) error {
	switch {
	case m == "" || m == "auto" || m == MountFstab || mountDisk.MatchString(m) || lvName.MatchString(m):
		return nil
	case strings.HasPrefix(m, "LABEL="):
		if l := m[len("LABEL="):]; l == "" || strings.ContainsAny(l, "\x00\n/") {
			return fmt.Errorf("%q: want a filesystem label after LABEL=", m)
		}
		return nil
	case strings.HasPrefix(m, "UUID="):
		if !mountUUID.MatchString(m[len("UUID="):]) {
			return fmt.Errorf("%q: want a filesystem UUID (hex digits and dashes) after UUID=", m)
		}
		return nil
	}
	return fmt.Errorf(`%q: want "auto", "fstab", a disk ("vda"), a partition ("vda2", "sdb1"), a guest LVM volume ("vg0/root"), "LABEL=…", "UUID=…" or a table of mount point = filesystem`, m)
}

// checkGuestPath checks a path inside the client's filesystem (patterns
// with * ? [ are fine): absolute and without "..".
func checkGuestPath(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return fmt.Errorf("%q contains \"..\"", p)
	}
	return nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// checkName checks a client or profile name: these become file names and
// parts of libvirt domain names.
func checkName(n string) error {
	if len(n) > 64 {
		return fmt.Errorf("longer than 64 characters")
	}
	if !validName.MatchString(n) {
		return fmt.Errorf(`only letters, digits, ".", "_" and "-" are allowed, starting with a letter or digit (the name becomes part of file and domain names)`)
	}
	return nil
}

// checkDomain checks a libvirt domain name. libvirt allows almost any
// text; the name also reaches terminals, hook environments and virsh
// command lines, so control characters and a leading "-" are refused.
func checkDomain(d string) error {
	switch {
	case len(d) > 200:
		return fmt.Errorf("%q is longer than 200 bytes", d)
	case textsafe.HasControl(d):
		return fmt.Errorf("%q has control characters", d)
	case strings.HasPrefix(d, "-"):
		return fmt.Errorf("%q starts with \"-\" (virsh and other tools would read it as an option)", d)
	case strings.Contains(d, "/"):
		return fmt.Errorf("%q contains \"/\", which libvirt does not allow in a name", d)
	}
	return nil
}

// checkSSHWord checks an ssh user or host name, which ends up on ssh's
// command line: a leading "-" would make it an option
// ("-oProxyCommand=…"), whitespace or a control character a second word.
func checkSSHWord(what, s string) error { return target.CheckWord(what, s) }

// checkPinnedKeys checks a known_hosts file: it must exist and hold
// something, and nobody but its owner may change it (whoever can add a line
// can answer as the guest).
func checkPinnedKeys(name string) error {
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &missingFileError{name}
	}
	if err != nil {
		return err
	}
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", name)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s has mode %04o, writable by group or others; run: chmod 644 %s", name, fi.Mode().Perm(), name)
	case fi.Size() == 0:
		return fmt.Errorf("%s is empty: want the guest's host key (ssh-keyscan, then compare the fingerprint)", name)
	}
	return nil
}

func quoted[S ~string](ss []S) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// verify checks the verify schedule keys of a host or client file.
func (v *validator) verify(f string, every, sample int) {
	if every < 0 {
		v.at(f, "verify_every", "%d: want 0 (never) or a number of successful backups", every)
	}
	if sample < 0 {
		v.at(f, "verify_sample", "%d: want 0 (all files) or a number of files", sample)
	}
}

// HostChecks checks the configuration against this host (hostctl check
// runs it; a run does not, since libvirt would still boot the appliance):
// more vCPUs than the host has CPUs only slows every job down.
func (c *Config) HostChecks(cpus int) error {
	v := &validator{c: c}
	if n := c.Host.Appliance.VCPUs; n > cpus {
		v.at(c.Path, "appliance.vcpus", "%d is more than the %d CPUs of this host", n, cpus)
	}
	return v.errs.errOrNil()
}
