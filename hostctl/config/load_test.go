package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
)

// baseTree is a valid configuration; cases replace or add files.
var baseTree = map[string]string{
	"hostctl.toml":     "default_profile = \"p\"\n",
	"profiles/p.toml":  "backend = \"borg\"\ntarget = \"file:///srv/backup/{client}\"\n[encryption]\npassphrase_file = \"secrets/p.pass\"\n",
	"clients/web.toml": "",
}

// writeTree writes baseTree overlaid with files into a temporary directory
// ("" as content deletes a base file only when the key ends in "!"), plus a
// 0600 passphrase file, and returns the directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{}
	for k, v := range baseTree {
		all[k] = v
	}
	for k, v := range files {
		if name, ok := strings.CutSuffix(k, "!"); ok {
			delete(all, name)
			continue
		}
		all[k] = v
	}
	for name, content := range all {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "p.pass"), []byte("secret\n"), 0o600))
	return dir
}

// wantErr is one expected problem: file (relative to the tree), line (0 =
// none), key and a part of the message.
type wantErr struct {
	file string
	line int
	key  string
	msg  string
}

// sshKeys and borgSSH make the base profile one of borg over ssh.
const sshKeys = "[ssh]\nidentity_file = \"secrets/p.pass\"\nknown_hosts = \"secrets/p.pass\"\n"

var borgSSH = strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "ssh://backup@nas/srv", 1) + sshKeys

// resticREST is a restic profile to a REST server, one user per client.
const resticREST = "backend = \"restic\"\ntarget = \"rest://{client}@nas/{client}\"\n[encryption]\npassphrase_file = \"secrets/p.pass\"\n" +
	"[rest]\npassword_file = \"secrets/p.pass\"\nca_file = \"secrets/p.pass\"\n"

// secretM writes secrets/m.pass, a second secret file.
func secretM(t *testing.T, dir string) {
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "m.pass"), []byte("m\n"), 0o600))
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		setup func(t *testing.T, dir string)
		want  []wantErr
	}{
		// Syntax.
		{"syntax error", map[string]string{"hostctl.toml": "nice = 3\nionice = \"idle\n"},
			nil, []wantErr{{"hostctl.toml", 2, "", "TOML syntax"}}},
		{"syntax error in a client", map[string]string{"clients/web.toml": "type = lvm_libvirt\n"},
			nil, []wantErr{{"clients/web.toml", 1, "", "TOML syntax"}}},

		// Unknown keys.
		{"unknown top-level key", map[string]string{"hostctl.toml": "default_profile = \"p\"\n\nionce = \"idle\"\n"},
			nil, []wantErr{{"hostctl.toml", 3, "ionce", "unknown key (known here: appliance, cache,"}}},
		{"unknown key in a table", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[appliance]\nvcpus = 2\nmemory = 512\n"},
			nil, []wantErr{{"hostctl.toml", 4, "appliance.memory", "known here: accel, memory_mib, vcpus"}}},
		{"unknown table", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[smtp]\nhost = \"x\"\n"},
			nil, []wantErr{{"hostctl.toml", 2, "smtp", "unknown key"}}},
		{"unknown dotted key", map[string]string{"clients/web.toml": "domain = \"web\"\nbackup.sorce = [\"/\"]\n"},
			nil, []wantErr{{"clients/web.toml", 2, "backup.sorce", "unknown key"}}},
		{"unknown key in an inline table", map[string]string{"profiles/p.toml": "borg = { compression = \"lz4\", level = 3 }\n" + baseTree["profiles/p.toml"]},
			nil, []wantErr{{"profiles/p.toml", 1, "borg.level", "unknown key"}}},
		{"name and file are not keys", map[string]string{"clients/web.toml": "name = \"x\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "name", "unknown key"}}},

		// Wrong types.
		{"string for integer", map[string]string{"hostctl.toml": "default_profile = \"p\"\nnice = \"10\"\n"},
			nil, []wantErr{{"hostctl.toml", 2, "nice", "wrong type: want an integer, got a string"}}},
		{"integer for string", map[string]string{"clients/web.toml": "\ndomain = 3\n"},
			nil, []wantErr{{"clients/web.toml", 2, "domain", "want a string, got an integer"}}},
		{"string for bool", map[string]string{"clients/web.toml": "offline_ok = \"yes\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "offline_ok", "want true or false, got a string"}}},
		{"array element", map[string]string{"clients/web.toml": "[backup]\nexclude = [\n  \"/tmp\",\n  42,\n]\n"},
			nil, []wantErr{{"clients/web.toml", 2, "backup.exclude", "want an array of strings, got an array containing 42"}}},
		{"string for array", map[string]string{"clients/web.toml": "[backup]\nsource = \"/\"\n"},
			nil, []wantErr{{"clients/web.toml", 2, "backup.source", "want an array of strings, got a string"}}},
		{"value for table", map[string]string{"hostctl.toml": "default_profile = \"p\"\nappliance = 3\n"},
			nil, []wantErr{{"hostctl.toml", 2, "appliance", "want a table ([appliance]), got an integer"}}},

		// Missing required keys: no line of their own.
		{"missing backend and target", map[string]string{"profiles/p.toml": "encryption.mode = \"none\"\n"},
			nil, []wantErr{{"profiles/p.toml", 0, "backend", "missing (required)"}, {"profiles/p.toml", 0, "target", "missing (required)"}}},

		{"negative verify_every", map[string]string{"clients/web.toml": "verify_every = -1\n"},
			nil, []wantErr{{"clients/web.toml", 1, "verify_every", "want 0 (never) or a number"}}},

		// Durations.
		{"bad duration", map[string]string{"hostctl.toml": "default_profile = \"p\"\ntime_limit = \"6 hours\"\n"},
			nil, []wantErr{{"hostctl.toml", 2, "time_limit", `invalid duration "6 hours"`}}},
		{"duration without unit", map[string]string{"clients/web.toml": "time_limit = 3600\n"},
			nil, []wantErr{{"clients/web.toml", 1, "time_limit", "invalid duration 3600"}}},
		{"zero duration", map[string]string{"clients/web.toml": "time_limit = \"0s\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "time_limit", "want a duration > 0"}}},
		{"negative host duration", map[string]string{"hostctl.toml": "default_profile = \"p\"\ntime_limit = \"-1h\"\n"},
			nil, []wantErr{{"hostctl.toml", 2, "time_limit", "want a duration > 0"}}},

		// Sizes.
		{"junk size", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[cache]\nsize = \"8 gigs\"\n"},
			nil, []wantErr{{"hostctl.toml", 3, "cache.size", `invalid size "8 gigs"`}}},
		{"negative size", map[string]string{"hostctl.toml": "default_profile = \"p\"\ncache.size = \"-1G\"\n"},
			nil, []wantErr{{"hostctl.toml", 2, "cache.size", "negative"}}},
		{"zero size", map[string]string{"hostctl.toml": "default_profile = \"p\"\ncache.size = 0\n"},
			nil, []wantErr{{"hostctl.toml", 2, "cache.size", "want a size > 0"}}},

		// Host semantics.
		{"nice out of range", map[string]string{"hostctl.toml": "default_profile = \"p\"\nnice = 20\n"},
			nil, []wantErr{{"hostctl.toml", 2, "nice", "out of range"}}},
		{"ionice class", map[string]string{"hostctl.toml": "default_profile = \"p\"\nionice = \"low\"\n"},
			nil, []wantErr{{"hostctl.toml", 2, "ionice", `unknown class "low"`}}},
		{"accel", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[appliance]\naccel = \"xen\"\n"},
			nil, []wantErr{{"hostctl.toml", 3, "appliance.accel", `unknown accelerator "xen"`}}},
		{"appliance too small", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[appliance]\nmemory_mib = 64\nvcpus = 0\n"},
			nil, []wantErr{{"hostctl.toml", 3, "appliance.memory_mib", "too small"}, {"hostctl.toml", 4, "appliance.vcpus", "at least 1"}}},
		{"network mode", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[network]\nmode = \"bootp\"\n"},
			nil, []wantErr{{"hostctl.toml", 3, "network.mode", `unknown mode "bootp": want "static", "dhcp"`}}},
		{"dhcp with an address", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[network]\nmode = \"dhcp\"\naddress = \"10.0.2.15/24\"\n"},
			nil, []wantErr{{"hostctl.toml", 4, "network.address", `network.mode is "dhcp"`}}},
		{"cache type", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[cache]\ntype = \"zfs\"\n"},
			nil, []wantErr{{"hostctl.toml", 3, "cache.type", `unknown cache type "zfs"`}}},
		// One cache volume per client: the shared cache.path of earlier
		// versions is refused with what to do instead.
		{"lvm cache path", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[cache]\ntype = \"lvm\"\nvg = \"vg0\"\npath = \"vg0/cache\"\n"},
			nil, []wantErr{{"hostctl.toml", 5, "cache.path", `one cache volume for all clients is no longer used: every client has its own, <cache.vg>/hostctl-cache-<client>`}}},
		{"file cache path", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[cache]\npath = \"/var/lib/hostctl/cache.qcow2\"\n"},
			nil, []wantErr{{"hostctl.toml", 3, "cache.path", `<cache.dir>/<client>.qcow2 (default <state_dir>/caches); remove this key. The old volume can be deleted`}}},
		{"lvm cache without vg", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[cache]\ntype = \"lvm\"\n"},
			nil, []wantErr{{"hostctl.toml", 3, "cache.vg", `missing: type "lvm" needs the volume group`}}},
		{"lvm cache bad vg", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[cache]\ntype = \"lvm\"\nvg = \"-vg\"\ndir = \"/x\"\n"},
			nil, []wantErr{{"hostctl.toml", 4, "cache.vg", `"-vg" is not a volume group name`}, {"hostctl.toml", 5, "cache.dir", `cache.type is "lvm"`}}},
		{"libvirt uri", map[string]string{"hostctl.toml": "default_profile = \"p\"\nlibvirt_uri = \"system\"\n"},
			nil, []wantErr{{"hostctl.toml", 2, "libvirt_uri", "not a libvirt URI"}}},
		{"unknown default profile", map[string]string{"hostctl.toml": "\ndefault_profile = \"offsite\"\n"},
			nil, []wantErr{{"hostctl.toml", 2, "default_profile", `profile "offsite" not found in`}}},

		// Profiles.
		{"restic without encryption", map[string]string{"profiles/p.toml": "backend = \"restic\"\ntarget = \"file:///b/{client}\"\nencryption.mode = \"none\"\n"},
			nil, []wantErr{{"profiles/p.toml", 3, "encryption.mode", `"none" is not available with backend "restic"`}}},
		{"duplicity with keep_daily", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "borg", "duplicity", 1) + "[retention]\nkeep_daily = 3\n"},
			nil, []wantErr{{"profiles/p.toml", 5, "retention", "duplicity keeps chains"}}},
		{"bad max_age", map[string]string{"profiles/p.toml": baseTree["profiles/p.toml"] + "[retention]\nmax_age = \"2 months\"\n"},
			nil, []wantErr{{"profiles/p.toml", 6, "retention.max_age", "want a count and unit"}}},
		{"ftp for borg", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "ftp://nas/srv", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "target", `backend "borg" cannot write to ftp://`}, {"profiles/p.toml", 2, "ftp.password_file", "missing"}}},
		{"s3 for borg", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "s3://bucket/srv", 1) +
			"[s3]\naccess_key_file = \"k\"\nsecret_key_file = \"s\"\n"},
			nil, []wantErr{{"profiles/p.toml", 2, "target", "borg serve` on an ssh server; for S3, FTP or a REST server use restic or duplicity"},
				{"profiles/p.toml", 6, "s3.access_key_file", "does not exist"}, {"profiles/p.toml", 7, "s3.secret_key_file", "does not exist"}}},
		{"s3 for duplicity", map[string]string{"profiles/p.toml": strings.Replace(strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "s3://bucket/srv", 1), "borg", "duplicity", 1) +
			"[s3]\naccess_key_file = \"k\"\nsecret_key_file = \"s\"\n"},
			nil, []wantErr{{"profiles/p.toml", 2, "target", "needs python3-boto3"},
				{"profiles/p.toml", 6, "s3.access_key_file", "does not exist"}, {"profiles/p.toml", 7, "s3.secret_key_file", "does not exist"}}},
		{"unknown backend", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "borg", "tar", 1)},
			nil, []wantErr{{"profiles/p.toml", 1, "backend", `unknown backend "tar"`}}},
		{"sftp target without ssh keys", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "sftp://backup@nas/srv", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "ssh.identity_file", "missing: required for sftp://"}, {"profiles/p.toml", 2, "ssh.known_hosts", "missing"}}},
		// append_only: only where the server enforces it.
		{"append-only file target", map[string]string{"profiles/p.toml": "append_only = true\n" + baseTree["profiles/p.toml"]},
			nil, []wantErr{{"profiles/p.toml", 1, "append_only", "only borg over ssh:// (or sftp://) and restic to rest:// or s3:// targets can be append-only"}}},
		{"append-only restic over sftp", map[string]string{"profiles/p.toml": "append_only = true\n" + strings.Replace(strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "sftp://backup@nas/srv", 1), "borg", "restic", 1) + sshKeys},
			nil, []wantErr{{"profiles/p.toml", 1, "append_only", "this profile is restic to sftp://"}}},
		{"maintenance key without append-only", map[string]string{"profiles/p.toml": borgSSH + "[maintenance]\nidentity_file = \"secrets/p.pass\"\n"},
			nil, []wantErr{{"profiles/p.toml", 9, "maintenance.identity_file", "set, but append_only is not"}}},
		{"maintenance key is the backup key", map[string]string{"profiles/p.toml": "append_only = true\n" + borgSSH + "[maintenance]\nidentity_file = \"secrets/p.pass\"\n"},
			nil, []wantErr{{"profiles/p.toml", 10, "maintenance.identity_file", "must be another key, one that backup appliances never receive"}}},
		{"maintenance key missing", map[string]string{"profiles/p.toml": "append_only = true\n" + borgSSH + "[maintenance]\nidentity_file = \"secrets/prune\"\n"},
			nil, []wantErr{{"profiles/p.toml", 10, "maintenance.identity_file", "secrets/prune does not exist"}}},
		{"rest for borg", map[string]string{"profiles/p.toml": strings.Replace(resticREST, "restic", "borg", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "target", "for S3, FTP or a REST server use restic or duplicity"}}},
		{"rest target without its files", map[string]string{"profiles/p.toml": strings.Split(resticREST, "[rest]")[0]},
			nil, []wantErr{{"profiles/p.toml", 2, "rest.password_file", "missing: required for rest:// targets (the REST server user's password)"},
				{"profiles/p.toml", 2, "rest.ca_file", "the appliance trusts no other"}}},
		{"rest target without user", map[string]string{"profiles/p.toml": strings.Replace(resticREST, "{client}@", "", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "target", "want rest://user@host[:port]/path"}}},
		{"rest maintenance without append-only", map[string]string{"profiles/p.toml": resticREST + "[maintenance]\npassword_file = \"secrets/m.pass\"\nport = 8001\n"},
			secretM, []wantErr{{"profiles/p.toml", 9, "maintenance.password_file", "set, but append_only is not"}, {"profiles/p.toml", 10, "maintenance.port", "set, but append_only is not"}}},
		{"rest maintenance without port", map[string]string{"profiles/p.toml": "append_only = true\n" + resticREST + "[maintenance]\npassword_file = \"secrets/m.pass\"\n"},
			secretM, []wantErr{{"profiles/p.toml", 10, "maintenance.port", "missing: the port of the REST server prune jobs use"}}},
		{"rest maintenance on the append-only port", map[string]string{"profiles/p.toml": "append_only = true\n" + resticREST + "[maintenance]\npassword_file = \"secrets/m.pass\"\nport = 8000\n"},
			secretM, []wantErr{{"profiles/p.toml", 11, "maintenance.port", "8000 is the target's port: the append-only server cannot prune"}}},
		{"rest maintenance password is the backup password", map[string]string{"profiles/p.toml": "append_only = true\n" + resticREST + "[maintenance]\npassword_file = \"secrets/p.pass\"\nport = 8001\n"},
			nil, []wantErr{{"profiles/p.toml", 10, "maintenance.password_file", "must be another, one that backup appliances never receive"}}},
		{"rest maintenance with an ssh key", map[string]string{"profiles/p.toml": "append_only = true\n" + resticREST + "[maintenance]\nidentity_file = \"secrets/m.pass\"\n"},
			secretM, []wantErr{{"profiles/p.toml", 10, "maintenance.identity_file", "is for borg over ssh"}}},
		{"borg maintenance with a rest password", map[string]string{"profiles/p.toml": "append_only = true\n" + borgSSH + "[maintenance]\npassword_file = \"secrets/m.pass\"\n"},
			secretM, []wantErr{{"profiles/p.toml", 9, "maintenance", "password_file and port are for rest:// targets"}}},
		{"append-only path with a space", map[string]string{"profiles/p.toml": "append_only = true\n" + strings.Replace(borgSSH, "/srv", "/srv/my backups", 1)},
			nil, []wantErr{{"profiles/p.toml", 3, "target", "spaces, quotes and backslashes cannot"}}},
		{"unknown target scheme", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "gopher://srv", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "target", `unknown scheme "gopher"`}}},
		{"target without scheme", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "/srv", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "target", "has no scheme"}}},
		{"relative file target", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "file:srv", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "target", "must be absolute"}}},
		{"file target with host", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "file://srv", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "target", `host "srv" is not allowed`}}},
		{"unknown placeholder", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "{client}", "{host}/{client}", 1)},
			nil, []wantErr{{"profiles/p.toml", 2, "target", "unknown placeholder {host}"}}},
		{"shared target", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "/{client}", "", 1), "clients/db.toml": ""},
			nil, []wantErr{{"profiles/p.toml", 2, "target", "clients db, web use this profile: they would share one repository"}}},
		{"encryption mode missing", map[string]string{"profiles/p.toml": "backend = \"borg\"\ntarget = \"file:///b/{client}\"\n"},
			nil, []wantErr{{"profiles/p.toml", 0, "encryption.mode", `mode = "none"`}}},
		{"unknown encryption mode", map[string]string{"profiles/p.toml": baseTree["profiles/p.toml"] + "mode = \"keyfile\"\n"},
			nil, []wantErr{{"profiles/p.toml", 5, "encryption.mode", `unknown mode "keyfile"`}}},
		{"repokey without passphrase", map[string]string{"profiles/p.toml": "backend = \"borg\"\ntarget = \"file:///b/{client}\"\nencryption.mode = \"repokey\"\n"},
			nil, []wantErr{{"profiles/p.toml", 0, "encryption.passphrase_file", `required with mode "repokey"`}}},
		{"none with passphrase", map[string]string{"profiles/p.toml": baseTree["profiles/p.toml"] + "mode = \"none\"\n"},
			nil, []wantErr{{"profiles/p.toml", 4, "encryption.passphrase_file", `encryption.mode is "none"`}}},
		{"passphrase file missing", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "p.pass", "q.pass", 1)},
			nil, []wantErr{{"profiles/p.toml", 4, "encryption.passphrase_file", "secrets/q.pass does not exist"}}},
		{"passphrase file readable by others", nil,
			func(t *testing.T, dir string) {
				require.NoError(t, os.Chmod(filepath.Join(dir, "secrets", "p.pass"), 0o644))
			}, []wantErr{{"profiles/p.toml", 4, "encryption.passphrase_file", "has mode 0644, open to group or others; run: chmod 600 "}}},
		{"passphrase file empty", nil,
			func(t *testing.T, dir string) {
				require.NoError(t, os.Truncate(filepath.Join(dir, "secrets", "p.pass"), 0))
			}, []wantErr{{"profiles/p.toml", 4, "encryption.passphrase_file", "is empty"}}},
		{"compression", map[string]string{"profiles/p.toml": baseTree["profiles/p.toml"] + "[borg]\ncompression = \"gzip\"\n"},
			nil, []wantErr{{"profiles/p.toml", 6, "borg.compression", `unknown compression "gzip"`}}},
		{"bad profile name", map[string]string{"profiles/my profile.toml": baseTree["profiles/p.toml"]},
			nil, []wantErr{{"profiles/my profile.toml", 0, "", `profile name "my profile"`}}},

		// Clients.
		{"lvm_host without host_device", map[string]string{"clients/web.toml": "type = \"lvm_host\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "host_device", `missing (required for type "lvm_host")`}}},
		{"lvm_host bad devices and hooks", map[string]string{"clients/web.toml": "type = \"lvm_host\"\nhost_device = \"/dev/vg0/x\"\ntarget_device = \"vda1\"\n[hooks]\ntransport = \"agent\"\n"},
			nil, []wantErr{{"clients/web.toml", 2, "host_device", `want a logical volume of this host as "vg/lv"`},
				{"clients/web.toml", 3, "target_device", `no partition`},
				{"clients/web.toml", 5, "hooks.transport", `its hooks run on this host`}}},
		{"self paths", map[string]string{"clients/web.toml": "type = \"self\"\npaths = [\"etc\", \"/nonexistent-sb\"]\nsnapshot_size = \"1G\"\n"},
			nil, []wantErr{{"clients/web.toml", 2, "paths", `"etc": want a clean absolute path`},
				{"clients/web.toml", 2, "paths", `/nonexistent-sb: no such file or directory`},
				{"clients/web.toml", 3, "snapshot_size", `type "self" takes no snapshot`}}},
		{"recovery hooks of a self client", map[string]string{"clients/web.toml": "type = \"self\"\npaths = [\"/etc\"]\n[hooks]\nend_recovery = \"true\"\n"},
			nil, []wantErr{{"clients/web.toml", 4, "hooks.end_recovery", `a self client is not recovered in place`}}},
		{"self without paths", map[string]string{"clients/web.toml": "type = \"self\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "paths", `missing (required for type "self")`}}},
		{"plain dir and key of another type", map[string]string{"clients/web.toml": "type = \"plain\"\nplain_dir = \"../etc\"\nhost_device = \"vg/lv\"\n"},
			nil, []wantErr{{"clients/web.toml", 2, "plain_dir", `want a clean path relative to the cache volume`},
				{"clients/web.toml", 3, "host_device", `only for clients of type "lvm_host" (this one is "plain")`}}},
		{"unknown client type", map[string]string{"clients/web.toml": "type = \"docker\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "type", `unknown client type "docker"`}}},
		{"unknown profile", map[string]string{"clients/web.toml": "\nprofile = \"offsite\"\n"},
			nil, []wantErr{{"clients/web.toml", 2, "profile", `profile "offsite" not found in `}}},
		{"no profile at all", map[string]string{"hostctl.toml": ""},
			nil, []wantErr{{"clients/web.toml", 0, "profile", "set profile here or default_profile in "}}},
		{"no profiles dir", map[string]string{"profiles/p.toml!": ""},
			nil, []wantErr{{"hostctl.toml", 1, "default_profile", "has no *.toml profiles"}}},
		{"relative source", map[string]string{"clients/web.toml": "[backup]\nsource = [\"/\", \"home\"]\n"},
			nil, []wantErr{{"clients/web.toml", 2, "backup.source", `"home" is not an absolute path`}}},
		{"empty source", map[string]string{"clients/web.toml": "[backup]\nsource = []\n"},
			nil, []wantErr{{"clients/web.toml", 2, "backup.source", "nothing would be backed up"}}},
		{"exclude with dotdot", map[string]string{"clients/web.toml": "backup.exclude = [\"/var/../etc\"]\n"},
			nil, []wantErr{{"clients/web.toml", 1, "backup.exclude", `contains ".."`}}},
		{"mount", map[string]string{"clients/web.toml": "backup.mount = \"/dev/vda1\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "backup.mount", `"/dev/vda1": want "auto"`}}},
		{"mount empty label", map[string]string{"clients/web.toml": "backup.mount = \"LABEL=\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "backup.mount", "label after LABEL="}}},
		{"mount bad uuid", map[string]string{"clients/web.toml": "backup.mount = \"UUID=xyz\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "backup.mount", "UUID (hex digits"}}},
		{"bad client name", map[string]string{"clients/-web.toml": ""},
			nil, []wantErr{{"clients/-web.toml", 0, "", `client name "-web"`}}},

		// Several problems in several files: all reported, in file and line order.
		{"several", map[string]string{
			"hostctl.toml":     "default_profile = \"p\"\nnice = 99\nionice = 3\n",
			"clients/web.toml": "typo = 1\n[backup]\nmount = \"vdz9999\"\n",
		}, nil, []wantErr{
			{"clients/web.toml", 1, "typo", "unknown key"},
			{"clients/web.toml", 3, "backup.mount", "want"},
			{"hostctl.toml", 2, "nice", "out of range"},
			{"hostctl.toml", 3, "ionice", "want a string"},
		}},
		// Destinations (profiles = [...]).
		{"profile and profiles", map[string]string{"clients/web.toml": "profile = \"p\"\nprofiles = [\"p\"]\n"},
			nil, []wantErr{{"clients/web.toml", 2, "profiles", "set together with profile"}}},
		{"profiles empty", map[string]string{"clients/web.toml": "profiles = []\n"},
			nil, []wantErr{{"clients/web.toml", 1, "profiles", "empty: name at least one profile"}}},
		{"profiles unknown", map[string]string{"clients/web.toml": "profiles = [\"p\", \"offsite\"]\n"},
			nil, []wantErr{{"clients/web.toml", 1, "profiles", `profile "offsite" not found`}}},
		{"profiles twice", map[string]string{"clients/web.toml": "\nprofiles = [\"p\", \"p\"]\n"},
			nil, []wantErr{{"clients/web.toml", 2, "profiles", `profile "p" is named twice`}}},
		{"profiles one repository", map[string]string{"clients/web.toml": "profiles = [\"p\", \"q\"]\n",
			"profiles/q.toml": strings.Replace(baseTree["profiles/p.toml"], "/srv/backup/{client}", "/srv/backup/web", 1)},
			nil, []wantErr{{"clients/web.toml", 1, "profiles", `profiles "p" and "q" both write to file:///srv/backup/web`}}},
		{"profiles wrong type", map[string]string{"clients/web.toml": "profiles = \"p\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "profiles", "wrong type"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
			require.Error(t, err)
			assert.Nil(t, c)
			var errs config.Errors
			require.ErrorAs(t, err, &errs)
			require.Len(t, errs, len(tc.want), "got:\n%v", err)
			for i, w := range tc.want {
				got := errs[i]
				file := filepath.Join(dir, w.file)
				assert.Equal(t, file, got.File)
				assert.Equal(t, w.line, got.Line, "line of %v", got)
				assert.Equal(t, w.key, got.Key)
				assert.Contains(t, got.Msg, w.msg)
				// And the rendered form an editor can jump to.
				loc := file
				if w.line > 0 {
					loc = fmt.Sprintf("%s:%d", file, w.line)
				}
				if w.key != "" {
					loc += fmt.Sprintf(": key %q: ", w.key)
				}
				assert.Contains(t, err.Error(), loc)
			}
		})
	}
}

func TestLoadMissingHostConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.toml")
	_, err := config.Load(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p)
	assert.Contains(t, err.Error(), "--config")
}

func TestErrorsRendering(t *testing.T) {
	one := config.Errors{{File: "a.toml", Line: 3, Key: "x.y", Msg: "bad"}}
	assert.Equal(t, `a.toml:3: key "x.y": bad`, one.Error())
	two := append(one, &config.ConfigError{File: "b.toml", Msg: "worse"})
	assert.Equal(t, "2 problems in the configuration:\na.toml:3: key \"x.y\": bad\nb.toml: worse", two.Error())
	var ce *config.ConfigError
	require.ErrorAs(t, error(two), &ce)
	assert.Equal(t, "x.y", ce.Key)
}

func TestLoadDefaults(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hostctl.toml":      "default_profile = \"p\"\nstate_dir = \"state\"\n",
		"clients/web.toml":  "",
		"clients/db.toml":   "profile = \"p\"\noffline_ok = false\ntime_limit = \"90m\"\nbackup.source = [\"/srv\"]\n",
		"clients/README.md": "not a client",
	})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)

	h := c.Host
	assert.Equal(t, filepath.Join(dir, "hostctl.toml"), c.Path)
	assert.Equal(t, "qemu:///system", h.LibvirtURI)
	assert.Equal(t, filepath.Join(dir, "state"), h.StateDir, "relative to the host config's directory")
	assert.Equal(t, filepath.Join(dir, "profiles"), h.ProfilesDir)
	assert.Equal(t, filepath.Join(dir, "clients"), h.ClientsDir)
	assert.Equal(t, filepath.Join(dir, "state", "image"), h.ImageDir)
	assert.Equal(t, "/run/hostctl", h.RunDir, "job disks on a tmpfs")
	assert.Equal(t, config.Size(4<<30), h.MinFreeSpace)
	assert.Equal(t, 19, h.Nice)
	assert.Equal(t, "idle", h.IONice)
	assert.Equal(t, 6*time.Hour, h.TimeLimit.Duration)
	assert.Equal(t, config.Appliance{MemoryMiB: 1024, VCPUs: 2, Accel: "auto"}, h.Appliance)
	assert.Equal(t, config.Cache{Type: "file", Dir: filepath.Join(dir, "state", "caches"), Size: 8 << 30}, h.Cache)
	assert.Equal(t, filepath.Join(dir, "state", "caches", "web.qcow2"), c.CacheFor("web").Path, "each client its own image")
	assert.Equal(t, config.Network{Mode: "static", Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}}, h.Network)

	p := c.Profiles["p"]
	require.NotNil(t, p)
	assert.Equal(t, "p", p.Name)
	assert.Equal(t, filepath.Join(dir, "profiles", "p.toml"), p.File)
	assert.Equal(t, "repokey", p.Encryption.Mode, "repokey when a passphrase file is set")
	assert.Equal(t, filepath.Join(dir, "secrets", "p.pass"), p.Encryption.PassphraseFile)
	assert.Equal(t, "lz4", p.Borg.Compression)

	require.Len(t, c.Clients, 2, "README.md is not a client")
	web := c.Clients["web"]
	assert.Equal(t, "web", web.Name)
	assert.Equal(t, config.TypeLVMLibvirt, web.Type)
	assert.Equal(t, "web", web.Domain)
	assert.Equal(t, "", web.Profile, "the default profile is resolved by Load")
	rweb, err := c.SelectClients([]string{"web"})
	require.NoError(t, err)
	assert.Same(t, web, rweb[0].Client)
	assert.Equal(t, *p, *rweb[0].Profile, "no {client} in its secret files: the profile as it is")
	require.NotNil(t, web.OfflineOK)
	assert.True(t, *web.OfflineOK)
	assert.Equal(t, 6*time.Hour, web.TimeLimit.Duration)
	assert.Equal(t, config.ClientBackup{Mount: config.MountSpec{Single: "auto"}, Source: []string{"/"}}, web.Backup)

	db := c.Clients["db"]
	assert.False(t, *db.OfflineOK)
	assert.Equal(t, 90*time.Minute, db.TimeLimit.Duration)
	assert.Equal(t, []string{"/srv"}, db.Backup.Source)
}

func TestLoadNetworkDHCP(t *testing.T) {
	// dhcp: no static defaults; the lease fills them in the appliance.
	dir := writeTree(t, map[string]string{"hostctl.toml": "default_profile = \"p\"\n[network]\nmode = \"dhcp\"\n"})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	assert.Equal(t, config.Network{Mode: "dhcp"}, c.Host.Network)
}

func TestLoadExplicitZeroIsKept(t *testing.T) {
	// nice = 0 is a valid choice, not "unset".
	dir := writeTree(t, map[string]string{"hostctl.toml": "default_profile = \"p\"\nnice = 0\n"})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	assert.Equal(t, 0, c.Host.Nice)
}

func TestLoadNoClientsDir(t *testing.T) {
	dir := writeTree(t, map[string]string{"clients/web.toml!": ""})
	require.NoDirExists(t, filepath.Join(dir, "clients"))
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	assert.Empty(t, c.Clients)
}

func TestLoadDecodeErrorNotRepeated(t *testing.T) {
	// A key that failed to decode is not validated a second time.
	dir := writeTree(t, map[string]string{"hostctl.toml": "default_profile = \"p\"\nnice = \"low\"\n"})
	_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	var errs config.Errors
	require.ErrorAs(t, err, &errs)
	require.Len(t, errs, 1, "%v", err)
	assert.Equal(t, "nice", errs[0].Key)
}

func TestLoadExample(t *testing.T) {
	c, err := config.Load(configtest.Example(t))
	require.NoError(t, err)
	require.Contains(t, c.Clients, "web")
	require.Contains(t, c.Profiles, "local-borg")
	cls, err := c.SelectClients([]string{"web"})
	require.NoError(t, err)
	web := cls[0]
	p := web.Profile
	require.NotNil(t, p)
	assert.Equal(t, "local-borg", p.Name)
	assert.Equal(t, "file:///srv/backup/web", web.Target.String())
	assert.Equal(t, "repokey", p.Encryption.Mode)
	assert.Equal(t, "local-borg", c.Host.DefaultProfile)
	assert.Equal(t, 2*time.Hour, web.TimeLimit.Duration)
	assert.Contains(t, web.Backup.Exclude, "/tmp")
	data, err := os.ReadFile(web.Secrets.Passphrase)
	require.NoError(t, err)
	assert.Equal(t, configtest.Passphrase+"\n", string(data))
}

func TestExampleKeysAreAllShown(t *testing.T) {
	// The example host config is the operator's reference: every key of
	// Host should appear in it (set or commented out).
	data, err := os.ReadFile(filepath.Join("example", "hostctl.toml"))
	require.NoError(t, err)
	for _, key := range []string{"libvirt_uri", "state_dir", "profiles_dir", "clients_dir", "image_dir",
		"default_profile", "nice", "ionice", "time_limit", "verify_every", "verify_sample", "[appliance]", "memory_mib", "vcpus", "accel",
		"[cache]", "type", "path", "size", "[network]", "mode", "address", "gateway", "dns"} {
		assert.Contains(t, string(data), key)
	}
}

func TestNotErrors(t *testing.T) {
	// Load's error for a missing file is not an Errors list.
	_, err := config.Load(filepath.Join(t.TempDir(), "x.toml"))
	var errs config.Errors
	assert.False(t, errors.As(err, &errs))
}
