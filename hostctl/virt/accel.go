package virt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// accelProbeTimeout bounds the KVM probe boot. A working KVM gets the
// kernel to its "no root filesystem" panic in a second or two; a broken
// nested KVM hangs (seen: after "Probing EDD").
const accelProbeTimeout = 20 * time.Second

// ProbeAccel says whether the appliance can use KVM here: "kvm" or "tcg".
// The mere presence of /dev/kvm proves nothing (nested KVM can hang or
// abort), so it boots the appliance kernel under KVM with no root
// filesystem and waits for the kernel's panic on the serial console. The
// answer is cached in cacheFile, keyed by kernel and QEMU binary.
func ProbeAccel(ctx context.Context, kernel, cacheFile string) (string, error) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return "tcg", nil
	}
	key, err := probeKey(kernel)
	if err != nil {
		return "", err
	}
	if data, err := os.ReadFile(cacheFile); err == nil {
		if k, v, ok := strings.Cut(strings.TrimSpace(string(data)), " "); ok && k == key {
			return v, nil
		}
	}
	accel := "tcg"
	if kvmBoots(ctx, kernel) {
		accel = "kvm"
	}
	if err := os.MkdirAll(filepath.Dir(cacheFile), 0o700); err == nil {
		_ = os.WriteFile(cacheFile, []byte(key+" "+accel+"\n"), 0o600)
	}
	return accel, nil
}

func probeKey(kernel string) (string, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", fmt.Errorf("probe KVM: %w", err)
	}
	var parts []string
	for _, p := range []string{kernel, qemu} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("probe KVM: %w", err)
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%d", p, fi.Size(), fi.ModTime().Unix()))
	}
	return strings.ReplaceAll(strings.Join(parts, ","), " ", "_"), nil
}

func kvmBoots(ctx context.Context, kernel string) bool {
	ctx, cancel := context.WithTimeout(ctx, accelProbeTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "kvm", "-m", "256", "-nodefaults",
		"-nographic", "-no-reboot", "-serial", "stdio", "-kernel", kernel,
		"-append", "console=ttyS0 panic=-1 root=/dev/sb-probe-none")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	return (err == nil || errors.As(err, &ee)) && ctx.Err() == nil &&
		bytes.Contains(out.Bytes(), []byte("Kernel panic"))
}
