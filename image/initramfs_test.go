package image

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/u-root/mkuimage/cpio"
)

func testInitramfsSpec(t *testing.T) InitramfsSpec {
	t.Helper()
	set, err := ResolveModules([]byte(fakeDep), []byte(fakeBuiltin), []string{"virtio_blk", "vfat", "af_packet"})
	if err != nil {
		t.Fatal(err)
	}
	return InitramfsSpec{
		Init:           []byte("\x7fELF fake init"),
		KernelVersion:  "6.1.0-test",
		Modules:        set,
		ModulesBuiltin: []byte(fakeBuiltin),
		ModuleData:     func(rel string) ([]byte, error) { return []byte("module " + rel), nil },
	}
}

func TestInitramfs(t *testing.T) {
	spec := testInitramfsSpec(t)
	var a, b bytes.Buffer
	if err := WriteInitramfs(&a, spec); err != nil {
		t.Fatal(err)
	}
	if err := WriteInitramfs(&b, spec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two builds of the same spec differ")
	}

	zr, err := gzip.NewReader(&a)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cpio.Record{}
	var prev string
	for _, r := range recs {
		if r.Name <= prev {
			t.Errorf("entries not sorted: %q after %q", r.Name, prev)
		}
		prev = r.Name
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want all 0", r.Name, r.MTime, r.UID, r.GID)
		}
		byName[r.Name] = r
	}
	content := func(name string) string {
		r, ok := byName[name]
		if !ok {
			t.Errorf("%s missing", name)
			return ""
		}
		b, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		return string(b)
	}
	modes := map[string]uint64{
		"init": cpio.S_IFREG | 0o755, "dev": cpio.S_IFDIR | 0o755, "proc": cpio.S_IFDIR | 0o755,
		"sys": cpio.S_IFDIR | 0o755, "run": cpio.S_IFDIR | 0o755, "tmp": cpio.S_IFDIR | 0o1777,
		"sysroot": cpio.S_IFDIR | 0o755, "dev/console": cpio.S_IFCHR | 0o600,
		"lib": cpio.S_IFDIR | 0o755, "lib/modules/6.1.0-test/kernel/fs/fat": cpio.S_IFDIR | 0o755,
	}
	for name, mode := range modes {
		if r, ok := byName[name]; !ok || r.Mode != mode {
			t.Errorf("%s: present %v mode %#o, want %#o", name, ok, r.Mode, mode)
		}
	}
	if c := byName["dev/console"]; c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console is %d:%d", c.Rmajor, c.Rminor)
	}
	if got := content("init"); got != "\x7fELF fake init" {
		t.Errorf("init = %q", got)
	}
	wantList := "virtio_ring\nvirtio\nvirtio_blk\nfat\nvfat\n"
	if got := content(ModulesListPath); !bytes.HasSuffix([]byte(got), []byte(wantList)) {
		t.Errorf("%s = %q, want it to end in %q", ModulesListPath, got, wantList)
	}
	if got := content("lib/modules/6.1.0-test/kernel/fs/fat/vfat.ko.xz"); got != "module kernel/fs/fat/vfat.ko.xz" {
		t.Errorf("vfat module = %q", got)
	}
	if got := content("lib/modules/6.1.0-test/modules.dep"); got != string(spec.Modules.Dep) {
		t.Errorf("modules.dep = %q", got)
	}
	if got := content("lib/modules/6.1.0-test/modules.builtin"); got != fakeBuiltin {
		t.Errorf("modules.builtin = %q", got)
	}
	if _, ok := byName["lib/modules/6.1.0-test/kernel/drivers/md/dm-mod.ko"]; ok {
		t.Error("unwanted module in the initramfs")
	}
}

func TestInitramfsModuleError(t *testing.T) {
	spec := testInitramfsSpec(t)
	spec.ModuleData = func(string) ([]byte, error) { return nil, fmt.Errorf("gone") }
	if err := WriteInitramfs(io.Discard, spec); err == nil {
		t.Fatal("no error for an unreadable module")
	}
}
