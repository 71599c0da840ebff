package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Defaults documented in types.go.
const (
	DefaultLibvirtURI  = "qemu:///system"
	DefaultNice        = 19
	DefaultIONice      = "idle"
	DefaultTimeLimit   = 6 * time.Hour
	DefaultMemoryMiB   = 1024
	DefaultVCPUs       = 2
	DefaultAccel       = "auto"
	DefaultCacheType   = "file"
	DefaultCacheSize   = 8 << 30
	DefaultRunDir      = "/run/hostctl"
	DefaultMinFree     = 4 << 30
	DefaultCompression = "lz4"
	// libvirt user-mode networking's fixed guest address, gateway (the
	// host) and DNS forwarder.
	DefaultNetMode    = "static"
	DefaultNetAddress = "10.0.2.15/24"
	DefaultNetGateway = "10.0.2.2"
	DefaultNetDNS     = "10.0.2.3"
	DefaultMount      = "auto"
)

// Load reads the host config at path, then every profiles/*.toml and
// clients/*.toml, applies the defaults and validates the whole. Relative
// paths in any of the files (profiles_dir, state_dir, passphrase_file, …)
// are relative to the directory of the host config. A missing clients
// directory means no clients; a missing profiles directory means no
// profiles (and an error for every client that needs one).
//
// Every problem found is reported, as Errors: one *ConfigError per problem,
// each naming file, line and key.
func Load(path string) (*Config, error) {
	c, err := load(path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// load is Load that also returns the configuration when it has problems.
func load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("host config %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("host config %s does not exist (use --config FILE to name another one)", abs)
	}
	if err != nil {
		return nil, fmt.Errorf("read host config: %w", err)
	}
	c := &Config{
		Path:     abs,
		Profiles: map[string]*Profile{},
		Clients:  map[string]*Client{},
		lines:    map[string]keyLines{},
	}
	lines, errs := decodeFile(abs, data, &c.Host)
	c.lines[abs] = lines
	c.hostDefaults()
	c.lvmDefaults()
	c.reportDefaults()

	for _, f := range c.tomlFiles(&errs, "profiles_dir", c.Host.ProfilesDir) {
		p := &Profile{Name: f.name, File: f.path}
		kl, es := decodeFile(f.path, f.data, p)
		errs = append(errs, es...)
		c.lines[f.path] = kl
		c.profileDefaults(p)
		c.Profiles[p.Name] = p
	}
	for _, f := range c.tomlFiles(&errs, "clients_dir", c.Host.ClientsDir) {
		cl := &Client{Name: f.name, File: f.path}
		kl, es := decodeFile(f.path, f.data, cl)
		errs = append(errs, es...)
		c.lines[f.path] = kl
		c.clientDefaults(cl, kl)
		c.hooksDefaults(cl)
		c.clientTypeDefaults(cl)
		c.Clients[cl.Name] = cl
	}

	// Validate even after decode errors, so that the operator sees every
	// problem at once, but do not repeat a key that already failed to decode
	// (its zero value would fail validation a second time).
	failed := map[[2]string]bool{}
	for _, e := range errs {
		failed[[2]string{e.File, e.Key}] = true
		if c.lines[e.File] == nil { // a syntax error: nothing of the file is known
			failed[[2]string{e.File, "*"}] = true
		}
	}
	// With a syntax error in the host config, its defaults (dirs, default
	// profile) are guesses: validating against them would only add noise.
	var verrs Errors
	if err := c.Validate(); err != nil && lines != nil {
		verrs = err.(Errors)
	}
	for _, e := range verrs {
		if !failed[[2]string{e.File, e.Key}] && !failed[[2]string{e.File, "*"}] {
			errs = append(errs, e)
		}
	}
	c.resolveClients()
	if err := errs.errOrNil(); err != nil {
		return c, err
	}
	return c, nil
}

// LoadAllowMissing is Load for the commands that create the secret files
// (keygen, target setup): a secret file that does not exist yet is not an
// error; every other problem is.
func LoadAllowMissing(path string) (*Config, error) {
	c, err := load(path)
	var es Errors
	if err == nil || !errors.As(err, &es) {
		return c, err
	}
	var rest Errors
	for _, e := range es {
		if !e.MissingFile {
			rest = append(rest, e)
		}
	}
	if err := rest.errOrNil(); err != nil {
		return nil, err
	}
	return c, nil
}

// dir is the directory relative paths in the configuration start from.
func (c *Config) dir() string { return filepath.Dir(c.Path) }

// resolve makes p absolute relative to the host config's directory.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir(), p)
}

func (c *Config) hostDefaults() {
	h, set := &c.Host, c.lines[c.Path].has
	if h.LibvirtURI == "" {
		h.LibvirtURI = DefaultLibvirtURI
	}
	h.StateDir = c.resolve(or(h.StateDir, DefaultStateDir))
	h.ProfilesDir = c.resolve(or(h.ProfilesDir, "profiles"))
	h.ClientsDir = c.resolve(or(h.ClientsDir, "clients"))
	h.ImageDir = c.resolve(or(h.ImageDir, filepath.Join(h.StateDir, "image")))
	h.RunDir = c.resolve(or(h.RunDir, DefaultRunDir))
	if !set("min_free_space") {
		h.MinFreeSpace = DefaultMinFree
	}
	if !set("nice") {
		h.Nice = DefaultNice
	}
	h.IONice = or(h.IONice, DefaultIONice)
	if !set("time_limit") {
		h.TimeLimit = job.Duration{Duration: DefaultTimeLimit}
	}
	if !set("appliance.memory_mib") {
		h.Appliance.MemoryMiB = DefaultMemoryMiB
	}
	if !set("appliance.vcpus") {
		h.Appliance.VCPUs = DefaultVCPUs
	}
	h.Appliance.Accel = or(h.Appliance.Accel, DefaultAccel)
	h.Cache.Type = or(h.Cache.Type, DefaultCacheType)
	if h.Cache.Type == "file" {
		h.Cache.Dir = c.resolve(or(h.Cache.Dir, filepath.Join(h.StateDir, "caches")))
	}
	if !set("cache.size") {
		h.Cache.Size = DefaultCacheSize
	}
	h.Network.Mode = or(h.Network.Mode, DefaultNetMode)
	if h.Network.Mode == "static" {
		h.Network.Address = or(h.Network.Address, DefaultNetAddress)
		h.Network.Gateway = or(h.Network.Gateway, DefaultNetGateway)
		if !set("network.dns") {
			h.Network.DNS = []string{DefaultNetDNS}
		}
	}
}

func (c *Config) profileDefaults(p *Profile) {
	switch {
	case p.Encryption.Mode != "":
	case len(p.Encryption.EncryptKeys) > 0:
		p.Encryption.Mode = "gpg"
	case p.Encryption.PassphraseFile != "":
		p.Encryption.Mode = "repokey"
	}
	p.Encryption.PassphraseFile = c.resolve(p.Encryption.PassphraseFile)
	for i, f := range p.Encryption.KeyFiles {
		p.Encryption.KeyFiles[i] = c.resolve(f)
	}
	p.SSH.IdentityFile = c.resolve(p.SSH.IdentityFile)
	p.SSH.KnownHosts = c.resolve(p.SSH.KnownHosts)
	p.Maintenance.IdentityFile = c.resolve(p.Maintenance.IdentityFile)
	p.S3.AccessKeyFile = c.resolve(p.S3.AccessKeyFile)
	p.S3.SecretKeyFile = c.resolve(p.S3.SecretKeyFile)
	p.FTP.PasswordFile = c.resolve(p.FTP.PasswordFile)
	p.REST.PasswordFile = c.resolve(p.REST.PasswordFile)
	p.REST.CAFile = c.resolve(p.REST.CAFile)
	p.Maintenance.PasswordFile = c.resolve(p.Maintenance.PasswordFile)
	p.Borg.Compression = or(p.Borg.Compression, DefaultCompression)
}

func (c *Config) clientDefaults(cl *Client, set keyLines) {
	cl.Type = or(cl.Type, TypeLVMLibvirt)
	if !set.has("domain") {
		cl.Domain = cl.Name // domain = "" is an error, not the default
	}
	if cl.OfflineOK == nil {
		t := true
		cl.OfflineOK = &t
	}
	if !set.has("time_limit") {
		cl.TimeLimit = c.Host.TimeLimit
	}
	if !set.has("verify_every") {
		cl.VerifyEvery = c.Host.VerifyEvery
	}
	if !set.has("verify_sample") {
		cl.VerifySample = c.Host.VerifySample
	}
	if m := &cl.Backup.Mount; len(m.Table) == 0 {
		m.Single = or(m.Single, DefaultMount)
	}
	if !set.has("backup.source") {
		cl.Backup.Source = []string{"/"}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type tomlFile struct {
	name, path string
	data       []byte
}

// tomlFiles reads every *.toml in dir, sorted by name. Other files (a
// README, an editor's backup) are ignored. A missing directory has no files.
func (c *Config) tomlFiles(errs *Errors, key, dir string) []tomlFile {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		*errs = append(*errs, &ConfigError{File: c.Path, Line: c.lines[c.Path][key], Key: key, Msg: err.Error()})
		return nil
	}
	var out []tomlFile
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".toml")
		if !ok || e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			*errs = append(*errs, &ConfigError{File: p, Msg: err.Error()})
			continue
		}
		out = append(out, tomlFile{name: name, path: p, data: data})
	}
	return out
}

// LoadProfileFile decodes one profile file strictly (syntax, unknown keys,
// types) without the rest of the configuration and without validating it.
func LoadProfileFile(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := &Profile{File: path}
	if _, errs := decodeFile(path, data, p); len(errs) > 0 {
		return nil, errs.errOrNil()
	}
	return p, nil
}
