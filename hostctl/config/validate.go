package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
)

// validator collects semantic problems, each at the line of its key.
type validator struct {
	c    *Config
	errs Errors
}

func (v *validator) at(file, key, format string, args ...any) {
	v.errs = append(v.errs, &ConfigError{File: file, Line: v.c.lines[file][key], Key: key, Msg: fmt.Sprintf(format, args...)})
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
	v.report()
	for _, name := range sortedKeys(c.Profiles) {
		v.profile(c.Profiles[name])
	}
	for _, name := range sortedKeys(c.Clients) {
		v.client(c.Clients[name])
		v.hooks(c.Clients[name])
	}
	return v.errs.errOrNil()
}

var (
	ioniceClasses = []string{"idle", "best-effort", "realtime"}
	accels        = []string{"auto", "kvm", "tcg"}
	cacheTypes    = []string{"file", "lvm"}
	lvName        = regexp.MustCompile(`^[A-Za-z0-9+_.-]+/[A-Za-z0-9+_.-]+$`)
)

const minMemoryMiB = 256 // kernel, squashfs overlay in RAM and borg's caches

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
	if h.DefaultProfile != "" && v.c.Profiles[h.DefaultProfile] == nil {
		v.at(f, "default_profile", "%s", v.noProfile(h.DefaultProfile))
	}
	if h.Nice < -20 || h.Nice > 19 {
		v.at(f, "nice", "%d is out of range: want -20 (highest priority) .. 19 (lowest)", h.Nice)
	}
	if !slices.Contains(ioniceClasses, h.IONice) {
		v.at(f, "ionice", "unknown class %q: want one of %s", h.IONice, quoted(ioniceClasses))
	}
	if h.TimeLimit.Duration <= 0 {
		v.at(f, "time_limit", "%s: want a duration > 0", h.TimeLimit.Duration)
	}
	if h.Appliance.MemoryMiB < minMemoryMiB {
		v.at(f, "appliance.memory_mib", "%d is too small: the appliance needs at least %d MiB", h.Appliance.MemoryMiB, minMemoryMiB)
	}
	if h.Appliance.VCPUs < 1 {
		v.at(f, "appliance.vcpus", "%d: want at least 1", h.Appliance.VCPUs)
	}
	if !slices.Contains(accels, h.Appliance.Accel) {
		v.at(f, "appliance.accel", "unknown accelerator %q: want one of %s", h.Appliance.Accel, quoted(accels))
	}
	switch h.Cache.Type {
	case "file":
		if !path.IsAbs(h.Cache.Path) {
			v.at(f, "cache.path", "%q is not an absolute path", h.Cache.Path)
		}
	case "lvm":
		if !lvName.MatchString(h.Cache.Path) {
			v.at(f, "cache.path", "%q: for type \"lvm\" want the logical volume as \"vg/lv\"", h.Cache.Path)
		}
	default:
		v.at(f, "cache.type", "unknown cache type %q: want one of %s", h.Cache.Type, quoted(cacheTypes))
	}
	if h.Cache.Size <= 0 {
		v.at(f, "cache.size", "%d: want a size > 0", h.Cache.Size)
	}
}

var (
	backends      = []string{"borg"}
	backendsLater = []string{"duplicity", "restic"}
	compressions  = []string{"none", "lz4", "zstd", "zlib", "lzma", "auto", "obfuscate"}
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
	} else if _, err := p.TargetFor("client"); err != nil {
		v.at(f, "target", "%v", err)
	} else if !strings.Contains(p.Target, "{client}") {
		var users []string
		for _, name := range sortedKeys(v.c.Clients) {
			if v.c.ProfileFor(v.c.Clients[name]) == p {
				users = append(users, name)
			}
		}
		if len(users) > 1 {
			v.at(f, "target", "has no {client} placeholder but clients %s use this profile: they would share one repository", strings.Join(users, ", "))
		}
	}
	e := p.Encryption
	switch e.Mode {
	case "":
		v.at(f, "encryption.mode", `missing (required): set passphrase_file for "repokey", or mode = "none" to store backups unencrypted`)
	case "none":
		if e.PassphraseFile != "" {
			v.at(f, "encryption.passphrase_file", `set, but encryption.mode is "none": remove one of them`)
		}
	case "repokey":
		if e.PassphraseFile == "" {
			v.at(f, "encryption.passphrase_file", `missing: required with mode "repokey"`)
		} else if err := checkSecretFile(e.PassphraseFile); err != nil {
			v.at(f, "encryption.passphrase_file", "%v", err)
		}
	default:
		v.at(f, "encryption.mode", `unknown mode %q: want "repokey" or "none"`, e.Mode)
	}
	algo, _, _ := strings.Cut(p.Borg.Compression, ",")
	if !slices.Contains(compressions, algo) {
		v.at(f, "borg.compression", "unknown compression %q: want borg's syntax, e.g. \"lz4\", \"zstd,6\", \"none\"", p.Borg.Compression)
	}
}

// checkSecretFile checks a secret file the way ssh checks a private key: it
// must exist and nobody but its owner may read or write it.
func checkSecretFile(name string) error {
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist", name)
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
	clientTypes      = []string{TypeLVMLibvirt}
	clientTypesLater = []string{TypeLVMHost, TypeSelf, TypePlain}
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
		v.at(f, "domain", "empty: want the libvirt domain name (default: the client name)")
	}
	switch {
	case cl.Profile != "":
		if v.c.Profiles[cl.Profile] == nil {
			v.at(f, "profile", "%s", v.noProfile(cl.Profile))
		}
	case v.c.Host.DefaultProfile == "":
		v.at(f, "profile", "missing: set profile here or default_profile in %s", v.c.Path)
	}
	if v.set(f, "time_limit") && cl.TimeLimit.Duration <= 0 {
		v.at(f, "time_limit", "%s: want a duration > 0", cl.TimeLimit.Duration)
	}
	if len(cl.Backup.Mounts) > 0 {
		if err := checkMountTable(cl.Backup.Mounts); err != nil {
			v.at(f, "backup.mount", "%v", err)
		}
	} else if err := checkMount(cl.Backup.Mount); err != nil {
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

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
