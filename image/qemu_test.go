package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
	"github.com/snapshot-backup/snapshot-backup/rootfs"
)

// TestBootQEMU boots the host's kernel with a built initramfs whose /init is
// the stand-in, and a disk image whose root partition is a tiny squashfs. It
// proves what the supervisor relies on: every listed module loads on the real
// kernel, the disk is found by its virtio serial, and partition 2 mounts as
// squashfs. TCG only, so it runs where KVM does not.
func TestBootQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: boots a VM")
	}
	for _, tool := range []string{"qemu-system-x86_64", "mksquashfs"} {
		testutil.NeedTool(t, tool, "apt-get install qemu-system-x86 squashfs-tools")
	}
	if _, err := FindKernel("/boot", "/lib/modules", "", ""); err != nil {
		testutil.SkipOrFail(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc/hostname"), []byte("sb-test\n"), 0o644)
	squash := filepath.Join(work, "root.sqfs")
	if _, err := execx.Output(ctx, "mksquashfs", tree, squash, "-comp", "zstd", "-noappend", "-no-progress"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(squash)

	out := filepath.Join(work, "out")
	var progress strings.Builder
	m, err := Build(ctx, Options{
		SupervisorPath: standIn(t), OutDir: out, CacheDir: filepath.Join(work, "cache"), Progress: &progress,
		rootfsKey: "tiny",
		rootfs: func(context.Context) (*rootfs.Result, error) {
			return &rootfs.Result{Key: "tiny", Path: squash, Size: st.Size()}, nil
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}

	var console bytes.Buffer
	start := time.Now()
	_, err = execx.Run(ctx, execx.Cmd{Argv: []string{
		"qemu-system-x86_64", "-accel", "tcg", "-m", "768", "-nographic", "-no-reboot",
		"-kernel", filepath.Join(out, KernelFile), "-initrd", filepath.Join(out, InitramfsFile),
		"-append", "console=ttyS0 panic=-1 quiet",
		"-drive", "file=" + filepath.Join(out, ImageFile) + ",if=none,id=app,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=app,serial=sb-appliance",
	}, Stdout: &console})
	t.Logf("QEMU ran %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("qemu: %v\nconsole:\n%s", err, console.String())
	}
	got := map[string]string{}
	for _, l := range strings.Split(console.String(), "\n") {
		// Terminal escapes from the firmware may precede the first line.
		if i := strings.Index(l, "SB-STANDIN "); i >= 0 {
			k, v, _ := strings.Cut(strings.TrimSpace(l[i+len("SB-STANDIN "):]), "=")
			got[k] = v
		}
	}
	want := map[string]string{
		"init": "started", "modules-failed": "", "disk": "vda", "root-mount": "ok", "root-hostname": "sb-test",
		"fs-ext4": "true", "fs-xfs": "true", "fs-btrfs": "true", "fs-vfat": "true", "fs-9p": "true",
		"fs-overlay": "true", "fs-virtiofs": "true", "end": "poweroff",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got["modules-loaded"] != strconv.Itoa(len(m.Modules)) {
		t.Errorf("modules-loaded = %s, want %d", got["modules-loaded"], len(m.Modules))
	}
	var onDemand []string // the names etc/sb-modules-on-demand lists
	for _, n := range OnDemand {
		if !slices.Contains(m.ModulesBuiltin, n) {
			onDemand = append(onDemand, n)
		}
	}
	if got["ondemand-loaded"] != strconv.Itoa(len(onDemand)) {
		t.Errorf("ondemand-loaded = %s, want %d (%v)", got["ondemand-loaded"], len(onDemand), onDemand)
	}
	if t.Failed() {
		t.Logf("console:\n%s", console.String())
	}
}
