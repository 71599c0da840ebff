package job

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

func sftpRepo() *Repo {
	return &Repo{Backend: "borg",
		Target:     target.Target{Scheme: target.SFTP, User: "bk", Host: "nas", Port: 2222, Path: "/srv/web"},
		Encryption: "repokey", PassphraseFile: SecretPrefix + "passphrase", Compression: "lz4",
		Secrets:   map[target.Secret]string{target.SSHIdentity: SecretFile(target.SSHIdentity), target.SSHKnownHosts: SecretFile(target.SSHKnownHosts)},
		SSH:       SSH{ProxyCommand: "nc -x 127.0.0.1:9050 %h %p"},
		Retention: Retention{MaxAge: "2M", KeepDaily: 7}, CheckEvery: 10, BandwidthLimit: 1 << 20,
		ExtraOptions: []string{"--one-file-system"}}
}

func fileRepo() *Repo {
	return &Repo{Backend: "restic", Target: target.Target{Scheme: target.File, Path: "/srv/backup/web"},
		Encryption: "repokey", PassphraseFile: SecretPrefix + "passphrase"}
}

func base(mode string) Job {
	return Job{Version: Version, Mode: mode, Client: "web", RunID: "20260101T000000Z",
		TimeLimit: Duration{90 * time.Minute}, Nice: 19, IONiceClass: "idle"}
}

// jobs has a job of every mode, each with what its mode uses.
func jobs() map[string]Job {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	disks := []Disk{{Serial: DiskSerialPrefix + "0", Dev: "vda"}, {Serial: DiskSerialPrefix + "1", Dev: "vdb"}}
	out := map[string]Job{}

	j := base(ModeBackup)
	j.Repo, j.Disks = sftpRepo(), disks
	j.Net = &Net{Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}}
	j.Backup = &Backup{Archive: "web-20260101T000000Z", Time: at,
		Tree:   Tree{Mount: MountFstab, Mounts: []MountPoint{{Where: "/", What: "vg/root"}, {Where: "/srv", What: "vdb1"}}},
		Source: []string{"/"}, Exclude: []string{"/var/cache", "*.tmp"}}
	out[ModeBackup] = j

	j = base(ModeRestore)
	j.Repo, j.Disks = fileRepo(), disks
	j.Restore = &Restore{Archive: "abcd1234", Time: at, Paths: []string{"etc/nginx"}, To: RestoreToClient,
		Tree: Tree{Mount: "vg/root"}, MkFS: true,
		EndRecovery: &Hook{Command: "update-grub", Env: []string{"SB_CLIENT=web"}, TimeLimit: Duration{5 * time.Minute}}}
	out[ModeRestore] = j

	j = base(ModeVerify)
	j.Repo = fileRepo()
	j.Verify = &Verify{Time: at, Sample: 3, Paths: []string{"etc"}}
	out[ModeVerify] = j

	j = base(ModeList)
	j.Repo = fileRepo()
	j.List = &List{}
	out[ModeList] = j

	j = base(ModeExec)
	j.Disks = disks
	j.Exec = &Exec{File: SecretPrefix + "test", Args: []string{"-test.v"}, Env: []string{"X=1"}}
	out[ModeExec] = j

	j = base(ModeShell)
	j.Disks = disks
	j.Shell = &Shell{Rescue: true, Mount: "vda2"}
	out[ModeShell] = j

	j = base(ModePrune)
	j.Repo = sftpRepo()
	j.Repo.Retention = Retention{KeepLast: 1, KeepDaily: 7}
	j.Net = &Net{Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}}
	j.Prune = &Prune{Known: []string{"web-20260101T000000Z", "web-20260102T000000Z"}}
	out[ModePrune] = j
	return out
}

// TestPruneNeedsRetention: a prune job without a policy is refused where
// it is made and where it is read.
func TestPruneNeedsRetention(t *testing.T) {
	j := jobs()[ModePrune]
	j.Repo.Retention = Retention{}
	_, err := j.Marshal()
	if err == nil || !strings.Contains(err.Error(), "without a retention policy") {
		t.Fatalf("Marshal: %v", err)
	}
}

// TestPruneCompare: missing are the recorded backups the repository lost,
// unknown the ones it has that the host did not record; a first prune
// (Trust) takes the repository as it is.
func TestPruneCompare(t *testing.T) {
	p := Prune{Known: []string{"a", "b", "c"}}
	missing, unknown := p.Compare([]string{"a", "c", "planted"})
	if !slices.Equal(missing, []string{"b"}) || !slices.Equal(unknown, []string{"planted"}) {
		t.Fatalf("missing %v unknown %v", missing, unknown)
	}
	if m, u := p.Compare([]string{"c", "b", "a"}); m != nil || u != nil {
		t.Fatalf("same set: missing %v unknown %v", m, u)
	}
	if m, u := (Prune{Trust: true}).Compare([]string{"x"}); m != nil || u != nil {
		t.Fatalf("trust: missing %v unknown %v", m, u)
	}
	// restic: the backup's short id names the listing's whole one; a
	// shorter or non-hex prefix does not, nor does a borg-like name.
	full := "4b1a6edb7e2de383daefb55be67bcdbf4e6fa3e580b5abaa5e1e1f847e2a1e0e"
	if m, u := (Prune{Known: []string{"4b1a6edb"}}).Compare([]string{full}); m != nil || u != nil {
		t.Fatalf("short id: missing %v unknown %v", m, u)
	}
	for _, k := range []string{"4b1a6ed", "4b1a6edX", "4B1A6EDB"} {
		if m, u := (Prune{Known: []string{k}}).Compare([]string{full}); len(m) != 1 || len(u) != 1 {
			t.Errorf("%q matched %s: missing %v unknown %v", k, full, m, u)
		}
	}
	if m, u := (Prune{Known: []string{"web-2026"}}).Compare([]string{"web-20261201T000000Z"}); len(m) != 1 || len(u) != 1 {
		t.Errorf("a name that begins another: missing %v unknown %v", m, u)
	}
}

func TestRoundTripPerMode(t *testing.T) {
	all := jobs()
	if len(all) != len(modeTables) {
		t.Fatalf("%d jobs for %d modes", len(all), len(modeTables))
	}
	for mode, j := range all {
		data, err := j.Marshal()
		if err != nil {
			t.Fatalf("%s: Marshal: %v", mode, err)
		}
		if !strings.Contains(string(data), "\n["+mode+"]") {
			t.Errorf("%s: no [%s] table:\n%s", mode, mode, data)
		}
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: Parse: %v\n%s", mode, err, data)
		}
		if !reflect.DeepEqual(normal(*got), normal(j)) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v\n%s", mode, normal(*got), normal(j), data)
		}
	}
}

// normal makes empty slices nil (the decoder makes them empty).
func normal(j Job) Job {
	v := reflect.ValueOf(&j).Elem()
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				c := reflect.New(v.Elem().Type())
				c.Elem().Set(v.Elem())
				v.Set(c)
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		case reflect.Map:
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
		}
	}
	walk(v)
	return j
}

func TestParseRefuses(t *testing.T) {
	encode := func(j Job) string {
		// Marshal checks too; encode what it would refuse by hand.
		data, err := (&Job{Version: j.Version, Mode: ModeList, Client: j.Client, RunID: j.RunID, Repo: fileRepo(), List: &List{}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	list := encode(base(ModeList))
	backup, _ := func() (string, error) { j := jobs()[ModeBackup]; d, err := j.Marshal(); return string(d), err }()
	for _, tc := range []struct{ name, data, err string }{
		{"version 1", strings.Replace(list, "version = 2", "version = 1", 1), "version 1, this supervisor understands 2"},
		{"version 1 job as written by the old hostctl", "version = 1\nmode = \"backup\"\narchive = \"web-1\"\n[repo]\nurl = \"file:///srv\"\ntag_9p = \"sbtarget\"\n",
			"version 1, this supervisor understands 2"},
		{"no version", strings.Replace(list, "version = 2", "", 1), "version 0"},
		{"unknown mode", strings.Replace(list, `mode = "list"`, `mode = "format"`, 1), `unknown mode "format"`},
		{"missing mode table", strings.Replace(list, "[list]", "", 1), `mode "list" without its [list] table`},
		{"a second mode table", list + "\n[backup]\narchive = \"x\"\n", `mode "list" with a [backup] table`},
		{"another mode's table only", strings.Replace(list, "[list]", "[verify]", 1), `mode "list" with a [verify] table`},
		{"repo for exec", strings.Replace(strings.Replace(list, `mode = "list"`, `mode = "exec"`, 1), "[list]", "[exec]\nfile = \"secret-x\"", 1), `mode "exec" reads no repository`},
		{"no repo for list", list[:strings.Index(list, "[repo]")] + "[list]\n", `mode "list" without a [repo]`},
		{"unknown key", list + "\n[backup.extra]\nx = 1\n", `unknown key "backup.extra"`},
		{"unknown top-level key", "rescue = true\n" + list, `unknown key "rescue"`},
		{"unknown key in a mode table", strings.Replace(backup, "[backup]", "[backup]\n  rescue = true", 1), `unknown key "backup.rescue"`},
		{"old repo keys", strings.Replace(list, "[repo]", "[repo]\n  url = \"file:///srv\"", 1), `unknown key "repo.url"`},
		{"bad target", strings.Replace(list, `scheme = "file"`, `scheme = "gopher"`, 1), `unknown scheme "gopher"`},
		{"relative target", strings.Replace(list, `path = "/srv/backup/web"`, `path = "srv"`, 1), "must be absolute"},
		{"missing secret", strings.Replace(backup, `ssh-identity = "secret-ssh-identity"`, "", 1), "needs secret ssh-identity"},
		{"secret off the job disk", strings.Replace(backup, `"secret-ssh-identity"`, `"/etc/shadow"`, 1), `needs secret ssh-identity, a secret-… file on the job disk (got "/etc/shadow")`},
		{"secret in a subdirectory", strings.Replace(backup, `"secret-ssh-identity"`, `"secret-x/../../y"`, 1), "needs secret ssh-identity"},
		{"secret of another scheme", strings.Replace(backup, `ssh-identity = "secret-ssh-identity"`, "ssh-identity = \"secret-ssh-identity\"\n    s3-access-key = \"secret-s3-access-key\"", 1), "secret s3-access-key is not one a sftp:// target needs"},
	} {
		if _, err := Parse([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "parse job.toml: ") {
			t.Errorf("%s: %v, want %q\n%s", tc.name, err, tc.err, tc.data)
		}
	}
}

// Marshal refuses what Parse would: hostctl's mistakes show on the host.
func TestMarshalChecks(t *testing.T) {
	for name, j := range map[string]Job{
		"no mode table":      {Version: Version, Mode: ModeBackup, Repo: fileRepo()},
		"two mode tables":    {Version: Version, Mode: ModeList, Repo: fileRepo(), List: &List{}, Verify: &Verify{}},
		"no repo":            {Version: Version, Mode: ModeVerify, Verify: &Verify{}},
		"a repo for a shell": {Version: Version, Mode: ModeShell, Shell: &Shell{}, Repo: fileRepo()},
		"old version":        {Version: 1, Mode: ModeList, Repo: fileRepo(), List: &List{}},
		"no secrets":         {Version: Version, Mode: ModeList, Repo: &Repo{Target: sftpRepo().Target}, List: &List{}},
	} {
		if _, err := j.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted %+v", name, j)
		}
	}
}
