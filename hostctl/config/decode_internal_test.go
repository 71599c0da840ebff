package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLineProbe pins how keyLines learns the line of every key from the
// toml package (see lineProbe): tables, dotted keys, inline tables,
// multi-line values and quoted keys. The line is the key's, except for
// multi-line strings: the toml package records where the value ends.
func TestLineProbe(t *testing.T) {
	doc := `# comment
type = "lvm_libvirt"

domain = """
web
"""
backup.mount = "auto"
[backup]
source = [
  "/",
]
exclude = ["/tmp"]
`
	var cl Client
	lines, errs := decodeFile("web.toml", []byte(doc), &cl)
	require.Empty(t, errs)
	assert.Equal(t, keyLines{
		"type":           2,
		"domain":         6, // a multi-line string is placed at its last line
		"backup":         8,
		"backup.mount":   7,
		"backup.source":  9,
		"backup.exclude": 12,
	}, lines)

	doc = "\n\"a b\" = 1\n[appliance]\nx = { y = 1 }\n"
	var h Host
	lines, errs = decodeFile("h.toml", []byte(doc), &h)
	require.Len(t, errs, 2)
	assert.Equal(t, 2, lines[`"a b"`])
	assert.Equal(t, 4, lines["appliance.x"])
	assert.Equal(t, `h.toml:2: key "\"a b\"": unknown key (known here: appliance, cache, clients_dir, default_profile, image_dir, ionice, libvirt_uri, lvm, min_free_space, network, nice, profiles_dir, report, run_dir, run_time_limit, state_dir, time_limit, verify_every, verify_sample)`, errs[0].Error())
}

// A Config built in code (no line information) validates too; problems
// then carry no line.
func TestValidateHandBuilt(t *testing.T) {
	c := &Config{
		Path:     "/etc/hostctl/hostctl.toml",
		Host:     Host{LibvirtURI: "qemu:///system", StateDir: "/s", ProfilesDir: "/p", ClientsDir: "/c", ImageDir: "/i", IONice: "idle", Nice: 19, Appliance: Appliance{MemoryMiB: 512, VCPUs: 1, Accel: "tcg"}, Cache: Cache{Type: "file", Dir: "/s/caches", Size: 1 << 30}},
		Profiles: map[string]*Profile{"p": {Name: "p", File: "/p/p.toml", Backend: "borg", Target: "file:///b/{client}", Encryption: Encryption{Mode: "none"}, Borg: Borg{Compression: "lz4"}}},
		Clients:  map[string]*Client{"web": {Name: "web", File: "/c/web.toml", Type: TypeLVMLibvirt, Domain: "web", Profile: "p", Backup: ClientBackup{Source: []string{"/"}}}},
	}
	err := c.Validate()
	require.Error(t, err)
	var errs Errors
	require.ErrorAs(t, err, &errs)
	var keys []string
	for _, e := range errs {
		keys = append(keys, e.File+" "+e.Key)
		assert.Zero(t, e.Line)
	}
	assert.Equal(t, []string{"/c/web.toml time_limit", "/etc/hostctl/hostctl.toml time_limit"}, keys)
}
