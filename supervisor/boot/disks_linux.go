package boot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// SysBlock is where the kernel lists block devices.
const SysBlock = "/sys/block"

// Serials maps virtio serials to kernel disk names (sb-cache → vdy) by reading
// sysBlock/vd*/serial. Disks without a serial are left out.
func Serials(sysBlock string) (map[string]string, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	m := map[string]string{}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "vd") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysBlock, e.Name(), "serial"))
		if err != nil {
			continue
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			m[s] = e.Name()
		}
	}
	return m, nil
}

// WaitSerial polls until a disk with the given serial shows up (there is no
// udev to tell us) and returns its kernel name, e.g. "vdb".
func WaitSerial(ctx context.Context, serial string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		m, _ := Serials(SysBlock)
		if d, ok := m[serial]; ok {
			return d, nil
		}
		select {
		case <-ctx.Done():
			var seen []string
			for s, d := range m {
				seen = append(seen, s+"="+d)
			}
			sort.Strings(seen)
			return "", fmt.Errorf("no disk with serial %q after %v (disks: %s)", serial, timeout, strings.Join(seen, " "))
		case <-t.C:
		}
	}
}

// Partitions lists the partitions of disk (vdb → [vdb1 vdb2]) in order.
func Partitions(disk string) []string {
	ents, _ := os.ReadDir(filepath.Join(SysBlock, disk))
	var parts []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), disk) {
			if _, err := os.Stat(filepath.Join(SysBlock, disk, e.Name(), "partition")); err == nil {
				parts = append(parts, e.Name())
			}
		}
	}
	sort.Slice(parts, func(i, j int) bool {
		return len(parts[i]) < len(parts[j]) || len(parts[i]) == len(parts[j]) && parts[i] < parts[j]
	})
	return parts
}

// WaitPath waits until path exists, for partition device nodes that devtmpfs
// creates shortly after their disk.
func WaitPath(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ReadOnly reports whether the kernel marks block device dev (vdb) read-only.
func ReadOnly(dev string) bool {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", dev, "ro"))
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
