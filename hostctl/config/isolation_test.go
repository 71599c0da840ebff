package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

// sshHooks is a client whose hooks run over ssh, with the given [hooks.ssh] lines.
func sshHooks(lines string) string {
	return "[hooks]\ntransport = \"ssh\"\npre_snapshot = \"sync\"\n[hooks.ssh]\n" + lines
}

// TestLoadRejectsUnsafeValues: what issue 11 found accepted silently. ssh
// without a pinned host key trusts ~/.ssh/known_hosts; values starting with
// "-" become options of ssh; control characters reach terminals and file
// names; absurd appliance sizes fail at boot, not in check.
func TestLoadRejectsUnsafeValues(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		setup func(t *testing.T, dir string)
		want  []wantErr
	}{
		{"ssh hooks without identity and known_hosts", map[string]string{"clients/web.toml": sshHooks("host = \"10.0.0.5\"\n")},
			nil, []wantErr{{"clients/web.toml", 2, "hooks.ssh.identity_file", `missing: transport = "ssh" needs the private key`},
				{"clients/web.toml", 2, "hooks.ssh.known_hosts", "missing: transport = \"ssh\" needs the guest's pinned host key"}}},
		{"ssh hooks with missing files", map[string]string{"clients/web.toml": sshHooks("host = \"10.0.0.5\"\nidentity_file = \"secrets/none\"\nknown_hosts = \"secrets/nokh\"\n")},
			nil, []wantErr{{"clients/web.toml", 6, "hooks.ssh.identity_file", "secrets/none does not exist"},
				{"clients/web.toml", 7, "hooks.ssh.known_hosts", "secrets/nokh does not exist"}}},
		{"ssh hooks identity readable by others", map[string]string{"clients/web.toml": sshHooks("host = \"10.0.0.5\"\nidentity_file = \"secrets/id\"\nknown_hosts = \"secrets/kh\"\n")},
			func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "id"), []byte("key"), 0o644))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "kh"), []byte("10.0.0.5 ssh-ed25519 AAAA"), 0o600))
				require.NoError(t, os.Chmod(filepath.Join(dir, "secrets", "kh"), 0o666))
			}, []wantErr{{"clients/web.toml", 6, "hooks.ssh.identity_file", "has mode 0644, open to group or others"},
				{"clients/web.toml", 7, "hooks.ssh.known_hosts", "writable by group or others"}}},
		{"ssh hooks option injection", map[string]string{"clients/web.toml": sshHooks("host = \"-oProxyCommand=touch /tmp/x\"\nuser = \"-lroot\"\nidentity_file = \"secrets/p.pass\"\nknown_hosts = \"secrets/p.pass\"\n")},
			nil, []wantErr{{"clients/web.toml", 5, "hooks.ssh.host", `starts with "-"`},
				{"clients/web.toml", 6, "hooks.ssh.user", `starts with "-"`}}},
		{"ssh hooks whitespace", map[string]string{"clients/web.toml": sshHooks("host = \"a b\"\nuser = \"ro\\not\"\nidentity_file = \"secrets/p.pass\"\nknown_hosts = \"secrets/p.pass\"\n")},
			nil, []wantErr{{"clients/web.toml", 5, "hooks.ssh.host", "whitespace or control characters"},
				{"clients/web.toml", 6, "hooks.ssh.user", "whitespace or control characters"}}},
		{"appliance absurd", map[string]string{"hostctl.toml": "default_profile = \"p\"\n[appliance]\nmemory_mib = 10000000\nvcpus = 1000\n"},
			nil, []wantErr{{"hostctl.toml", 3, "appliance.memory_mib", "too large: at most 65536"},
				{"hostctl.toml", 4, "appliance.vcpus", "at most 64"}}},
		{"empty domain", map[string]string{"clients/web.toml": "domain = \"\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "domain", "empty"}}},
		{"domain with control characters", map[string]string{"clients/web.toml": "domain = \"web\\u001b[2J\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "domain", "control characters"}}},
		{"domain starting with -", map[string]string{"clients/web.toml": "domain = \"--help\"\n"},
			nil, []wantErr{{"clients/web.toml", 1, "domain", `starts with "-"`}}},
		{"target user starting with -", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "sftp://-oProxyCommand=x@nas/srv", 1) +
			"[ssh]\nidentity_file = \"secrets/p.pass\"\nknown_hosts = \"secrets/p.pass\"\n"},
			nil, []wantErr{{"profiles/p.toml", 2, "target", `user "-oProxyCommand=x" starts with "-"`}}},
		{"target host starting with -", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "sftp://backup@-nas/srv", 1) +
			"[ssh]\nidentity_file = \"secrets/p.pass\"\nknown_hosts = \"secrets/p.pass\"\n"},
			nil, []wantErr{{"profiles/p.toml", 2, "target", `host "-nas" starts with "-"`}}},
		{"target user with whitespace", map[string]string{"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "file:///srv", "sftp://back%20up@nas/srv", 1) +
			"[ssh]\nidentity_file = \"secrets/p.pass\"\nknown_hosts = \"secrets/p.pass\"\n"},
			nil, []wantErr{{"profiles/p.toml", 2, "target", `user "back up": whitespace or control characters`}}},
		{"client name with control characters", map[string]string{"clients/we\x1bb.toml": ""},
			nil, []wantErr{{"clients/we\x1bb.toml", 0, "", `client name "we\x1bb"`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
			require.Error(t, err, "accepted")
			var errs config.Errors
			require.ErrorAs(t, err, &errs)
			require.Len(t, errs, len(tc.want), "got:\n%v", err)
			for i, w := range tc.want {
				got := errs[i]
				assert.Equal(t, filepath.Join(dir, w.file), got.File)
				assert.Equal(t, w.line, got.Line, "line of %v", got)
				assert.Equal(t, w.key, got.Key)
				assert.Contains(t, got.Msg, w.msg)
			}
		})
	}
}

// TestLoadAcceptsSafeValues: the checks above do not refuse what is fine.
func TestLoadAcceptsSafeValues(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hostctl.toml":     "default_profile = \"p\"\n[appliance]\nmemory_mib = 65536\nvcpus = 64\n",
		"clients/web.toml": "domain = \"web-01.example_org\"\n" + sshHooks("host = \"10.0.0.5\"\nuser = \"backup\"\nidentity_file = \"secrets/p.pass\"\nknown_hosts = \"secrets/kh\"\n"),
	})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "kh"), []byte("10.0.0.5 ssh-ed25519 AAAA\n"), 0o644))
	_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
}

// TestHostChecks: vcpus beyond this host's CPUs is a check error.
func TestHostChecks(t *testing.T) {
	dir := writeTree(t, map[string]string{"hostctl.toml": "default_profile = \"p\"\n[appliance]\nvcpus = 8\n"})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	err = c.HostChecks(2)
	require.Error(t, err)
	require.Contains(t, err.Error(), filepath.Join(dir, "hostctl.toml")+`:3: key "appliance.vcpus": 8 is more than the 2 CPUs of this host`)
	require.NoError(t, c.HostChecks(8))
}
