//go:build inappliance

package inappliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// disk returns the kernel name of the blank test disk sb-disk<i>.
func disk(t *testing.T, i int) string {
	t.Helper()
	if os.Getenv("SB_IN_APPLIANCE") == "" {
		t.Fatal("these tests run inside the appliance only (qemu-tests TestInAppliance)")
	}
	m, err := boot.Serials(boot.SysBlock)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := m["sb-disk"+string(rune('0'+i))]
	if !ok {
		t.Fatalf("no test disk sb-disk%d (disks: %v)", i, m)
	}
	return d
}

// lvmConf confines LVM to the test disks and works without udev.
func lvmConf(devs ...string) string {
	var a []string
	for _, d := range devs {
		a = append(a, `"a|^/dev/`+d+`[0-9]*$|"`)
	}
	return "devices { filter = [ " + strings.Join(a, ", ") + `, "r|.*|" ] use_devicesfile = 0 obtain_device_list_from_udev = 0 } ` +
		"activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } global { event_activation = 0 } backup { backup = 0 archive = 0 }"
}

// run runs argv and fails the test on error.
func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := execx.Output(context.Background(), argv...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(out)
}

// lvmRun runs an lvm subcommand with conf.
func lvmRun(t *testing.T, conf string, args ...string) string {
	t.Helper()
	return run(t, append([]string{"lvm", args[0], "--config", conf}, args[1:]...)...)
}

// sum is the SHA-256 of the first n bytes of a file or device.
func sum(t *testing.T, path string, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fill writes n bytes of a pattern derived from seed to path at offset.
func fill(t *testing.T, path string, off, n int64, seed byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = seed + byte(i*7)
	}
	for w := int64(0); w < n; w += int64(len(buf)) {
		if _, err := f.WriteAt(buf, off+w); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// writeTree writes files (relative path → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
