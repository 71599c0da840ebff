package boot

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCmdline(t *testing.T) {
	c := ParseCmdline(`console=ttyS0 panic=-1 quiet sb.mode=shell foo="a b" bar=x=y` + "\n")
	want := Cmdline{"console": "ttyS0", "panic": "-1", "quiet": "", "sb.mode": "shell", "foo": "a b", "bar": "x=y"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("ParseCmdline = %v, want %v", c, want)
	}
	if !c.Shell() {
		t.Error("Shell() = false")
	}
	if ParseCmdline("console=ttyS0 sb.mode=job").Shell() {
		t.Error("sb.mode=job is not shell")
	}
	if !ParseCmdline("console=ttyS0 sb.mode=job").JobExpected() || c.JobExpected() || ParseCmdline("quiet").JobExpected() {
		t.Error("JobExpected only for sb.mode=job")
	}
}

func TestParseUptime(t *testing.T) {
	d, err := ParseUptime("12.34 40.00\n")
	if err != nil || d != 12340*time.Millisecond {
		t.Fatalf("ParseUptime = %v, %v", d, err)
	}
	if _, err := ParseUptime(""); err == nil {
		t.Error("empty uptime: no error")
	}
}

func TestParseModuleList(t *testing.T) {
	got := ParseModuleList("# load order\nvirtio_pci\n\n virtio_blk # disks\nnls_iso8859-1\n")
	want := []string{"virtio_pci", "virtio_blk", "nls_iso8859-1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseModuleList = %q", got)
	}
}

func TestSerials(t *testing.T) {
	dir := t.TempDir()
	for name, serial := range map[string]string{"vda": "sb-appliance\n", "vdb": "sb-job", "vdc": "", "sda": "x"} {
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		os.WriteFile(filepath.Join(dir, name, "serial"), []byte(serial), 0o644)
	}
	got, err := Serials(dir)
	want := map[string]string{"sb-appliance": "vda", "sb-job": "vdb"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Serials = %v, %v", got, err)
	}
}

func TestParseStat(t *testing.T) {
	state, ppid, pgid, ok := parseStat("4242 (borg (worker) x) Z 1 4200 4200 0 -1")
	if !ok || state != "Z" || ppid != 1 || pgid != 4200 {
		t.Fatalf("parseStat = %q %d %d %v", state, ppid, pgid, ok)
	}
	if _, _, _, ok := parseStat("garbage"); ok {
		t.Error("garbage parsed")
	}
}

// A filesystem type comes from a guest's disk: only a name the image lists
// on demand, as a whole line, and one the kernel does not know yet, makes
// the supervisor load a module.
func TestNeedsModule(t *testing.T) {
	known := "nodev\tsysfs\nnodev\ttmpfs\n\text4\n\tvfat\nnodev\t9p\n"
	// The image's on-demand list, filesystems and the rest.
	list := "xfs\nbtrfs\nvirtio_net\n9pnet_virtio\n9p\nvirtiofs\ndm_mod\ndm_snapshot\nvsock\n"
	for fstype, want := range map[string]bool{
		"xfs":   true,
		"btrfs": true,
		"ext4":  false, // loaded at boot
		"tmpfs": false,
		// A hostile guest's names: none is a module to load.
		"":                        false,
		"nodev":                   false,
		"f2fs":                    false,
		"xfs\nbtrfs":              false,
		"../xfs":                  false,
		"xfs ":                    false,
		"btrfs # comment":         false,
		"/lib/modules/x.ko":       false,
		"ext4\x00xfs":             false,
		strings.Repeat("x", 4096): false,
		// On the list, but not a filesystem a mount may load.
		"virtio_net": false, "9pnet_virtio": false, "dm_mod": false, "dm_snapshot": false, "vsock": false,
		"9p": false, "virtiofs": false,
	} {
		if got := NeedsModule(fstype, known, list); got != want {
			t.Errorf("NeedsModule(%.40q) = %v, want %v", fstype, got, want)
		}
	}
	if NeedsModule("xfs", known+"\txfs\n", list) {
		t.Error("xfs loaded again once the kernel knows it")
	}
}
