package image

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/kmodule"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

const fakeDep = `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-snapshot.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko
kernel/fs/nls/nls_iso8859-1.ko:
kernel/fs/fat/fat.ko:
kernel/fs/fat/vfat.ko.xz: kernel/fs/fat/fat.ko
kernel/a.ko: kernel/b.ko
kernel/b.ko: kernel/a.ko
kernel/needs-missing.ko: kernel/missing.ko
`

const fakeBuiltin = "kernel/net/packet/af_packet.ko\nkernel/fs/ext4/ext4.ko\n"

func TestResolveModules(t *testing.T) {
	tests := []struct {
		name    string
		wanted  []string
		load    []string
		builtin []string
		err     string
	}{
		{
			name:   "deps first, shared deps once",
			wanted: []string{"virtio_pci", "virtio_blk"},
			load:   []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk"},
		},
		{
			name:   "hyphenated files by canonical name",
			wanted: []string{"dm_snapshot", "dm-mod"},
			load:   []string{"dm_mod", "dm_bufio", "dm_snapshot"},
		},
		{
			name:   "compressed module",
			wanted: []string{"vfat"},
			load:   []string{"fat", "vfat"},
		},
		{
			name:    "built in is skipped",
			wanted:  []string{"af_packet", "ext4", "virtio_blk"},
			load:    []string{"virtio_ring", "virtio", "virtio_blk"},
			builtin: []string{"af_packet", "ext4"},
		},
		{name: "unknown", wanted: []string{"nosuch"}, err: "nosuch: neither in modules.dep nor built in"},
		{name: "cycle", wanted: []string{"a"}, err: "cycle"},
		{name: "missing dependency", wanted: []string{"needs_missing"}, err: "kernel/missing.ko (needed by kernel/needs-missing.ko) is not in modules.dep"},
		{name: "mixed separators", wanted: []string{"nls_iso8859_1"}, err: "mixes '-' and '_'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := ResolveModules([]byte(fakeDep), []byte(fakeBuiltin), tt.wanted)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range set.Load {
				names = append(names, m.Name)
			}
			if !reflect.DeepEqual(names, tt.load) {
				t.Errorf("load order %v, want %v", names, tt.load)
			}
			if !reflect.DeepEqual(set.Builtin, tt.builtin) {
				t.Errorf("builtin %v, want %v", set.Builtin, tt.builtin)
			}
			// The filtered modules.dep has exactly the loaded modules.
			if n := strings.Count(string(set.Dep), "\n"); n != len(set.Load) {
				t.Errorf("modules.dep has %d lines for %d modules:\n%s", n, len(set.Load), set.Dep)
			}
		})
	}
}

func TestModulesList(t *testing.T) {
	set, err := ResolveModules([]byte(fakeDep), nil, []string{"dm_snapshot"})
	if err != nil {
		t.Fatal(err)
	}
	got := string(ModulesList(set))
	var names []string
	for _, l := range strings.Split(got, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			names = append(names, l)
		}
	}
	if want := []string{"dm_mod", "dm_bufio", "dm_snapshot"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("list %q", got)
	}
}

// TestHostKernelModules resolves Modules against the installed Debian
// kernel, lays the result out as the initramfs does, and checks that u-root's
// kmodule (what the supervisor uses) finds every listed module by name and
// loads exactly the files the list contains.
func TestHostKernelModules(t *testing.T) {
	k, err := FindKernel("/boot", "/lib/modules", "", "")
	if err != nil {
		testutil.SkipOrFail(t, "a Debian kernel with modules (apt-get install linux-image-amd64): "+err.Error())
	}
	set, builtin, err := resolveKernelModules(k)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range set.Load {
		names[m.Name] = true
	}
	for _, w := range Modules {
		if !names[w] && !contains(builtin, w) {
			t.Errorf("wanted module %s neither selected nor built in", w)
		}
	}
	for _, dep := range []string{"virtio", "virtio_ring", "jbd2", "libcrc32c", "fat", "9pnet", "fuse"} {
		if !names[dep] {
			t.Errorf("dependency %s not selected", dep)
		}
	}
	// The on-demand modules (and what only they need: raid6_pq and xor,
	// whose benchmarks run at load, libcrc32c, 9pnet, fuse) are in the
	// initramfs but not in the boot list; what the boot list's modules
	// need stays in it.
	boot := map[string]bool{}
	for _, m := range set.BootList() {
		boot[m] = true
	}
	for _, m := range []string{"xfs", "btrfs", "raid6_pq", "xor", "virtio_net", "9p", "9pnet", "9pnet_virtio",
		"fuse", "virtiofs", "dm_mod", "dm_thin_pool", "libcrc32c", "vsock"} {
		if !names[m] || boot[m] {
			t.Errorf("module %s: in the initramfs %v, in the boot list %v; want on demand", m, names[m], boot[m])
		}
	}
	for _, m := range []string{"virtio_pci", "virtio_blk", "virtio_console", "squashfs", "overlay", "ext4", "jbd2", "vfat", "crc32c_generic"} {
		if !boot[m] && !contains(builtin, m) {
			t.Errorf("module %s not in the boot list", m)
		}
	}
	var wantOnDemand []string // af_packet is built into Debian's kernel
	for _, m := range OnDemand {
		if !contains(builtin, m) {
			wantOnDemand = append(wantOnDemand, m)
		}
	}
	if !slices.Equal(set.OnDemand, wantOnDemand) {
		t.Errorf("on demand %v, want %v", set.OnDemand, wantOnDemand)
	}

	root := t.TempDir()
	mdir := filepath.Join(root, "lib/modules", k.Version)
	for _, m := range set.Load {
		p := filepath.Join(mdir, m.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	os.WriteFile(filepath.Join(mdir, "modules.dep"), set.Dep, 0o644)
	var loaded []string
	p, err := kmodule.NewProber(kmodule.ProbeOpts{
		RootDir: root, KVer: k.Version, IgnoreProcMods: true,
		DryRunCB: func(path string) { loaded = append(loaded, path) },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range set.Load {
		if err := p.Probe(m.Name, ""); err != nil {
			t.Errorf("kmodule cannot load %s: %v", m.Name, err)
		}
	}
	if len(loaded) != len(set.Load) {
		t.Errorf("kmodule loaded %d files, the list has %d", len(loaded), len(set.Load))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
